"""Learning curves of the spiking inner loop: what the network did while it learned, in equal windows of the
training stream (the rate inner loop's curves are its online scores in windows too, ``InnerConfig.curve_points``).

Each task reports the signal it already has online, before the rule has learned from the current item:
classification, the prediction of each presentation (online accuracy); detection (stdp_pattern, jordan_correlation),
whether the neuron fired in each training segment, as hit rate minus false-alarm rate of the window; regression
(spiking_teacher), the squared error of the readout against the teacher at each step; reward tasks, whether each
trial was rewarded. Pure JAX, static shapes.
"""
from __future__ import annotations

import jax.numpy as jnp

CURVE_POINTS = 20          # windows per curve: the rate inner loop's default (rate.InnerConfig.curve_points)

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


def window_detection(fired, is_pattern, points: int = CURVE_POINTS):
    """Per window of segments: the fraction of pattern segments in which the neuron ``fired`` minus that of the
    other segments (``fired``, ``is_pattern`` [n]). A window without pattern segments (or without others) is NaN."""
    f = _windows(jnp.asarray(fired, jnp.float32), points)
    p = _windows(jnp.asarray(is_pattern, jnp.float32), points)
    hit = jnp.sum(f * p, 1) / jnp.sum(p, 1)
    fa = jnp.sum(f * (1.0 - p), 1) / jnp.sum(1.0 - p, 1)
    return hit - fa
