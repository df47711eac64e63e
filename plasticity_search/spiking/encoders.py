"""Input encoders: values -> spike trains (pure JAX; the random ones take a key first).

* :func:`poisson_spikes` -- rate code: in each step of ``dt`` ms an input with rate ``r`` Hz spikes with
  probability ``r * dt / 1000`` (Bernoulli per step, the discrete Poisson process).
* :func:`latency_spikes` -- time-to-first-spike code: a value ``x`` in [0, 1] spikes once, at step
  ``round((1 - x) * (t_max / dt))`` (large values early); values ``<= x_min`` do not spike.
* :func:`population_rates` -- Gaussian receptive fields: each input dimension becomes ``n`` inputs with centres
  evenly spaced on [lo, hi] and width ``sigma = (hi - lo) / (n - 1)`` (or given), rate ``max_rate*exp(-d^2/2s^2)``.
* :func:`times_to_spikes` -- a row of spike *step indices* (-1: no spike) as the 0/1 spikes of one step.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["poisson_spikes", "latency_steps", "latency_spikes", "population_rates", "times_to_spikes"]


def poisson_spikes(key, rates_hz, n_steps: int, dt: float = 1.0) -> jax.Array:
    """0/1 float32 spikes [n_steps, *rates.shape] with per-step probability ``rates_hz * dt / 1000``."""
    rates = jnp.asarray(rates_hz, jnp.float32)
    p = jnp.clip(rates * (dt / 1000.0), 0.0, 1.0)
    u = jax.random.uniform(key, (n_steps,) + rates.shape)
    return (u < p).astype(jnp.float32)


def latency_steps(x, t_max: float, dt: float = 1.0, x_min: float = 0.0) -> jax.Array:
    """Spike step of each value (float32; -1 = no spike): ``round((1 - x) * t_max / dt)`` for ``x > x_min``."""
    x = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    t = jnp.round((1.0 - x) * (t_max / dt))
    return jnp.where(x > x_min, t, -1.0).astype(jnp.float32)


def latency_spikes(x, n_steps: int, t_max: float, dt: float = 1.0, x_min: float = 0.0) -> jax.Array:
    """0/1 float32 spikes [n_steps, *x.shape]: one spike per value above ``x_min`` (see :func:`latency_steps`)."""
    t = latency_steps(x, t_max, dt, x_min)
    steps = jnp.arange(n_steps, dtype=jnp.float32).reshape((n_steps,) + (1,) * t.ndim)
    return (steps == t[None]).astype(jnp.float32)


def population_rates(x, n: int, max_rate_hz: float, lo: float = 0.0, hi: float = 1.0,
                     sigma: float | None = None) -> jax.Array:
    """Gaussian receptive fields: [..., d] values -> [..., d * n] rates (Hz), dimension-major."""
    x = jnp.asarray(x, jnp.float32)
    centres = jnp.linspace(lo, hi, n) if n > 1 else jnp.array([(lo + hi) / 2], jnp.float32)
    s = sigma if sigma is not None else ((hi - lo) / (n - 1) if n > 1 else (hi - lo))
    r = max_rate_hz * jnp.exp(-((x[..., None] - centres) ** 2) / (2.0 * s * s))
    return r.reshape(x.shape[:-1] + (x.shape[-1] * n,))


def times_to_spikes(times, step) -> jax.Array:
    """0/1 float32 spikes of the inputs whose spike step equals ``step`` (``times`` -1: never)."""
    return (jnp.asarray(times) == step).astype(jnp.float32)
