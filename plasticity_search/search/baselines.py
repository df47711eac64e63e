"""Baselines of a run: known rules scored on the same tasks, seeds and initial weights as its hall of fame.

Every result of a search stands next to what researchers already have: by default plain feedback alignment
(``fa``: ``dw = -e x`` under the run's network and feedback pathway) and the same rule with backpropagated errors
(``bp``, the non-local reference), or Oja's rule for PCA; a config lists others under ``baselines:``. A baseline
runs with the run's network settings (learning rate included), so the only difference to a candidate is the rule.
Rules that fit the run's space are evaluated in it (no extra compile); others in their own space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..rules.formula import compile_formula, to_text
from ..rules.program import Program, RuleError, Space, stack
from ..rules.known import RULES, SPACES
from .config import BP_BASELINE, rule_in_space
from .fitness import json_float, summarize_metrics


@dataclass(frozen=True)
class Baseline:
    name: str
    formula: str
    feedback: str | None        # rate networks: the error pathway it ran with
    program: Program
    space: Space
    network: Any                # NetworkConfig (rate) or None (spiking: the run's spiking settings)


def resolve_baselines(specs, space: Space, model: str, network) -> list[Baseline]:
    """Compile baseline names/formulas; ``bp`` is ``fa`` under backpropagated errors."""
    out = []
    for spec in specs:
        rule, net = spec, network
        if spec == BP_BASELINE:
            rule, net = "fa", network.with_(feedback="bp")
        try:
            prog, sp = rule_in_space(rule, space, model), space
        except RuleError:
            prog, sp = RULES[rule].compile() if rule in RULES else compile_formula(rule, SPACES[model])
        uses_error = any(v in ("e", "e_pre") for v in sp.variables)       # feedback matters only to error rules
        fb = getattr(net, "feedback", None) if uses_error else None
        out.append(Baseline(spec, to_text(prog, sp), fb, prog, sp, net))
    return out


def score_baselines(baselines: list[Baseline], evaluator_for: Callable, fitness,
                    min_size: int = 0) -> tuple[list[dict], list]:
    """Score baselines, grouped by (space, network) so that each group is one batch of one evaluator.

    ``evaluator_for(space, network, n)`` returns a :class:`~.engine.SplitEval` on the comparison split.
    Returns (JSON-able dicts with per-instance fitness under ``instances``, per baseline its per-task learning
    curves [S, C] or None). ``min_size`` pads each batch like the candidates' (one compile for both).
    """
    groups: dict = {}
    for i, b in enumerate(baselines):
        groups.setdefault((repr(b.space.to_dict()), repr(b.network)), []).append(i)
    out: list = [None] * len(baselines)
    curves: list = [None] * len(baselines)
    for idx in groups.values():
        first = baselines[idx[0]]
        ev = evaluator_for(first.space, first.network, len(idx))
        own = ev.buckets[-1] <= len(idx)           # an evaluator of its own: no padding to the candidates' batch
        fit, per_task, cvs = ev.evaluate(stack([baselines[i].program for i in idx]), curves=True,
                                         min_size=0 if own else min_size)
        for j, i in enumerate(idx):
            curves[i] = [None if c is None else c[j] for c in cvs]
            b = baselines[i]
            metrics = {"fitness": json_float(fit[j])}
            metrics.update(summarize_metrics([{k: v[j] for k, v in m.items()} for m in per_task]))
            out[i] = {"name": b.name, "formula": b.formula, "feedback": b.feedback, "fitness": json_float(fit[j]),
                      "metrics": metrics, "instances": instance_fitness(fitness, per_task, j)}
    return out, curves


def instance_fitness(fitness, per_task: list[dict], j: int) -> list:
    """Per-instance fitness of candidate ``j`` over every (task, seed) of a split, in a fixed order (NaN kept)."""
    vals = [np.asarray(fitness.per_instance({k: np.asarray(v)[j] for k, v in m.items()}), np.float64).ravel()
            for m in per_task]
    return [float(x) if np.isfinite(x) else None for x in np.concatenate(vals)] if vals else []


def as_array(instances) -> np.ndarray:
    """JSON instance list (None = non-finite) -> float array with NaN."""
    return np.array([np.nan if v is None else float(v) for v in instances], np.float64)


__all__ = ["Baseline", "resolve_baselines", "score_baselines", "instance_fitness", "as_array"]
