"""Export a rule to other formats and libraries. One module per target; :func:`export` dispatches.

Targets:

* ``sympy`` (a Python snippet that rebuilds the sympy expression), ``latex``;
* ``json`` (schema ``plasticity-search/rule/v1``, read back exactly by
  :func:`plasticity_search.export.json_format.load_rule` and by the CLI);
* ``jax``, ``numpy``, ``torch``: a self-contained Python file with ``rule(<variables>, w, *, params=PARAMS)``
  (semantics of ``Space.apply``; the constants are the parameter vector ``PARAMS``), see :mod:`.arraysrc`;
* ``brian2``: a Python file with ``make_synapses(source, target, **params) -> brian2.Synapses``, see :mod:`.brian2`;
* ``nestml``: a NESTML 9 synapse model, see :mod:`.nestml`.

A rule a target cannot express (a rate rule to Brian2/NESTML, a variable with no counterpart there) is a
one-line :class:`~plasticity_search.rules.RuleError` naming why. Heavy libraries are never imported to generate.
"""
from __future__ import annotations

import sympy as sp

from ..rules.formula import to_sympy
from ..rules.program import RuleError
from ..rules.resolve import ResolvedRule, resolve_rule
from . import arraysrc, brian2, json_format, symbolic


def _nestml_source(rule: ResolvedRule) -> str:
    # imported when used: ``python -m plasticity_search.export.nestml`` (the NEST build) then runs a module that
    # importing this package has not already loaded (runpy warns about that)
    from .nestml import to_nestml_source
    return to_nestml_source(rule)


TARGETS = {
    "sympy": symbolic.to_sympy_source,
    "latex": symbolic.to_latex_doc,
    "jax": arraysrc.to_jax_source,
    "numpy": arraysrc.to_numpy_source,
    "torch": arraysrc.to_torch_source,
    "brian2": brian2.to_brian2_source,
    "nestml": _nestml_source,
    "json": json_format.dumps_rule,
}


def export(rule: ResolvedRule | str, target: str) -> str:
    """The rule exported to ``target`` (a key of :data:`TARGETS`), as text.

    ``rule`` is a :class:`ResolvedRule`, a known rule name, a formula or a rule ``.json`` file (the rule
    language's :func:`~plasticity_search.rules.resolve.resolve_rule`; for ``RUN_DIR:RANK`` pass
    ``plasticity_search.runs.resolve_rule_spec(spec)``, as the command line does).
    """
    if target not in TARGETS:
        raise RuleError(f"unknown export format '{target}' (known: {', '.join(TARGETS)})")
    if isinstance(rule, str):
        rule = resolve_rule(rule)
    if target != "json":
        check_finite_form(rule)
    return TARGETS[target](rule)


def check_finite_form(rule: ResolvedRule) -> None:
    """A one-line RuleError if the rule's formula is undefined as an expression: a part of the program that reduces
    to a constant zero in a denominator (``1/(y - y)``) becomes sympy's ``zoo``/``nan``, which no formula target can
    write; the log or square root of a negative constant is complex in sympy (``I*pi``) and NaN in float32. The
    network's own evaluation is IEEE arithmetic (``tanh(1/0) = 1``); the ``json`` export keeps it."""
    form = to_sympy(rule.program, rule.space)
    for part in form if isinstance(form, tuple) else (form,):
        if part.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise RuleError("the rule's formula is undefined as an expression (a part of it reduces to a division by "
                            "zero or an infinite constant); only --to json keeps its exact evaluation")
        if part.has(sp.I):
            raise RuleError("the rule's formula is not real-valued (a part of it takes the log or square root of a "
                            "negative constant; the rule's own evaluation gives NaN there); only --to json keeps its "
                            "exact evaluation")


__all__ = ["export", "check_finite_form", "TARGETS"]
