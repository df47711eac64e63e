"""The classic STDP pairing protocol, run through the simulator's own per-step rule code.

One presynaptic and one postsynaptic neuron share one synapse. For every offset ``delta = t_post - t_pre`` the two
spikes are *imposed* (no membrane dynamics), the rule is applied every step in the order of
docs/SPIKING_CONVENTIONS.md (:mod:`plasticity_search.spiking.plasticity`, the same functions every network uses),
and the total weight change is returned.

Protocol, exactly (so that exporters can reproduce it): with ``k = round(delta / dt)`` steps and
``m = round(margin_ms / dt)`` (default 10 ms), every offset runs the same ``n = 2 m + max|k| + 1`` steps of length
``dt`` starting at t = 0; the pre spike is in step ``i_pre = m + max(0, -k)``, the post spike in ``i_pre + k``.
The weight starts at ``w0``; the eligibility and all traces at 0; ``v = psi = e = r = rbar = 0`` unless given as
keyword overrides (constants). Learning rate, time constants and weight bounds come from the rule's registry
``defaults`` (fall-backs in SPIKING_CONVENTIONS.md), updated by the keyword overrides.

For pair STDP ``A_plus*sy*tx - A_minus*ty*sx`` this gives ``lr*A_plus*exp(-delta/tau_plus)`` for delta > 0,
``-lr*A_minus*exp(delta/tau_minus)`` for delta < 0 and 0 for delta = 0 (:func:`analytic_window`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..rules.program import Program, RuleError, Space
from ..rules.known import RULES
from .plasticity import (RuleHyper, add_spikes, apply_rule, decay_traces, rule_hyper, side_inputs,
                         zero_traces)

__all__ = ["pairing_dw", "pairing_run", "analytic_window", "ANALYTIC_RULES"]

_CONST_VARS = ("v", "psi", "e", "r", "rbar")


@functools.lru_cache(maxsize=32)
def _pairing_fn(space: Space, n_steps: int):
    def one(prog: Program, hyper: RuleHyper, consts, w0, i_pre, i_post):
        post_vals = {k: consts[k] for k in ("v", "psi", "e")}
        glob = {k: consts[k] for k in ("r", "rbar")}

        def step(carry, t):
            tr, w, elig, sum_dw, sum_de = carry
            tr, (elig,) = decay_traces(tr, (elig,), hyper)
            sx = jnp.where(t == i_pre, 1.0, 0.0)[None].astype(jnp.float32)
            sy = jnp.where(t == i_post, 1.0, 0.0)[None].astype(jnp.float32)
            post_in = side_inputs(space, "post", dict(post_vals, sy=sy, ty=tr.ty, ty2=tr.ty2), 1, glob)
            pre_in = side_inputs(space, "pre", {"sx": sx, "tx": tr.tx, "tx2": tr.tx2}, 1, glob)
            (w,), (elig,), (dw,), (de,) = apply_rule(space, prog, hyper, post_in, pre_in, (w,), (elig,), (1,), (1,))
            return (add_spikes(tr, sx, sy), w, elig, sum_dw + dw, sum_de + de), None

        w = jnp.full((1, 1), w0, jnp.float32)
        z = jnp.zeros((1, 1), jnp.float32)
        (tr, w, elig, sum_dw, sum_de), _ = lax.scan(step, (zero_traces(1, 1), w, z, z, z), jnp.arange(n_steps))
        return sum_dw[0, 0], sum_de[0, 0]

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, None, 0, 0)))


def pairing_run(rule, offsets_ms, dt: float = 0.1, w0: float = 0.5, *, margin_ms: float = 10.0,
                **overrides) -> dict[str, np.ndarray]:
    """Run the pairing protocol; returns {'offsets_ms', 'dw', 'delig'} (numpy, one entry per offset).

    ``dw`` is the sum of the weight changes applied in every step (``w_final - w0`` without float32 rounding);
    ``delig`` the sum of the eligibility drives ``dE`` (the eligibility window, before the trace's decay).

    ``rule`` is a :class:`~plasticity_search.rules.resolve.ResolvedRule` (or anything with ``program``,
    ``space`` and ``defaults``). ``overrides``: ``lr``, ``tau_plus``, ``tau_minus``, ``tau_x``, ``tau_y``,
    ``tau_elig``, ``w_bounds`` (None: unbounded), and constants for ``v``, ``psi``, ``e``, ``r``, ``rbar``.
    """
    offsets = np.atleast_1d(np.asarray(offsets_ms, np.float64))
    if offsets.size == 0:
        raise RuleError("pairing protocol needs at least one offset")
    if not (dt > 0 and np.isfinite(dt)):
        raise RuleError(f"dt must be a positive number, got {dt}")
    consts = {k: np.float32(overrides.pop(k, 0.0)) for k in _CONST_VARS}
    hyper = rule_hyper(getattr(rule, "defaults", None) or {}, dt=dt, **overrides)
    k = np.rint(offsets / dt).astype(np.int64)
    m = int(round(margin_ms / dt))
    n = int(2 * m + np.abs(k).max() + 1)
    i_pre = m + np.maximum(0, -k)
    i_post = i_pre + k
    space = rule.space
    prog = Program(*[jnp.asarray(x) for x in rule.program])
    dw, de = _pairing_fn(space, n)(prog, hyper, consts, np.float32(w0), jnp.asarray(i_pre, jnp.int32),
                                   jnp.asarray(i_post, jnp.int32))
    return {"offsets_ms": offsets, "dw": np.asarray(dw, np.float64), "delig": np.asarray(de, np.float64)}


def pairing_dw(rule, offsets_ms, dt: float = 0.1, w0: float = 0.5, **overrides) -> np.ndarray:
    """Total weight change after one pre and one post spike at ``t_post - t_pre = offset`` (ms), per offset.

    See the module docstring for the exact protocol. Returns a float64 numpy array shaped like ``offsets_ms``.
    """
    return pairing_run(rule, offsets_ms, dt, w0, **overrides)["dw"].reshape(np.shape(offsets_ms))


# --------------------------------------------------------------------------------------------------------------
def _params(rule_name: str, kw: dict) -> dict:
    r = RULES[rule_name]
    p = dict(r.params)
    p.update(r.defaults)
    p.update(kw)
    for k, v in (("tau_plus", 20.0), ("tau_minus", 20.0), ("tau_x", 101.0), ("tau_y", 125.0), ("lr", 1.0),
                 ("w0", 0.5)):
        p.setdefault(k, v)
    return p


def _pair_window(offsets, ltp, ltd, tau_plus, tau_minus):
    d = np.asarray(offsets, np.float64)
    return np.where(d > 0, ltp * np.exp(-np.abs(d) / tau_plus),
                    np.where(d < 0, -ltd * np.exp(-np.abs(d) / tau_minus), 0.0))


def analytic_window(rule_name: str, offsets_ms, **defaults) -> np.ndarray:
    """The analytic single-pair weight change of a known rule (same conventions as :func:`pairing_dw`).

    Known: ``stdp_add`` (``lr*A_plus*exp(-d/tau_plus)`` / ``-lr*A_minus*exp(d/tau_minus)``), ``stdp_mult``
    (LTP scaled by ``1 - w0``, LTD by ``alpha*w0``), ``stdp_triplet`` (a single pair never sees a previous spike,
    so only the pair terms ``A2p``/``A2m`` act), ``vogels`` (``eta*(exp(-|d|/tau) - alpha)``: the pre spike always
    pays ``-eta*alpha``) and ``r_stdp`` (the *eligibility* window ``A_plus``/``-A_minus``; its weight change is 0
    without reward). ``defaults`` override the registry parameters, taus, ``lr`` and ``w0``.
    Weight bounds are not applied (use offsets and ``w0`` that keep the weight inside them).
    """
    if rule_name not in ANALYTIC_RULES:
        raise RuleError(f"no analytic window for '{rule_name}' (known: {', '.join(ANALYTIC_RULES)})")
    p = _params(rule_name, defaults)
    tp, tm, lr = p["tau_plus"], p["tau_minus"], p["lr"]
    if rule_name == "stdp_add":
        return lr * _pair_window(offsets_ms, p["A_plus"], p["A_minus"], tp, tm)
    if rule_name == "stdp_mult":
        w0 = p["w0"]
        return lr * p["lam"] * _pair_window(offsets_ms, 1.0 - w0, p["alpha"] * w0, tp, tm)
    if rule_name == "stdp_triplet":
        return lr * _pair_window(offsets_ms, p["A2p"], p["A2m"], tp, tm)
    if rule_name == "r_stdp":
        return _pair_window(offsets_ms, p["A_plus"], p["A_minus"], tp, tm)
    if rule_name == "vogels":
        d = np.asarray(offsets_ms, np.float64)
        tau = np.where(d > 0, tp, tm)
        return lr * p["eta"] * (np.where(d == 0, 0.0, np.exp(-np.abs(d) / tau)) - p["alpha"])
    raise AssertionError(rule_name)


ANALYTIC_RULES = ("stdp_add", "stdp_mult", "stdp_triplet", "r_stdp", "vogels")
