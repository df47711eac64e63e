"""sympy and LaTeX exports."""
from __future__ import annotations

import sympy as sp

from ..rules.formula import expr_latex, to_sympy
from ..rules.resolve import ResolvedRule
from .codegen import safe_name


def to_sympy_source(rule: ResolvedRule) -> str:
    """A Python snippet that rebuilds the rule as sympy expressions (``dw`` and, if any, ``delig``)."""
    e = to_sympy(rule.program, rule.space, digits=8)
    dw, de = (e if isinstance(e, tuple) else (e, sp.Integer(0)))
    syms = sorted((dw.free_symbols | de.free_symbols), key=lambda s: s.name)
    # the rule name may be user text (a formula, a loaded file): only a plain identifier goes into the comment
    lines = [f"# plasticity rule {safe_name(rule, 'formula')} exported by plasticity-search", "import sympy as sp", ""]
    if syms:
        names = " ".join(s.name for s in syms)
        lines.append(f"{', '.join(s.name for s in syms)}{',' if len(syms) == 1 else ''} = "
                     f"sp.symbols({names!r}, real=True)")
    lines.append(f"dw = {sp.sstr(dw)}")
    if de != 0:
        lines.append(f"delig = {sp.sstr(de)}")
    return "\n".join(lines) + "\n"


def to_latex_doc(rule: ResolvedRule) -> str:
    return expr_latex(to_sympy(rule.program, rule.space), rule.space) + "\n"
