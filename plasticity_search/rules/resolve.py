"""Turn what a user names on the command line into a rule: a known rule name or a formula in quotes.

(``RUN_DIR:RANK`` is resolved by the runs layer, which registers itself through :data:`RESOLVERS`.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .formula import compile_formula
from .program import Program, RuleError, Space
from .registry import RATE_SPACE, RULES, SPIKING_SPACE
from .variables import VARIABLES

# hooks: callables (spec) -> ResolvedRule | None, tried before formulas (e.g. RUN_DIR:RANK from the runs layer)
RESOLVERS: list = []


@dataclass
class ResolvedRule:
    program: Program
    space: Space
    name: str                    # registry name, or the formula text
    formula: str
    model: str                   # 'rate' | 'spiking'
    defaults: dict = field(default_factory=dict)
    reference: str = ""


def model_of_formula(text: str) -> str:
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))
    spiking_only = {v for v, var in VARIABLES.items() if var.models == ("spiking",)} | {"r", "rbar", "elig"}
    return "spiking" if names & spiking_only else "rate"


def model_of_space(space) -> str:
    """'spiking' if the space reads a spiking-only quantity or has an eligibility trace, else 'rate'."""
    spiking = any(v in VARIABLES and VARIABLES[v].models == ("spiking",) for v in space.variables)
    return "spiking" if spiking or space.elig else "rate"


def resolve_rule(spec: str) -> ResolvedRule:
    if not isinstance(spec, str) or not spec.strip():
        raise RuleError("empty rule")
    spec = spec.strip()
    if spec in RULES:
        r = RULES[spec]
        prog, space = r.compile()
        return ResolvedRule(prog, space, r.name, r.resolved_formula(), r.model, dict(r.defaults), r.reference)
    if spec.endswith(".json"):
        from ..export.json_format import load_rule
        return load_rule(spec)
    if ":" in spec and not RESOLVERS:
        import plasticity_search.runs  # noqa: F401  (registers the RUN_DIR:RANK resolver)
    for hook in RESOLVERS:
        got = hook(spec)
        if got is not None:
            return got
    if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", spec) and spec not in VARIABLES:
        raise RuleError(f"unknown rule '{spec}' (known: {', '.join(RULES)}; or give a formula in quotes)")
    model = model_of_formula(spec)
    space = SPIKING_SPACE if model == "spiking" else RATE_SPACE
    prog, space = compile_formula(spec, space)
    return ResolvedRule(prog, space, spec, spec, model)
