"""Turn what names a rule into a rule: a known rule name, a formula in quotes, or a rule ``.json`` file.

This is the rule language's own resolution; it knows nothing of runs. ``RUN_DIR:RANK`` (a rule of a run's hall of
fame) is resolved at the application edge by :func:`plasticity_search.runs.resolve_rule_spec`, which the command
line uses for every RULE argument.

A :class:`ResolvedRule` reads and writes the rule file format (schema ``plasticity-search/rule/v1``, see
:mod:`plasticity_search.export.json_format`) with :meth:`ResolvedRule.to_dict` / :meth:`ResolvedRule.from_dict`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .formula import compile_formula, to_latex, to_sympy, to_text
from .program import Program, RuleError, Space, complexity
from .known import RATE_SPACE, RULES, SPIKING_SPACE
from .variables import VARIABLES

RULE_SCHEMA = "plasticity-search/rule/v1"
RUN_RANK = re.compile(r"^(?P<path>[^;=]+?):(?P<rank>-?[0-9]+)$")     # formulas never contain ':'


@dataclass
class ResolvedRule:
    program: Program
    space: Space
    name: str                    # registry name, or the formula text
    formula: str
    model: str                   # 'rate' | 'spiking'
    defaults: dict = field(default_factory=dict)
    reference: str = ""

    def to_dict(self) -> dict:
        """The rule file document (schema ``plasticity-search/rule/v1``); :meth:`from_dict` reads it back exactly."""
        e = to_sympy(self.program, self.space)
        exprs = e if isinstance(e, tuple) else (e,)
        variables = sorted({s.name for x in exprs for s in x.free_symbols})
        return {
            "schema": RULE_SCHEMA, "name": self.name, "model": self.model,
            "formula": to_text(self.program, self.space), "latex": to_latex(self.program, self.space),
            "variables": variables, "complexity": complexity(self.program, self.space), "defaults": self.defaults,
            "reference": self.reference, "space": self.space.to_dict(), "program": self.program.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "rule file") -> "ResolvedRule":
        """A rule from its rule file document, every field checked (types, lengths, ranges of the program arrays
        against its space, finite float32 constants, defaults): RuleError, one line starting with ``where``."""
        from .documents import rule_parts_from_doc

        if not isinstance(d, dict) or d.get("schema") != RULE_SCHEMA:
            raise RuleError(f"{where}: not a plasticity-search rule file (expected schema '{RULE_SCHEMA}')")
        space, prog, defaults = rule_parts_from_doc(d, where)
        # the formula every reader shows is the program's, not the file's text (an edited 'formula' would label
        # one rule's figures with another rule)
        return cls(prog, space, d.get("name", "rule"), to_text(prog, space), d.get("model", "rate"), defaults,
                   d.get("reference", ""))


def load_rule_file(path: str) -> ResolvedRule:
    """The rule of a rule ``.json`` file (RuleError, one line naming the file, if it cannot be read or is
    malformed; a FIFO or other non-regular file is refused without being opened)."""
    from .documents import read_json_file

    return ResolvedRule.from_dict(read_json_file(path, "rule file"), f"rule file '{path}'")


def model_of_formula(text: str) -> str:
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))
    spiking_only = {v for v, var in VARIABLES.items() if var.models == ("spiking",)} | {"r", "rbar", "elig"}
    return "spiking" if names & spiking_only else "rate"


def model_of_space(space) -> str:
    """'spiking' if the space reads a spiking-only quantity or has an eligibility trace, else 'rate'."""
    spiking = any(v in VARIABLES and VARIABLES[v].models == ("spiking",) for v in space.variables)
    return "spiking" if spiking or space.elig else "rate"


def is_run_rank(spec) -> bool:
    """Whether ``spec`` has the form ``RUN_DIR:RANK`` (which only the runs layer can resolve)."""
    return isinstance(spec, str) and RUN_RANK.match(spec.strip()) is not None


def as_rule(rule) -> ResolvedRule:
    """A ResolvedRule from what names one (a ResolvedRule, a known rule name, a formula, a rule ``.json`` file)."""
    if isinstance(rule, str):
        return resolve_rule(rule)
    if not isinstance(rule, ResolvedRule):
        raise RuleError(f"rule must be a rule name, a formula, a rule file or a ResolvedRule, got "
                        f"{type(rule).__name__}")
    return rule


def resolve_rule(spec: str) -> ResolvedRule:
    """A known rule name, a rule ``.json`` file, or a formula (rate or spiking variables) -> ResolvedRule."""
    if not isinstance(spec, str) or not spec.strip():
        raise RuleError("empty rule")
    spec = spec.strip()
    if spec in RULES:
        r = RULES[spec]
        prog, space = r.compile()
        return ResolvedRule(prog, space, r.name, r.resolved_formula(), r.model, dict(r.defaults), r.reference)
    if spec.endswith(".json"):
        return load_rule_file(spec)
    if is_run_rank(spec):
        raise RuleError(f"'{spec}' names a rule of a run (RUN_DIR:RANK), which is not taken here: export it first "
                        f"(plasticity-search export {spec} --to json -o rule.json) and give the .json file")
    if ":" in spec and os.path.exists(spec.rpartition(":")[0]):
        raise RuleError(f"'{spec}': a rule of a run is RUN_DIR:RANK with an integer rank, got "
                        f"'{spec.rpartition(':')[2][:40]}'")
    if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", spec) and spec not in VARIABLES:
        raise RuleError(f"unknown rule '{spec}' (known: {', '.join(RULES)}; or give a formula in quotes)")
    model = model_of_formula(spec)
    space = SPIKING_SPACE if model == "spiking" else RATE_SPACE
    prog, space = compile_formula(spec, space)
    return ResolvedRule(prog, space, spec, spec, model)
