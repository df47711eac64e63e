"""Learning curves of the spiking inner loop: what the network did while it learned, in equal windows of the
training stream (``tasks.base.CURVE_POINTS`` of them, as the rate inner loop's online scores).

Each task reports the signal it has online: classification, the prediction of each presentation before learning on
it (online accuracy); detection (stdp_pattern, jordan_correlation), whether the neuron fired in each training
segment while the rule was learning, as hit rate minus false-alarm rate of the window (windows of at least one
pattern period, so that each holds pattern and background segments); regression (spiking_teacher), the squared
error of the readout against the teacher at each step; reward tasks, whether each trial was rewarded. What they
measure is ``Task.curve_metric``. Pure JAX, static shapes.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..tasks.base import CURVE_POINTS

__all__ = ["CURVE_POINTS", "window_means", "window_detection"]


def _windows(x, points: int):
    """x [n, ...] as [C, n // C, ...] with C = min(points, n); the last n mod C items are dropped."""
    n = x.shape[0]
    c = max(1, min(points, n))
    m = n // c
    return x[: c * m].reshape((c, m) + x.shape[1:])


def window_means(x, points: int = CURVE_POINTS):
    """Means of ``x`` [n] over ``min(points, n)`` equal consecutive windows: [C] float32."""
    return jnp.mean(_windows(jnp.asarray(x, jnp.float32), points), axis=1)


def window_detection(fired, is_pattern, period: int, points: int = CURVE_POINTS):
    """Per window of segments: the fraction of pattern segments in which the neuron ``fired`` minus that of the
    other segments (``fired``, ``is_pattern`` [n]), in ``min(points, n // period)`` windows (at least ``period``
    segments each, a pattern ``period`` of the task). A window without pattern segments (or without others: a
    stream shorter than a period) is NaN."""
    points = max(1, min(points, fired.shape[0] // period))
    f = _windows(jnp.asarray(fired, jnp.float32), points)
    p = _windows(jnp.asarray(is_pattern, jnp.float32), points)
    hit = jnp.sum(f * p, 1) / jnp.sum(p, 1)
    fa = jnp.sum(f * (1.0 - p), 1) / jnp.sum(1.0 - p, 1)
    return hit - fa
