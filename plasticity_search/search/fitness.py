"""Fitness from inner-loop metrics: direction, penalties, NaN -> worst, averaging over tasks and seeds.

Per instance (one task, one seed)::

    f = sign(metric) * metric - sum_j weight_j * |penalty_metric_j - target_j|

where ``sign`` comes from :data:`plasticity_search.rate.online.METRIC_SIGN` (+1 higher is better, -1 lower is better).
A candidate's fitness is the mean of ``f`` over every instance of every task of a split; if any instance is
non-finite (NaN/inf metrics, diverged weights) the candidate gets the worst fitness, ``-inf`` internally and
:data:`WORST_JSON` in JSON output. Selection uses ``fitness - complexity_penalty * complexity``; the hall of fame keeps
the raw fitness and trades it off against complexity on its Pareto front.

The same formulas run on numpy arrays (engine) and on traced JAX arrays (the meta-gradient's loss is ``-f``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rate.online import METRIC_SIGN

WORST = float("-inf")
WORST_JSON = -1e9          # the worst fitness as written to JSON (which has no infinities)


@dataclass(frozen=True)
class FitnessFn:
    metric: str
    sign: float
    penalties: tuple = ()          # ((metric, target, weight), ...)
    complexity_penalty: float = 0.0

    @classmethod
    def from_config(cls, cfg) -> "FitnessFn":
        f = cfg.fitness
        return cls(f.metric, float(METRIC_SIGN[f.metric]),
                   tuple((p.metric, float(p.target), float(p.weight)) for p in f.penalties),
                   float(f.complexity_penalty))

    @property
    def metrics_used(self) -> tuple[str, ...]:
        return (self.metric,) + tuple(p[0] for p in self.penalties)

    def per_instance(self, metrics: dict, xp=np):
        """f per instance; ``metrics[name]`` arrays of any (equal) shape; numpy or jax.numpy (``xp``)."""
        f = self.sign * metrics[self.metric]
        for name, target, weight in self.penalties:
            f = f - weight * xp.abs(metrics[name] - target)
        return f

    def aggregate(self, per_task: list) -> np.ndarray:
        """Fitness [P] from per-task arrays [P, S_t]: mean over all instances, non-finite -> -inf."""
        allf = np.concatenate([np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in per_task], axis=1)
        ok = np.all(np.isfinite(allf), axis=1)
        return np.where(ok, np.mean(np.where(np.isfinite(allf), allf, 0.0), axis=1), WORST)

    def penalized(self, fitness, complexity):
        fitness = np.asarray(fitness, np.float64)
        return np.where(np.isfinite(fitness), fitness - self.complexity_penalty * np.asarray(complexity), WORST)


def worst_to_nan(x):
    """np.nan for non-finite values (for summaries)."""
    x = np.asarray(x, np.float64)
    return np.where(np.isfinite(x), x, np.nan)


def json_float(x) -> float:
    """A finite float for JSON: -inf / NaN fitness -> WORST_JSON, +inf -> -WORST_JSON."""
    x = float(x)
    if np.isnan(x) or x == float("-inf"):
        return WORST_JSON
    if x == float("inf"):
        return -WORST_JSON
    return x


def summarize_metrics(metric_arrays: list[dict]) -> dict:
    """Mean and std over all instances of each metric (from per-task dicts of [S] arrays); non-finite -> None."""
    out = {}
    names = sorted(set().union(*[m.keys() for m in metric_arrays])) if metric_arrays else []
    for k in names:
        vals = np.concatenate([np.asarray(m[k], np.float64).ravel() for m in metric_arrays if k in m])
        mean, std = float(np.mean(vals)), float(np.std(vals))
        out[k] = mean if np.isfinite(mean) else None
        out[k + "_std"] = std if np.isfinite(std) else None
    return out


__all__ = ["FitnessFn", "WORST", "WORST_JSON", "json_float", "summarize_metrics", "worst_to_nan"]
