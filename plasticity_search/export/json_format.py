"""The JSON rule format (schema ``plasticity-search/rule/v1``).

```
{
  "schema": "plasticity-search/rule/v1",
  "name": "oja",                       # registry name or formula text
  "model": "rate" | "spiking",
  "formula": "y*(-w*y + x)",           # simplified plain text (parse it back with the same space)
  "latex": "\\Delta w = ...",
  "variables": ["w", "x", "y"],
  "complexity": 4,
  "defaults": {"lr": 0.005},           # simulation defaults (learning rate, time constants, bounds)
  "reference": "...",
  "space": {...},                      # Space.to_dict(): variables, ops, synapse factors, sizes
  "program": {"post_op": [...], ...}   # the exact program arrays (Program fields)
}
```
Loading uses the program arrays (bit-exact constants), and checks them against the space.
"""
from __future__ import annotations

import json

import numpy as np

from ..rules.formula import to_latex, to_sympy, to_text
from ..rules.program import Program, RuleError, Space, complexity
from ..rules.resolve import ResolvedRule

SCHEMA = "plasticity-search/rule/v1"


def rule_to_dict(rule: ResolvedRule) -> dict:
    e = to_sympy(rule.program, rule.space)
    exprs = e if isinstance(e, tuple) else (e,)
    variables = sorted({s.name for x in exprs for s in x.free_symbols})
    return {
        "schema": SCHEMA, "name": rule.name, "model": rule.model, "formula": to_text(rule.program, rule.space),
        "latex": to_latex(rule.program, rule.space), "variables": variables,
        "complexity": complexity(rule.program, rule.space), "defaults": rule.defaults, "reference": rule.reference,
        "space": rule.space.to_dict(),
        "program": {f: np.asarray(getattr(rule.program, f)).tolist() for f in Program._fields},
    }


def dumps_rule(rule: ResolvedRule) -> str:
    return json.dumps(rule_to_dict(rule), indent=2) + "\n"


_DTYPES = {"term_on": bool, "term_coef": np.float32, "post_c": np.float32, "pre_c": np.float32}


def rule_from_dict(d: dict) -> ResolvedRule:
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise RuleError(f"not a plasticity-search rule file (expected schema '{SCHEMA}')")
    try:
        space = Space.from_dict(d["space"])
        prog = Program(**{f: np.asarray(d["program"][f], dtype=_DTYPES.get(f, np.int32)) for f in Program._fields})
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, RuleError):
            raise
        raise RuleError(f"malformed rule file: {exc}") from None
    for f, n in (("post_op", space.n_post), ("pre_op", space.n_pre), ("term_on", space.n_terms)):
        if getattr(prog, f).shape != (n,):
            raise RuleError(f"malformed rule file: '{f}' has shape {getattr(prog, f).shape}, space says ({n},)")
    for side in ("post", "pre"):
        op = getattr(prog, f"{side}_op")
        if op.size and (op.min() < 0 or op.max() >= len(space.ops)):
            raise RuleError(f"malformed rule file: '{side}_op' out of range")
    if prog.term_s.size and (prog.term_s.min() < 0 or prog.term_s.max() >= len(space.syn)):
        raise RuleError("malformed rule file: 'term_s' out of range")
    return ResolvedRule(prog, space, str(d.get("name", "rule")), str(d.get("formula", "")),
                        str(d.get("model", "rate")), dict(d.get("defaults", {})), str(d.get("reference", "")))


def load_rule(path: str) -> ResolvedRule:
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as exc:
        raise RuleError(f"cannot read rule file '{path}': {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RuleError(f"rule file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return rule_from_dict(d)
