"""Export a rule to other formats and libraries. One module per target; :func:`export` dispatches.

Targets here: ``sympy`` (a Python snippet that rebuilds the sympy expression), ``latex``, ``json`` (a documented
schema that :func:`plasticity_search.export.json_format.load_rule` reads back exactly).
"""
from __future__ import annotations

from ..rules.program import RuleError
from ..rules.resolve import ResolvedRule
from . import json_format, symbolic

TARGETS = {
    "sympy": symbolic.to_sympy_source,
    "latex": symbolic.to_latex_doc,
    "json": json_format.dumps_rule,
}


def export(rule: ResolvedRule, target: str) -> str:
    if target not in TARGETS:
        raise RuleError(f"unknown export format '{target}' (known: {', '.join(TARGETS)})")
    return TARGETS[target](rule)


__all__ = ["export", "TARGETS"]
