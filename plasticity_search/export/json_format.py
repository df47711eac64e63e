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
Loading uses the program arrays (bit-exact constants), and checks them against the space. The codec itself is the
rule language's (:meth:`ResolvedRule.to_dict` / :meth:`ResolvedRule.from_dict`, programs through
:meth:`Program.to_dict` / :meth:`Program.from_dict`), so a rule file resolves without this package.
"""
from __future__ import annotations

import json

from ..rules.program import PROGRAM_DTYPES
from ..rules.resolve import ResolvedRule, load_rule_file

# kept for readers not yet moved to Program.from_dict (runs/results.py); the dtypes are PROGRAM_DTYPES
_DTYPES = PROGRAM_DTYPES


def rule_to_dict(rule: ResolvedRule) -> dict:
    return rule.to_dict()


def dumps_rule(rule: ResolvedRule) -> str:
    return json.dumps(rule_to_dict(rule), indent=2) + "\n"


def rule_from_dict(d: dict) -> ResolvedRule:
    return ResolvedRule.from_dict(d)


def load_rule(path: str) -> ResolvedRule:
    return load_rule_file(path)
