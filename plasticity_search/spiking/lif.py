"""Leaky integrate-and-fire neurons (current-based), optionally with an adaptive threshold, and leaky readouts.

Discrete-time LIF with step ``dt`` (ms), ``alpha = exp(-dt/tau_mem)``, membrane in units where the (base)
threshold is ``v_th`` (1 by default)::

    v      <- alpha * v + (1 - alpha) * i_ext + i_syn            (not while refractory: v is held)
    theta   = v_th + beta_adapt * a                              (adaptive threshold; beta_adapt = 0: plain LIF)
    s       = [v >= theta] and not refractory
    v_out   = v                                                  (the membrane the rule sees, before the reset)
    psi     = gamma / v_th * max(0, 1 - |v - theta| / v_th)      (pseudo-derivative, Bellec et al. 2020; 0 while
                                                                  refractory)
    reset: 'subtract' v <- v - s * theta ; 'zero' v <- v_reset where s ; 'none' no reset
    refractory for round(t_ref / dt) steps after a spike; a <- rho * a + s with rho = exp(-dt/tau_adapt).

``i_ext`` is a current in membrane units (a constant ``i_ext > v_th`` makes a tonic firing neuron, ``v -> i_ext``
without a threshold), ``i_syn`` the jump of the membrane caused by this step's input spikes (``W @ s_pre``).

A *leaky readout* (:func:`readout_step`) is the same membrane without threshold: ``v <- alpha*v + i_syn``; it never
spikes and reports ``psi = 1`` (the derivative of a linear readout w.r.t. its membrane, as in e-prop).
All functions are pure JAX on arrays of any shape, vmappable; parameters are static (a frozen dataclass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["LIFParams", "LIFState", "lif_init", "lif_step", "readout_step", "lif_rate_theory", "RESETS"]

RESETS = ("subtract", "zero", "none")


@dataclass(frozen=True)
class LIFParams:
    dt: float = 1.0            # ms
    tau_mem: float = 20.0      # ms
    v_th: float = 1.0
    v_reset: float = 0.0       # for reset='zero' and the value held during the refractory period
    reset: str = "subtract"    # 'subtract' | 'zero' | 'none'
    t_ref: float = 0.0         # ms
    tau_adapt: float = 0.0     # ms; 0 = no adaptive threshold
    beta_adapt: float = 0.0    # threshold increase per unit of adaptation
    gamma_psi: float = 0.3     # pseudo-derivative scale (Bellec et al. 2020)

    def __post_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        if not (self.dt > 0 and self.tau_mem > 0 and self.t_ref >= 0 and self.tau_adapt >= 0):
            raise ValueError("LIF needs dt > 0, tau_mem > 0, t_ref >= 0, tau_adapt >= 0")

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @property
    def n_ref(self) -> int:
        return int(round(self.t_ref / self.dt))

    @property
    def rho(self) -> float:
        return math.exp(-self.dt / self.tau_adapt) if self.tau_adapt > 0 else 0.0


class LIFState(NamedTuple):
    v: jax.Array      # membrane after the last reset
    ref: jax.Array    # remaining refractory steps (float, 0 = not refractory)
    a: jax.Array      # threshold adaptation variable


def lif_init(shape, p: LIFParams, v0=None) -> LIFState:
    z = jnp.zeros(shape, jnp.float32)
    return LIFState(z if v0 is None else jnp.broadcast_to(jnp.asarray(v0, jnp.float32), shape), z, z)


def lif_step(state: LIFState, i_syn, p: LIFParams, i_ext=0.0):
    """One step; returns (new_state, spikes 0/1, v before the reset, psi). See the module docstring."""
    alpha = jnp.float32(p.alpha)
    active = state.ref <= 0
    v = jnp.where(active, alpha * state.v + (1.0 - alpha) * i_ext + i_syn, state.v)
    theta = p.v_th + p.beta_adapt * state.a if p.beta_adapt else jnp.float32(p.v_th)
    s = jnp.where(active & (v >= theta), 1.0, 0.0).astype(jnp.float32)
    psi = jnp.where(active, (p.gamma_psi / p.v_th) * jnp.maximum(0.0, 1.0 - jnp.abs(v - theta) / p.v_th), 0.0)
    v_seen = v
    if p.reset == "subtract":
        v = v - s * theta
    elif p.reset == "zero":
        v = jnp.where(s > 0, jnp.float32(p.v_reset), v)
    ref = jnp.where(s > 0, jnp.float32(p.n_ref), jnp.maximum(state.ref - 1.0, 0.0))
    a = p.rho * state.a + s if p.beta_adapt else state.a
    return LIFState(v, ref, a), s, v_seen, psi.astype(jnp.float32)


def readout_step(v, i_syn, p: LIFParams):
    """Leaky readout (no threshold): returns the new membrane (also the value the rule sees); psi = 1."""
    return jnp.float32(p.alpha) * v + i_syn


def lif_rate_theory(i_ext: float, p: LIFParams) -> float:
    """Firing rate (Hz) of the discrete LIF with reset 'zero' (v_reset = 0) under a constant current.

    Steps from 0 to threshold: the smallest n with ``i_ext (1 - alpha^n) >= v_th``; the inter-spike interval is
    ``n + n_ref`` steps (the spike step starts the refractory count). 0 if ``i_ext <= v_th``.
    """
    if i_ext <= p.v_th:
        return 0.0
    n = math.ceil(math.log(1.0 - p.v_th / i_ext) / math.log(p.alpha) - 1e-9)
    return 1000.0 / ((n + p.n_ref) * p.dt)
