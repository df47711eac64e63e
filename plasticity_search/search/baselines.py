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
from ..rules.program import Program, RuleError, Space, index, stack
from ..rules.known import RULES, SPACES
from .config import BP_BASELINE, rule_in_space
from .fitness import json_float, summarize_metrics
from .overlap import overlapped


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
            rule, net = "fa", network.with_feedback("bp")
        try:
            prog, sp = rule_in_space(rule, space, model), space
        except RuleError:
            prog, sp = RULES[rule].compile() if rule in RULES else compile_formula(rule, SPACES[model])
        uses_error = any(v in ("e", "e_pre") for v in sp.variables)       # feedback matters only to error rules
        fb = getattr(net, "feedback", None) if uses_error else None
        out.append(Baseline(spec, to_text(prog, sp), fb, prog, sp, net))
    return out


def group_key(space: Space, network) -> tuple:
    """Baselines of one space and network are one batch of one evaluator."""
    return (repr(space.to_dict()), repr(network))


def baseline_groups(baselines: list[Baseline], ride: tuple | None = None) -> dict:
    """{:func:`group_key`: [baseline indices]}; with ``ride`` = (space, network) of programs that run in the same
    call as the baselines of that space and network, that group is present (maybe empty) and comes with them."""
    groups: dict = {}
    for i, b in enumerate(baselines):
        groups.setdefault(group_key(b.space, b.network), []).append(i)
    if ride is not None:
        groups.setdefault(group_key(*ride), [])
    return groups


def group_call(baselines: list[Baseline], idx: list, evaluator_for: Callable, min_size: int = 0) -> Callable:
    """The call that scores the baselines ``idx`` of one group (no programs riding with them): a thunk returning
    ``evaluate(..., curves=True)``'s (fitness, per-task metrics, curves), baseline j of the group at row j."""
    b0 = baselines[idx[0]]

    def call():
        ev = evaluator_for(b0.space, b0.network, len(idx))
        own = ev.buckets[-1] <= len(idx)     # an evaluator of its own: no padding to the candidates' batch
        return ev.evaluate(stack([baselines[i].program for i in idx]), curves=True, min_size=0 if own else min_size)

    return call


def score_baselines(baselines: list[Baseline], evaluator_for: Callable, fitness, min_size: int = 0,
                    with_programs: tuple | None = None, parallel: bool = True,
                    done: Callable | None = None) -> tuple[list[dict], list, tuple | None]:
    """Score baselines, grouped by (space, network) so that each group is one batch of one evaluator.

    ``evaluator_for(space, network, n)`` returns a :class:`~.engine.SplitEval` on the comparison split.
    Returns (JSON-able dicts with per-instance fitness under ``instances``, per baseline its per-task learning
    curves [S, C] or None, the result of ``with_programs``). ``min_size`` pads each batch like the candidates'
    (one compile for both). ``with_programs`` = (programs, space, network): programs that run in the same call as
    the baselines of their space and network (the hall of fame and FA: one call at the end of a run, not two);
    their (fitness, per-task metrics, curves) come back third (None without them). The groups' calls run side by
    side (:func:`.overlap.overlapped`) unless ``parallel`` is False (evaluators sharded over a device mesh).
    ``done(group key)``: the result of a group's call computed ahead (:mod:`.ahead`), or None.
    """
    ride_key = None
    if with_programs is not None:
        ride_progs, ride_space, ride_net = with_programs
        ride_key = group_key(ride_space, ride_net)
    groups = baseline_groups(baselines, None if with_programs is None else (ride_space, ride_net))
    out: list = [None] * len(baselines)
    curves: list = [None] * len(baselines)
    ride = None
    calls, results = [], {}
    for key, idx in groups.items():
        if key == ride_key:
            n_ride = int(np.asarray(ride_progs.term_on).shape[0])
            progs = stack([index(ride_progs, r) for r in range(n_ride)] + [baselines[i].program for i in idx])
            ev = evaluator_for(ride_space, ride_net, n_ride + len(idx))
            calls.append((key, idx, n_ride, lambda ev=ev, p=progs: ev.evaluate(p, curves=True)))
            continue
        got = None if done is None else done(key)
        if got is not None:
            results[key] = got
        calls.append((key, idx, 0, group_call(baselines, idx, evaluator_for, min_size)))
    todo = [c for c in calls if c[0] not in results]
    for (key, *_), r in zip(todo, overlapped([c[-1] for c in todo], workers=None if parallel else 1)):
        results[key] = r
    for key, idx, n_ride, _ in calls:
        fit, per_task, cvs = results[key]
        if n_ride:
            ride = (fit[:n_ride], [{k: v[:n_ride] for k, v in m.items()} for m in per_task],
                    [None if c is None else c[:n_ride] for c in cvs])
        for j, i in enumerate(idx, start=n_ride):
            curves[i] = [None if c is None else c[j] for c in cvs]
            b = baselines[i]
            metrics = {"fitness": json_float(fit[j])}
            metrics.update(summarize_metrics([{k: v[j] for k, v in m.items()} for m in per_task]))
            out[i] = {"name": b.name, "formula": b.formula, "feedback": b.feedback, "fitness": json_float(fit[j]),
                      "metrics": metrics, "instances": instance_fitness(fitness, per_task, j)}
    return out, curves, ride


def instance_fitness(fitness, per_task: list[dict], j: int) -> list:
    """Per-instance fitness of candidate ``j`` over every (task, seed) of a split, in a fixed order (NaN kept)."""
    vals = [np.asarray(fitness.per_instance({k: np.asarray(v)[j] for k, v in m.items()}), np.float64).ravel()
            for m in per_task]
    return [float(x) if np.isfinite(x) else None for x in np.concatenate(vals)] if vals else []


def as_array(instances) -> np.ndarray:
    """JSON instance list (None = non-finite) -> float array with NaN."""
    return np.array([np.nan if v is None else float(v) for v in instances], np.float64)


__all__ = ["Baseline", "resolve_baselines", "score_baselines", "baseline_groups", "group_call", "group_key",
           "instance_fitness", "as_array"]
