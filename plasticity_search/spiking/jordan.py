"""Simulation of the Jordan et al. 2021 protocols (:mod:`plasticity_search.tasks.jordan_tasks`); called by
:func:`plasticity_search.spiking.simulate.simulate` with ``(task, space, prog, hyper, data, key)`` and returning
``(final weights, metrics, learning curve)`` like the other ``_run_*`` functions there.

Both reuse the network's rule application (:func:`.network.learn`: traces, eligibility, one program per step,
docs/SPIKING_CONVENTIONS.md). ``jordan_correlation`` also reuses its LIF layer (:func:`.network.forward`, which is
NEST's ``iaf_psc_delta`` at 1 ms); ``jordan_reward`` has its own neuron (exponential synaptic currents and escape
noise, NEST's ``iaf_psc_exp`` with ``rho``/``delta``), integrated exactly per step.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ..tasks.jordan_tasks import JordanCorrelationTask, JordanRewardTask
from .lif import LIFParams
from .network import Forward, NetSpec, forward, init_state, learn
from .online_curves import window_detection, window_means

__all__ = ["events_to_raster", "jordan_snr", "run_correlation", "run_reward"]


def events_to_raster(row, n_afferents: int, n_steps: int) -> jax.Array:
    """One event row (codes ``step * n_afferents + afferent``, -1 = empty slot) -> 0/1 spikes [n_steps,
    n_afferents] float32."""
    code = jnp.asarray(row).astype(jnp.int32)
    valid = code >= 0
    code = jnp.where(valid, code, 0)
    step, aff = code // n_afferents, code % n_afferents
    raster = jnp.zeros((n_steps, n_afferents), jnp.float32)
    return raster.at[step, aff].max(valid.astype(jnp.float32), mode="drop")


def jordan_snr(v_seg, is_pattern) -> jax.Array:
    """Their signal-to-noise ratio of a free membrane, per column.

    ``v_seg`` [n_seg, T, K]: the membrane sampled every step, cut into segments; ``is_pattern`` [n_seg] bool: the
    segments that are pattern presentations. With V_inter all samples of the other segments:
    ``mean over presentations s of (max V in s - mean(V_inter)) / std(V_inter)`` (std with ddof 0, as their
    ``compute_SNR``). Returns [K].
    """
    pat = jnp.asarray(is_pattern, jnp.float32)
    inter = (1.0 - pat)[:, None, None]
    n_inter = jnp.sum(inter) * v_seg.shape[1]
    mean = jnp.sum(v_seg * inter, (0, 1)) / n_inter
    sd = jnp.sqrt(jnp.sum(((v_seg - mean) ** 2) * inter, (0, 1)) / n_inter)
    peaks = jnp.max(v_seg, axis=1)                                     # [n_seg, K]
    return jnp.sum((peaks - mean) * pat[:, None], 0) / jnp.sum(pat) / sd


# ---------------------------------------------------------------------------------------------------------------
def run_correlation(task: JordanCorrelationTask, space, prog, hyper, data, key):
    n, T = task.n_afferents, task.seg_steps
    lif = LIFParams(dt=task.dt, tau_mem=task.tau_mem, t_ref=task.t_ref, reset=task.reset)
    spec = NetSpec((n, 1), lif=lif, readout="spikes", gains=(1.0 / task.v_th_mv,))   # weights in mV
    k_w, k_v, k_v_test = jax.random.split(key, 3)
    w_init = jnp.clip(task.w0_mv + task.w0_sd_mv * jax.random.normal(k_w), 0.0, task.w_max)
    w0 = jnp.full((1, n), w_init, jnp.float32)
    state = init_state(spec, (w0,))
    v0 = task.v0_sd_mv / task.v_th_mv * jax.random.normal(k_v, (1,))
    state = state._replace(neurons=(state.neurons[0]._replace(v=v0),))
    e0 = jnp.zeros((1,), jnp.float32)

    def segment(state, row):
        raster = events_to_raster(row, n, T)

        def step(carry, s_in):
            state, n_seg = carry
            state, fw = forward(spec, state, s_in)
            state = learn(space, prog, hyper, spec, state, fw, e0)
            state = state._replace(ws=(jnp.clip(state.ws[0], 0.0, task.w_max),))     # their synapse's bounds
            return (state, n_seg + fw.s[-1][0]), None

        return lax.scan(step, (state, jnp.float32(0.0)), raster)[0]       # (state, spikes in the segment)

    state, seg_spikes = lax.scan(segment, state, data.x_stream)
    n_spk = jnp.sum(seg_spikes)                       # spike counts are whole numbers: the same sum in any order
    ws = jnp.concatenate([w0, state.ws[0]], 0)                         # [2, n]: before, after
    v_seg = _free_membrane(task, ws, data.x_eval, k_v_test)
    snr = jordan_snr(v_seg, data.y_eval[:, 0] > 0.5)
    rate = n_spk / (data.x_stream.shape[0] * T * task.dt / 1000.0)
    return state.ws, {"snr": snr[1], "snr_before": snr[0], "rate_hz": rate}, \
        window_detection(seg_spikes > 0, data.y_stream[:, 0] > 0.5, task.period)


def _free_membrane(task: JordanCorrelationTask, ws, rows, key):
    """The membrane without threshold (their V_th = 20000 mV) for each weight vector of ws [K, n] over the test
    segments, sampled every step: [n_seg, T, K] (mV). Input spikes arrive one step after emission."""
    n, T = task.n_afferents, task.seg_steps
    alpha = jnp.float32(math.exp(-task.dt / task.tau_mem))
    v0 = jnp.full((ws.shape[0],), task.v0_sd_mv * jax.random.normal(key), jnp.float32)

    def segment(carry, row):
        def step(carry, s_in):
            v, s_prev = carry
            v = alpha * v + ws @ s_prev
            return (v, s_in), v

        return lax.scan(step, carry, events_to_raster(row, n, T))

    _, v = lax.scan(segment, (v0, jnp.zeros((n,), jnp.float32)), rows)
    return v


# ---------------------------------------------------------------------------------------------------------------
def _exp_neuron(task: JordanRewardTask):
    """One exact step of NEST's iaf_psc_exp with escape noise, in mV (rest 0), pA and ms:
    ``step((V, I, ref), i_arriving_pa, u) -> ((V, I, ref), s, V before the reset, dp/dV in threshold units)``."""
    dt, tm, ts = task.dt, task.tau_mem, task.tau_syn
    p11, p22 = math.exp(-dt / ts), math.exp(-dt / tm)
    p21 = ts * tm / (task.c_m_pf * (tm - ts)) * (p22 - p11)            # mV per pA of synaptic current
    n_ref = float(round(task.t_ref / dt))
    rate_dt = task.rho_hz * dt / 1000.0

    def step(nrn, i_in, u):
        v, i, ref = nrn
        active = ref <= 0
        v = jnp.where(active, p22 * v + p21 * i, v)
        ref = jnp.where(active, ref, ref - 1.0)
        i = p11 * i + i_in
        lam = jnp.minimum(rate_dt * jnp.exp(jnp.minimum((v - task.theta_mv) / task.delta_mv, 80.0)), 50.0)
        p = 1.0 - jnp.exp(-lam)                                           # spike probability of this step
        s = (u < p).astype(jnp.float32)
        dp_dv = task.theta_mv / task.delta_mv * lam * jnp.exp(-lam)
        v_seen = v
        v = jnp.where(s > 0, 0.0, v)
        ref = jnp.where(s > 0, n_ref, ref)
        return (v, i, ref), s, v_seen, dp_dv

    return step


def run_reward(task: JordanRewardTask, space, prog, hyper, data, key):
    n, T = task.n_afferents, task.trial_steps
    spec = NetSpec((n, 1), lif=LIFParams(dt=task.dt, tau_mem=task.tau_mem), readout="spikes")  # for learn()
    k_w, k_c, k_noise, k_test = jax.random.split(key, 4)
    mask = (jax.random.uniform(k_c, (1, n)) < task.connectivity).astype(jnp.float32)
    w0 = task.w0_sd * jax.random.normal(k_w, (1, n), jnp.float32) * mask
    neuron = _exp_neuron(task)
    e0 = jnp.zeros((1,), jnp.float32)
    rest = (jnp.zeros((1,), jnp.float32),) * 3

    def run_trial(state, raster, noise_key, base, plastic: bool):
        """One trial from rest; returns (state, decision spiked 0/1, number of spikes)."""
        u = jax.random.uniform(noise_key, (T,))
        label = None if base is None else base[1]

        def step(carry, xs):
            state, nrn, s_prev, spiked = carry
            s_in, u_k, k = xs
            nrn, s, v, psi = neuron(nrn, task.w_unit_pa * (state.ws[0] @ s_prev), u_k)
            spiked = jnp.maximum(spiked, s[0])
            if plastic:
                R = jnp.where((spiked > 0) == (label > 0), 1.0, -1.0)
                last = k == T - 1
                fw = Forward((s_in, s), (v / task.theta_mv,), (psi,))
                w_gate = jnp.where(last, 1.0, 0.0) if task.update_after_trial else 1.0   # w: after the trial
                state = learn(space, prog, hyper, spec, state, fw, e0, r=jnp.where(last, R, 0.0),
                              rbar=jnp.where(last, base[0], 0.0), w_gate=w_gate)
                state = state._replace(ws=(state.ws[0] * mask,))          # absent synapses stay absent
            return (state, nrn, s_in, spiked), s[0]

        carry = (state, rest, jnp.zeros((n,), jnp.float32), jnp.float32(0.0))
        (state, _, _, spiked), s = lax.scan(step, carry, (raster, u, jnp.arange(T)))
        return state, spiked, jnp.sum(s)

    def trial(carry, xs):
        state, base = carry
        row, y, i = xs
        state = state._replace(tr=jax.tree.map(jnp.zeros_like, state.tr),       # their kernel reset per trial
                               eligs=tuple(jnp.zeros_like(e) for e in state.eligs))
        state, spiked, n_spk = run_trial(state, events_to_raster(row, n, T), jax.random.fold_in(k_noise, i),
                                         (base, y[0]), True)
        R = jnp.where((spiked > 0) == (y[0] > 0), 1.0, -1.0)
        return (state, base + (R - base) / task.baseline_trials), (R, n_spk)

    steps = data.x_stream.shape[0]
    (state, _), (Rs, n_spk) = lax.scan(trial, (init_state(spec, (w0,)), jnp.float32(0.0)),
                                       (data.x_stream, data.y_stream, jnp.arange(steps)))

    def test(row, y, i):
        _, spiked, _ = run_trial(state, events_to_raster(row, n, T), jax.random.fold_in(k_test, i), None, False)
        return ((spiked > 0) == (y[0] > 0)).astype(jnp.float32)

    final = jax.vmap(test)(data.x_eval, data.y_eval, jnp.arange(data.x_eval.shape[0]))
    late = Rs[steps - max(1, steps // 4):]
    rate = jnp.sum(n_spk) / (steps * T * task.dt / 1000.0)
    return state.ws, {"total_reward": jnp.sum(Rs), "late_accuracy": jnp.mean((late > 0).astype(jnp.float32)),
                      "final_accuracy": jnp.mean(final), "rate_hz": rate}, window_means(Rs > 0)
