"""sympy and LaTeX exports."""
from __future__ import annotations

import sympy as sp

from ..rules.formula import DIGITS, expr_latex, sympy_text, to_sympy
from ..rules.resolve import ResolvedRule
from .codegen import safe_name


def to_sympy_source(rule: ResolvedRule) -> str:
    """A Python snippet that rebuilds the rule as sympy expressions (``dw`` and, if any, ``delig``), with the
    constants of the text and LaTeX forms (:data:`~plasticity_search.rules.formula.DIGITS` significant digits;
    the exact float32 values are in the ``json``, ``jax``, ``numpy`` and ``torch`` exports)."""
    e = to_sympy(rule.program, rule.space)
    dw, de = (e if isinstance(e, tuple) else (e, sp.Integer(0)))
    syms = sorted((dw.free_symbols | de.free_symbols), key=lambda s: s.name)
    # the rule name may be user text (a formula, a loaded file): only a plain identifier goes into the comment
    lines = [f"# plasticity rule {safe_name(rule, 'formula')} exported by plasticity-search",
             f"# constants to {DIGITS} significant digits, as in the text and LaTeX forms (exact values: --to json)",
             "import sympy as sp"]
    # the functions the text calls (exp, Abs, Max, Heaviside, ...): sympy's own names, imported by name
    funcs = sorted({type(f).__name__ for x in (dw, de) for f in x.atoms(sp.Function)}
                   | {n for n, c in (("E", sp.E), ("pi", sp.pi)) if dw.has(c) or de.has(c)})
    if funcs:
        lines.append(f"from sympy import {', '.join(funcs)}")
    lines.append("")
    if syms:
        names = " ".join(s.name for s in syms)
        lines.append(f"{', '.join(s.name for s in syms)}{',' if len(syms) == 1 else ''} = "
                     f"sp.symbols({names!r}, real=True)")
    lines.append(f"dw = {sympy_text(dw)}")
    if de != 0:
        lines.append(f"delig = {sympy_text(de)}")
    return "\n".join(lines) + "\n"


def to_latex_doc(rule: ResolvedRule) -> str:
    return expr_latex(to_sympy(rule.program, rule.space), rule.space) + "\n"
