"""Learning-curve panels of a finished search: the top rules and the baselines on the comparison split, from the
same evaluation that scored them (no extra training runs). The runs layer plots them (``plots/curves.json``).

Panel format, one per task: ``{"metric", "xlabel", "x", "split", "series": {label: {"mean": [...], "std": [...]}}}``
with mean and std over the task's seeds at each of the inner loop's curve points (rate and spiking tasks alike; the
x axis counts the task's steps: online updates, presentations, segments, trials, time steps).
"""
from __future__ import annotations

import warnings

import numpy as np


def curve_x(n_steps: int, points: int) -> list[int]:
    """The x of each curve point: the last step of its window (``points`` windows of ``n_steps // points`` steps;
    the last ``n_steps mod points`` steps belong to none)."""
    return [(k + 1) * (n_steps // points) for k in range(points)]


def rank_label(rank: int, formula: str) -> str:
    return f"rank {rank}: {formula}"[:48]


def baseline_label(name: str) -> str:
    return {"fa": "baseline FA", "bp": "baseline BP"}.get(name, f"baseline {name}")[:48]


def series(curves) -> dict:
    """{"mean", "std"} over seeds of one rule's curves [S, C] (a rule that exploded is NaN: a gap in the plot)."""
    c = np.asarray(curves, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"mean": [None if not np.isfinite(v) else float(v) for v in np.nanmean(c, 0)],
                "std": [None if not np.isfinite(v) else float(v) for v in np.nanstd(c, 0)]}


def panels(tasks_and_entries: list, split: str, named_curves: list[tuple[str, list]], max_tasks: int = 2) -> dict:
    """Panels for the first ``max_tasks`` tasks; ``named_curves``: [(label, per-task curves [S, C] or None)]."""
    out = {}
    for t, (task, entry) in enumerate(tasks_and_entries[:max_tasks]):
        ser = {lab: series(cv[t]) for lab, cv in named_curves if cv is not None and cv[t] is not None}
        if not ser:
            continue
        n_steps = entry.steps or task.default_steps
        x = curve_x(n_steps, len(next(iter(ser.values()))["mean"]))
        title = task.name if len(tasks_and_entries) == 1 else f"{task.name} ({entry.task})"
        out[f"{title} [{split}]"] = {"metric": task.curve_metric, "xlabel": task.steps_unit, "x": x, "split": split,
                                     "series": ser}
    return out


__all__ = ["curve_x", "panels", "series", "rank_label", "baseline_label"]
