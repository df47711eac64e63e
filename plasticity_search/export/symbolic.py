"""sympy and LaTeX exports."""
from __future__ import annotations

import re

import sympy as sp

from ..rules.formula import DIGITS, expr_latex, sympy_text, to_sympy
from ..rules.resolve import ResolvedRule
from .codegen import safe_name

#: a name in printed text (not the exponent letter of a number such as 1.0e-5)
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def to_sympy_source(rule: ResolvedRule) -> str:
    """A Python snippet that rebuilds the rule as sympy expressions (``dw`` and, if any, ``delig``), with the
    constants of the text and LaTeX forms (:data:`~plasticity_search.rules.formula.DIGITS` significant digits;
    the exact float32 values are in the ``json``, ``jax``, ``numpy`` and ``torch`` exports)."""
    e = to_sympy(rule.program, rule.space)
    dw, de = (e if isinstance(e, tuple) else (e, sp.Integer(0)))
    syms = sorted((dw.free_symbols | de.free_symbols), key=lambda s: s.name)
    texts = [sympy_text(dw)] + ([sympy_text(de)] if de != 0 else [])
    # the rule name may be user text (a formula, a loaded file): only a plain identifier goes into the comment
    lines = [f"# plasticity rule {safe_name(rule, 'formula')} exported by plasticity-search",
             f"# constants to {DIGITS} significant digits, as in the text and LaTeX forms (exact values: --to json)",
             "import sympy as sp"]
    # every name the printed text calls or reads that is not a variable (exp, Abs, Max, Min, sqrt, Heaviside, E,
    # pi, ...): sympy's own names, imported by name (Max/Min are no sympy Function and sqrt prints from a power, so
    # the names come from the text itself)
    names = {s.name for s in syms}
    funcs = sorted({n for t in texts for n in _NAME.findall(t) if n not in names and hasattr(sp, n)})
    if funcs:
        lines.append(f"from sympy import {', '.join(funcs)}")
    lines.append("")
    if syms:
        # seq=True: a tuple even for one name (``w, = sp.symbols('w')`` would unpack a bare Symbol)
        lines.append(f"{', '.join(s.name for s in syms)}{',' if len(syms) == 1 else ''} = "
                     f"sp.symbols({' '.join(s.name for s in syms)!r}, real=True, seq=True)")
    # a constant part stays a sympy number (``sp.S(0.5)``), not a Python float
    as_expr = lambda e, t: f"sp.S({t})" if e.is_number else t  # noqa: E731
    lines.append(f"dw = {as_expr(dw, texts[0])}")
    if de != 0:
        lines.append(f"delig = {as_expr(de, texts[1])}")
    return "\n".join(lines) + "\n"


def to_latex_doc(rule: ResolvedRule) -> str:
    return expr_latex(to_sympy(rule.program, rule.space), rule.space) + "\n"
