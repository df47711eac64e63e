"""The spiking inner loop: one rule program, one task instance -> metrics (pure JAX; vmap it over both).

:func:`simulate` dispatches on the task's type; each ``_run_*`` function takes
``(task, space, prog, hyper, data, key, feedback)`` with ``data`` one instance's ``TaskData`` (JAX arrays) and
``key`` its :func:`~plasticity_search.spiking.spiking_model.instance_key`, and returns (final weights, a dict of
scalar metrics, a learning curve [C]: :mod:`.online_curves`); :func:`simulate` adds ``finite`` (1.0 if every final
weight and metric is finite). Where ``finite`` is 0 the task's metrics and the curve are NaN, so a rule that
exploded can never look good. Initial weights and feedback matrices depend on the key only (the same for
every candidate), and so do the Poisson spikes: under ``vmap`` over a population they are drawn once.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..rules.program import Program, Space
from .encoders import latency_spikes, poisson_spikes, population_rates, times_to_spikes
from .lif import LIFParams, readout_step
from .online_curves import window_detection, window_means
from .network import NetSpec, feedback_matrices, forward, init_state, learn, reset_neurons
from .plasticity import RuleHyper
from ..tasks.jordan_tasks import JordanCorrelationTask, JordanRewardTask
from ..tasks.spike_tasks import PatternTask, RewardTask, SpikingClassificationTask, TeacherTask
from .jordan import run_correlation, run_reward

__all__ = ["simulate", "train", "metric_names"]


def metric_names(task) -> tuple[str, ...]:
    return tuple(task.metrics) + ("finite",)


def simulate(task, space: Space, prog: Program, hyper: RuleHyper, data, key, feedback: str = "fa") -> tuple:
    """Train on one instance with the rule, score it: ({metric: scalar}, learning curve [C]); see the module
    docstring."""
    ws, metrics, curve = _run(task, space, prog, hyper, data, key, feedback)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(w)) for w in ws]
                               + [jnp.isfinite(v) for v in metrics.values()]))
    metrics = {k: jnp.where(finite, v, jnp.nan) for k, v in metrics.items()}
    metrics["finite"] = finite.astype(jnp.float32)
    return metrics, jnp.where(finite, curve, jnp.nan)


def train(task, space: Space, prog: Program, hyper: RuleHyper, data, key, feedback: str = "fa") -> tuple:
    """Every layer's weights [n_post, n_pre] after training on one instance with the rule (as :func:`simulate`
    trains: the same initial weights, data and spikes for the same key)."""
    return _run(task, space, prog, hyper, data, key, feedback)[0]


def _run(task, space, prog, hyper, data, key, feedback):
    if isinstance(task, SpikingClassificationTask):
        out = _run_classification(task, space, prog, hyper, data, key, feedback)
    elif isinstance(task, PatternTask):
        out = _run_pattern(task, space, prog, hyper, data, key)
    elif isinstance(task, TeacherTask):
        out = _run_teacher(task, space, prog, hyper, data, key)
    elif isinstance(task, RewardTask):
        out = _run_reward(task, space, prog, hyper, data, key)
    elif isinstance(task, JordanCorrelationTask):      # the protocols of Jordan et al. 2021 (jordan.py)
        out = run_correlation(task, space, prog, hyper, data, key)
    elif isinstance(task, JordanRewardTask):
        out = run_reward(task, space, prog, hyper, data, key)
    else:
        raise TypeError(f"task {getattr(task, 'name', task)!r} is not a spiking task")
    return out


def _lif(task, **kw) -> LIFParams:
    return LIFParams(dt=task.dt, tau_mem=task.tau_mem, t_ref=task.t_ref, reset=task.reset,
                     tau_adapt=task.tau_adapt, beta_adapt=task.beta_adapt, **kw)


# ---------------------------------------------------------------------------------------------------------------
def _encode(task: SpikingClassificationTask, x, key):
    T = task.n_pres
    vals = x if task.population == 1 else population_rates(x, task.population, 1.0)
    if task.encoder == "poisson":
        return poisson_spikes(key, task.max_rate_hz * vals, T, task.dt)
    if task.encoder == "latency":
        return latency_spikes(vals, T, t_max=0.8 * T * task.dt, dt=task.dt)
    raise ValueError(f"unknown encoder {task.encoder!r} (poisson, latency)")


def _class_spec(task, feedback) -> NetSpec:
    hid = task.hidden
    return NetSpec((task.n_inputs,) + hid + (task.n_out,), lif=_lif(task), readout=task.readout,
                   out_tau=task.tau_mem, gains=(task.gain_in,) + (task.gain_hid,) * (len(hid) - 1) + (task.gain_out,),
                   feedback=feedback)


def _class_weights(task, spec: NetSpec, k_w1, k_w2, key):
    """Initial weights: input layer N(0, w_in^2/n_in), hidden-to-hidden N(0, w_hid^2/n), readout N(0, w_out^2/n)
    (a one-hidden-layer network draws exactly what it always did; the second hidden layer's from its own key)."""
    sizes = spec.sizes
    ws = [task.w_in * jax.random.normal(k_w1, (sizes[1], sizes[0])) / jnp.sqrt(sizes[0])]
    for l in range(2, len(sizes) - 1):
        k = jax.random.fold_in(key, 100 + l)
        ws.append(task.w_hid * jax.random.normal(k, (sizes[l], sizes[l - 1])) / jnp.sqrt(sizes[l - 1]))
    ws.append(task.w_out * jax.random.normal(k_w2, (sizes[-1], sizes[-2])) / jnp.sqrt(sizes[-2]))
    return tuple(ws)


def _run_classification(task, space, prog, hyper, data, key, feedback):
    spec = _class_spec(task, feedback)
    k_w1, k_w2, k_b, k_stream, k_eval = jax.random.split(key, 5)
    C = spec.sizes[-1]
    ws0 = _class_weights(task, spec, k_w1, k_w2, key)
    B = feedback_matrices(k_b, spec)
    spiking_out = task.readout == "spikes"
    T = task.n_pres
    rate_decay = jnp.float32(jnp.exp(-task.dt / 20.0))
    rate_scale = 1000.0 / (20.0 * task.target_rate_hz)       # 20 ms trace -> rate / target rate

    def readout_value(fw):
        return fw.s[-1] if spiking_out else fw.v[-1]

    def out_error(fw, z, y):
        # gradient of the presentation's time-averaged loss w.r.t. this step's output
        if spiking_out:
            return (z * rate_scale - y) / T
        return (jax.nn.softmax(fw.v[-1]) - y) / T

    def predict(ws, spikes):
        """Forward pass only (no plasticity) from rest: (summed readout, summed membrane) [C]."""
        def step(carry, s_t):
            st, acc, vacc = carry
            st, fw = forward(spec, st, s_t)
            return (st, acc + readout_value(fw), vacc + fw.v[-1]), None

        zc = jnp.zeros((C,), jnp.float32)
        (_, acc, vacc), _ = lax.scan(step, (init_state(spec, ws), zc, zc), spikes)
        return acc, vacc

    def present(state, xy_i):
        x, y, i = xy_i
        spikes = _encode(task, x, jax.random.fold_in(k_stream, i))
        acc, vacc = predict(state.ws, spikes)              # the prediction before learning on this sample
        state = reset_neurons(spec, state)

        def step(carry, s_t):
            state, z = carry
            state, fw = forward(spec, state, s_t)
            z = rate_decay * z + fw.s[-1]
            state = learn(space, prog, hyper, spec, state, fw, out_error(fw, z, y), B)
            return (state, z), None

        (state, _), _ = lax.scan(step, (state, jnp.zeros((C,), jnp.float32)), spikes)
        return state, _decide(acc, vacc) == jnp.argmax(y)

    state = init_state(spec, ws0)
    steps = data.x_stream.shape[0]
    state, correct = lax.scan(present, state, (data.x_stream, data.y_stream, jnp.arange(steps)))

    def eval_one(x, y, i):
        acc, vacc = predict(state.ws, _encode(task, x, jax.random.fold_in(k_eval, i)))
        ce = -jnp.sum(y * jax.nn.log_softmax(acc / T))
        return _decide(acc, vacc) == jnp.argmax(y), ce

    ok, ce = jax.vmap(eval_one)(data.x_eval, data.y_eval, jnp.arange(data.x_eval.shape[0]))
    return state.ws, {"online_accuracy": jnp.mean(correct.astype(jnp.float32)),
                      "final_accuracy": jnp.mean(ok.astype(jnp.float32)), "final_loss": jnp.mean(ce)}, \
        window_means(correct)


def _decide(score, tiebreak):
    """argmax of ``score``; among tied maxima, the one with the largest ``tiebreak``."""
    top = score == jnp.max(score)
    return jnp.argmax(jnp.where(top, tiebreak, -jnp.inf))


# ---------------------------------------------------------------------------------------------------------------
def _free_membrane(alpha, gain, ws, spikes_fn, n_seg, seg_steps):
    """Free membranes (no threshold) of several weight vectors ws [K, n_in] over a segment stream: [n_seg*T, K]."""

    def seg(u, i):
        def step(u, k):
            u = alpha * u + gain * (ws @ spikes_fn(i, k))
            return u, u
        return lax.scan(step, u, jnp.arange(seg_steps))

    _, us = lax.scan(seg, jnp.zeros((ws.shape[0],), jnp.float32), jnp.arange(n_seg))
    return us.reshape(n_seg * seg_steps, ws.shape[0])


def _run_pattern(task: PatternTask, space, prog, hyper, data, key):
    lif = _lif(task)
    spec = NetSpec((task.n_in, 1), lif=lif, readout="spikes", gains=(task.gain,))
    w0 = jax.random.uniform(key, (1, task.n_in), jnp.float32, task.w0_lo, task.w0_hi)
    T = task.seg_steps
    e0 = jnp.zeros((1,), jnp.float32)

    def segment(state, x_row):
        def step(carry, k):
            state, n_seg = carry
            state, fw = forward(spec, state, times_to_spikes(x_row, k))
            state = learn(space, prog, hyper, spec, state, fw, e0)
            return (state, n_seg + fw.s[-1][0]), None

        return lax.scan(step, (state, jnp.float32(0.0)), jnp.arange(T))[0]      # (state, spikes in the segment)

    state, seg_spikes = lax.scan(segment, init_state(spec, (w0,)), data.x_stream)
    n_spk = jnp.sum(seg_spikes)                       # spike counts are whole numbers: the same sum in any order
    ws = jnp.concatenate([w0, state.ws[0]], 0)                          # [2, n_in]: before, after
    us = _free_membrane(jnp.float32(lif.alpha), task.gain, ws,
                        lambda i, k: times_to_spikes(data.x_eval[i], k), data.x_eval.shape[0], T)
    n_seg = data.x_eval.shape[0]
    peaks = jnp.max(us.reshape(n_seg, T, 2), axis=1)                     # [n_seg, 2]: peak per segment
    pat = data.y_eval[:, 0] > 0.5
    keep = jnp.arange(n_seg) >= 1                                        # skip the first test segment
    snr = _snr(peaks, pat & keep, (~pat) & keep)
    rate = n_spk / (data.x_stream.shape[0] * T * task.dt / 1000.0)
    fired = _fired_per_segment(spec, ws, data.x_eval, T)                 # [n_seg, 2]: the LIF spiked in it
    hit = _mean_rows(fired, pat & keep)
    fa = _mean_rows(fired, (~pat) & keep)
    return state.ws, {"snr": snr[1], "snr_before": snr[0], "rate_hz": rate, "detection": hit[1] - fa[1],
                      "detection_before": hit[0] - fa[0], "hit_rate": hit[1], "false_alarm_rate": fa[1]}, \
        window_detection(seg_spikes > 0, data.y_stream[:, 0] > 0.5, task.period)


def _fired_per_segment(spec: NetSpec, ws, x_eval, seg_steps):
    """Whether the LIF neuron (threshold, reset, refractory: as in training) fired at least once in each test
    segment, replayed from rest with each frozen weight vector of ``ws`` [K, n_in]: [n_seg, K] float32."""

    def one(w):
        def seg(state, x_row):
            def step(state, k):
                state, fw = forward(spec, state, times_to_spikes(x_row, k))
                return state, fw.s[-1][0]
            state, s = lax.scan(step, state, jnp.arange(seg_steps))
            return state, jnp.max(s)
        return lax.scan(seg, init_state(spec, (w[None, :],)), x_eval)[1]

    return jax.vmap(one, out_axes=1)(ws)


def _mean_rows(x, rows):
    """Mean of ``x`` [n, K] over the selected rows, per column."""
    rows = rows.astype(jnp.float32)[:, None]
    return jnp.sum(x * rows, 0) / jnp.sum(rows)


def _snr(us, sig, bg):
    """(mean of ``us`` over ``sig`` rows - mean over ``bg`` rows) / std over ``bg`` rows, per column."""
    m_bg = _mean_rows(us, bg)
    return (_mean_rows(us, sig) - m_bg) / jnp.sqrt(_mean_rows((us - m_bg) ** 2, bg))


# ---------------------------------------------------------------------------------------------------------------
def _run_teacher(task: TeacherTask, space, prog, hyper, data, key):
    spec = NetSpec((task.n_in, 1), lif=_lif(task), readout="membrane", out_tau=task.tau_mem, gains=(task.gain,))
    w0 = jax.random.uniform(key, (1, task.n_in), jnp.float32, -1.0, 1.0)

    def step(state, xu):
        s, u = xu
        state, fw = forward(spec, state, s)
        err = fw.v[-1] - u
        state = learn(space, prog, hyper, spec, state, fw, err)
        return state, err[0] ** 2

    state, sq_err = lax.scan(step, init_state(spec, (w0,)), (data.x_stream, data.y_stream))
    ws = jnp.concatenate([w0, state.ws[0]], 0)                          # [2, n_in]: before, after

    def test(v, s):
        v = readout_step(v, task.gain * (ws @ s), spec.out_params)
        return v, v

    _, vs = lax.scan(test, jnp.zeros((2,), jnp.float32), data.x_eval)
    rmse = jnp.sqrt(jnp.mean((vs - data.y_eval) ** 2, 0))
    return state.ws, {"neg_rmse": -rmse[1], "neg_rmse_before": -rmse[0]}, window_means(sq_err)


# ---------------------------------------------------------------------------------------------------------------
def _run_reward(task: RewardTask, space, prog, hyper, data, key):
    spec = NetSpec((task.n_in, task.n_out), lif=_lif(task), readout="spikes", gains=(task.gain,),
                   lateral_inh=task.lateral_inh)
    w0 = jax.random.uniform(key, (task.n_out, task.n_in), jnp.float32, task.w0_lo, task.w0_hi)
    T = task.n_trial
    e0 = jnp.zeros((task.n_out,), jnp.float32)
    zc = jnp.zeros((task.n_out,), jnp.float32)

    def trial(carry, xyi):
        state, base = carry
        times, y = xyi
        state = reset_neurons(spec, state)
        if task.reset_traces:           # a long pause between trials: traces and eligibilities back to 0
            state = state._replace(tr=jax.tree.map(jnp.zeros_like, state.tr),
                                   eligs=tuple(jnp.zeros_like(e) for e in state.eligs))
        label = jnp.argmax(y)

        def step(carry, k):
            state, cnt, vsum = carry
            state, fw = forward(spec, state, times_to_spikes(times, k))
            cnt, vsum = cnt + fw.s[-1], vsum + fw.v[-1]
            R = jnp.where(_decide(cnt, vsum) == label, 1.0, -1.0)
            last = k == T - 1
            state = learn(space, prog, hyper, spec, state, fw, e0, r=jnp.where(last, R, 0.0),
                          rbar=jnp.where(last, base, 0.0))
            return (state, cnt, vsum), None

        (state, cnt, vsum), _ = lax.scan(step, (state, zc, zc), jnp.arange(T))
        R = jnp.where(_decide(cnt, vsum) == label, 1.0, -1.0)
        base = base + (R - base) / task.baseline_trials
        return (state, base), (R, jnp.sum(cnt))

    n = data.x_stream.shape[0]
    (state, _), (Rs, n_spk) = lax.scan(trial, (init_state(spec, (w0,)), jnp.float32(0.0)),
                                       (data.x_stream, data.y_stream))
    late = Rs[n - max(1, n // 4):]
    rate = jnp.sum(n_spk) / (n * task.n_out * T * task.dt / 1000.0)
    return state.ws, {"total_reward": jnp.sum(Rs), "late_accuracy": jnp.mean((late > 0).astype(jnp.float32)),
                      "rate_hz": rate}, window_means(Rs > 0)
