"""Documented maxima of every size a user can give (memory or time grows with them), and the checks of the numbers
the Python API takes: one source for configs (``search.config``), the command line's flags and the functions of
:mod:`plasticity_search.rate` / :mod:`plasticity_search.spiking`.

On the ground floor (no JAX, no package imports) so that every layer can use it.
"""
from __future__ import annotations

import math

import numpy as np

MAX_INSTRUCTIONS = 64          # space.n_post, space.n_pre: the interpreter unrolls every instruction
MAX_TERMS = 256                # space.n_terms, search.init_terms
MAX_POPULATION = 100_000       # search.population / tournament / children, hybrid.population / top_k
MAX_SEEDS = 10_000             # seeds of one task entry (a count or a list), search.hurdle.seeds
MAX_STEPS = 10_000_000         # tasks.*.steps, search.hurdle.steps, coefficients.truncation
MAX_WIDTH = 100_000            # every network.hidden width
MAX_LAYERS = 64                # len(network.hidden)
MAX_BATCH = 65_536             # network.batch_size
MAX_GENERATIONS = 10_000_000   # budget.generations, search.restart_after, hybrid.every
MAX_REFINE_STEPS = 100_000     # hybrid.steps
MAX_DEVICES = 65_536           # budget.devices
MAX_TASK_INT = 10_000_000      # integer task arguments (sizes: n_in, n_eval, n_hidden, k_way, ...)

FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_NORMAL_MIN = 1.1754943508222875e-38     # np.finfo(np.float32).tiny: smaller ones are flushed to 0 on CPU
FLOAT32_RANGE = f"{FLOAT32_NORMAL_MIN:.2g} <= |v| <= {FLOAT32_MAX:.3g}"


def in_float32_range(v: float) -> bool:
    """``v`` is 0 or within float32's normal range: a learning rate of 1e300 would be inf in float32, one of
    1e-320 zero (the one test of configs, of the command line's flags and of the Python API's rates)."""
    return v == 0 or FLOAT32_NORMAL_MIN <= abs(v) <= FLOAT32_MAX


def check_count(name: str, v, hi: int, error=ValueError) -> int:
    """``v`` as an int in [1, hi]; ``error`` (one line naming ``name``) for a bool, a non-integer or out of range."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise error(f"{name} must be an integer, got {v!r}"[:200])
    if not 1 <= int(v) <= hi:
        raise error(f"{name} must be in [1, {hi}] (the documented maximum), got {int(v)}")
    return int(v)


def check_rate(name: str, v, error=ValueError, zero: bool = False) -> float:
    """``v`` as a finite float > 0 (``zero``: >= 0) within float32's range (learning rates); ``error`` naming
    ``name`` otherwise."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise error(f"{name} must be a number, got {v!r}"[:200])
    v = float(v)
    if not (math.isfinite(v) and (v >= 0 if zero else v > 0)):
        raise error(f"{name} must be a finite number {'>=' if zero else '>'} 0, got {v}")
    if not in_float32_range(v):
        raise error(f"{name} must be within float32's range ({FLOAT32_RANGE}), got {v}")
    return v


def check_widths(name: str, hidden, error=ValueError) -> None:
    """At most MAX_LAYERS hidden layers of at most MAX_WIDTH neurons."""
    if len(hidden) > MAX_LAYERS or any(int(h) > MAX_WIDTH for h in hidden):
        raise error(f"{name}: at most {MAX_LAYERS} hidden layers of at most {MAX_WIDTH} neurons, got "
                    f"{'-'.join(str(int(h)) for h in hidden)[:120]}")


def check_run_args(error=ValueError, *, seeds=1, steps=None, split="final", lr=None, readout_lr=None,
                   batch_size=1):
    """The numbers of an evaluation from Python, bounded as the same numbers of a config or a flag: (seeds, steps,
    lr, readout_lr, batch_size), or ``error`` naming the argument (a NaN learning rate, 2.7 seeds or a billion
    steps would otherwise run, or exhaust the memory). A learning rate of 0 is allowed here (the same network
    without plasticity: a control), not in configs and flags."""
    seeds = check_count("seeds", seeds, MAX_SEEDS, error)
    steps = None if steps is None else check_count("steps", steps, MAX_STEPS, error)
    if split not in ("search", "select", "final"):
        raise error(f"split must be search, select or final, got {split!r}"[:200])
    lr = None if lr is None else check_rate("lr", lr, error, zero=True)
    readout_lr = None if readout_lr is None else check_rate("readout_lr", readout_lr, error, zero=True)
    batch_size = check_count("batch_size", batch_size, MAX_BATCH, error)
    return seeds, steps, lr, readout_lr, batch_size


__all__ = ["MAX_BATCH", "MAX_DEVICES", "MAX_GENERATIONS", "MAX_INSTRUCTIONS", "MAX_LAYERS", "MAX_POPULATION",
           "MAX_REFINE_STEPS", "MAX_SEEDS", "MAX_STEPS", "MAX_TASK_INT", "MAX_TERMS", "MAX_WIDTH", "FLOAT32_MAX",
           "FLOAT32_NORMAL_MIN", "FLOAT32_RANGE", "check_count", "check_rate", "check_run_args", "check_widths",
           "in_float32_range"]
