"""Our spiking semantics against NEST (issue 18): the NESTML export built as a NEST module, and our stdp_add /
stdp_mult against NEST's built-in ``stdp_synapse``, on the same spike trains.

    python scripts/nest_parity.py [--out DIR] [--skip-module]      # prints the tables of BENCHMARKS.md

The exported synapses run the pairing protocol of the Brian2 parity test and, for the rules' slow traces
(stdp_triplet's A3 terms), the trains of :func:`triplet_protocols`.

Needs ``pip install nest-simulator nestml`` (and, for the module, ``apt-get install g++ make cmake libboost-dev
libltdl-dev``). The functions are shared with tests/test_nest_builtin.py and tests/test_nest_export.py.

Conventions that make the two simulators comparable (docs/SPIKING_CONVENTIONS.md for ours):

* NEST's plastic synapses see a postsynaptic spike emitted at ``t_post`` at ``t_post + d`` (the whole delay ``d``
  is dendritic) and a presynaptic spike at its emission time ``t_pre``. Our simulator has no delays, so it gets the
  pre spikes at ``t_pre`` and the post spikes at ``t_post + d``, on the grid of NEST's resolution (``dt`` = h).
* NEST updates a synapse only when a pre spike passes it: post spikes after the last pre spike act at the next one.
  Every NEST run therefore ends with a *flush* pre spike ``FLUSH_MS`` after the last spike (its own depression
  ``A_minus * exp(-FLUSH_MS / tau_minus)`` is ~1e-24 for tau_minus = 20 ms), and our simulator gets it as well.
* Both read traces before the current spike is added (NEST: post spikes at exactly the pre spike's time are not
  in the depressing trace, and a pre spike is added to the facilitating trace after the post spikes up to its own
  time are processed), so a pre and a post spike that coincide on the grid do not interact in either.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import numpy as np

FLUSH_MS = 1000.0
RESOLUTIONS = (0.1, 0.5, 1.0)
DELAYS = (1.0, 1.5)


# ------------------------------------------------------------------------------------------------- our simulator
@functools.lru_cache(maxsize=16)
def _train_fn(space, n_steps: int):
    import jax
    import jax.numpy as jnp
    from jax import lax

    from plasticity_search.spiking.plasticity import add_spikes, apply_rule, decay_traces, side_inputs, zero_traces

    def run(prog, hyper, w0, sx_all, sy_all):
        zero = jnp.zeros((1,), jnp.float32)

        def step(carry, inp):
            tr, w, elig = carry
            sx, sy = inp
            tr, (elig,) = decay_traces(tr, (elig,), hyper)
            sx, sy = sx[None], sy[None]
            post_in = side_inputs(space, "post", {"sy": sy, "ty": tr.ty, "ty2": tr.ty2, "v": zero, "psi": zero,
                                                  "e": zero}, 1, {"r": zero[0], "rbar": zero[0]})
            pre_in = side_inputs(space, "pre", {"sx": sx, "tx": tr.tx, "tx2": tr.tx2}, 1,
                                 {"r": zero[0], "rbar": zero[0]})
            (w,), (elig,), _, _ = apply_rule(space, prog, hyper, post_in, pre_in, (w,), (elig,), (1,), (1,))
            return (add_spikes(tr, sx, sy), w, elig), w[0, 0]

        w = jnp.full((1, 1), w0, jnp.float32)
        _, ws = lax.scan(step, (zero_traces(1, 1), w, jnp.zeros((1, 1), jnp.float32)), (sx_all, sy_all))
        return ws

    return jax.jit(run)


def ours_on_trains(rule, pre_steps, post_steps, n_steps: int, dt: float, w0: float, **overrides) -> np.ndarray:
    """Our simulator's weight after every step (``[n_steps]``), for one synapse whose pre neuron spikes in the
    steps ``pre_steps`` and post neuron in ``post_steps`` (indices, repeats allowed: multiplicity), step ``dt``.

    The per-step code is the simulator's own (plasticity_search.spiking.plasticity, the functions the pairing
    protocol and every network use); ``overrides`` as for ``pairing_dw`` (lr, tau_*, w_bounds).
    """
    import jax.numpy as jnp

    from plasticity_search.rules.program import Program
    from plasticity_search.spiking.plasticity import rule_hyper

    n_pad = 1 << max(int(n_steps) - 1, 1).bit_length()    # power-of-two lengths: few compilations
    sx = np.zeros(n_pad, np.float32)
    sy = np.zeros(n_pad, np.float32)
    np.add.at(sx, np.asarray(pre_steps, np.int64), 1.0)
    np.add.at(sy, np.asarray(post_steps, np.int64), 1.0)
    hyper = rule_hyper(getattr(rule, "defaults", None) or {}, dt=dt, **overrides)
    prog = Program(*[jnp.asarray(x) for x in rule.program])
    ws = _train_fn(rule.space, n_pad)(prog, hyper, np.float32(w0), jnp.asarray(sx), jnp.asarray(sy))
    return np.asarray(ws, np.float64)[:n_steps]


def to_steps(times_ms, h: float) -> np.ndarray:
    """Grid indices of spike times that NEST put on the grid of resolution h (asserts they are on it)."""
    k = np.rint(np.asarray(times_ms, np.float64) / h).astype(np.int64)
    assert np.allclose(k * h, times_ms, atol=1e-6), (times_ms, h)
    return k


# ---------------------------------------------------------------------------------------------------------- NEST
def _nest(resolution: float):
    import nest

    if hasattr(nest, "VerbosityLevel"):
        nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.resolution = resolution
    nest.local_num_threads = 1
    return nest


def _on_grid(t: float, h: float) -> float:
    return float(np.ceil(t / h - 1e-9) * h)


def _quiet_nest():
    import warnings
    warnings.filterwarnings("ignore", message=".*backward compatibility.*")


#: Gütig et al. 2003 settings of NEST's stdp_synapse that are our stdp_add and stdp_mult (Wmax = 1)
BUILTIN = {
    "stdp_add": {"lambda": 0.01, "alpha": 1.05, "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": 1.0, "tau_plus": 20.0},
    "stdp_mult": {"lambda": 0.01, "alpha": 1.0, "mu_plus": 1.0, "mu_minus": 1.0, "Wmax": 1.0, "tau_plus": 20.0},
}


def nest_builtin_run(rule_name: str, pre_times, post_times, resolution: float, delay: float, w0: float = 0.5):
    """NEST's stdp_synapse between two parrot neurons that spike at the given times (+1 ms from their
    generators); the synapse ends on the post parrot's port 1, which does not repeat spikes. Returns the realized
    pre/post spike times, the realized delay, NEST's weight after every pre spike (weight_recorder) and the final
    weight after a flush pre spike FLUSH_MS after the last spike."""
    _quiet_nest()
    nest = _nest(resolution)
    last = max(np.max(pre_times), np.max(post_times))
    pre_all = np.r_[np.asarray(pre_times, np.float64), last + delay + FLUSH_MS]
    sg_pre = nest.Create("spike_generator", params={"spike_times": pre_all, "allow_offgrid_times": True})
    sg_post = nest.Create("spike_generator", params={"spike_times": np.asarray(post_times, np.float64),
                                                      "allow_offgrid_times": True})
    pre, post = nest.Create("parrot_neuron"), nest.Create("parrot_neuron")
    post.set(tau_minus=20.0)
    rec_pre, rec_post = nest.Create("spike_recorder"), nest.Create("spike_recorder")
    wr = nest.Create("weight_recorder")
    nest.CopyModel("stdp_synapse", "stdp_rec", {"weight_recorder": wr, **BUILTIN[rule_name]})
    nest.Connect(sg_pre, pre, syn_spec={"delay": 1.0})
    nest.Connect(sg_post, post, syn_spec={"delay": 1.0})
    nest.Connect(pre, post, syn_spec={"synapse_model": "stdp_rec", "weight": w0, "delay": delay,
                                      "receptor_type": 1})
    nest.Connect(pre, rec_pre)
    nest.Connect(post, rec_post)
    nest.Simulate(_on_grid(pre_all[-1] + 3.0 + 2 * delay, resolution))
    conn = nest.GetConnections(source=pre, synapse_model="stdp_rec")
    ev = wr.get("events")
    return {"pre": np.sort(rec_pre.get("events")["times"]), "post": np.sort(rec_post.get("events")["times"]),
            "delay": float(conn.get("delay")), "w_times": np.asarray(ev["times"], np.float64),
            "w": np.asarray(ev["weights"], np.float64), "w_final": float(conn.get("weight"))}


def builtin_protocols(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pre/post trains of NESTML's own stdp_synapse test (tests/nest_tests/stdp_synapse_test.py): a regular
    pre-post pairing, dense integer trains, off-grid times, and random trains (seeded here)."""
    rng = np.random.default_rng(seed)
    rand = lambda: np.unique(1 + np.round(100 * np.abs(rng.standard_normal(100))))  # noqa: E731
    return {
        "regular": (np.array([1.0, 11.0, 21.0]), np.array([6.0, 16.0, 26.0])),
        "dense": (np.array([2, 4, 7, 8, 12, 13, 19, 23, 24, 28, 29, 30, 33, 34, 35, 36, 38, 40, 42, 46, 51, 53, 54,
                            55, 56, 59, 63, 64, 65, 66, 68, 72, 73, 76, 79, 80, 83, 84, 86, 87, 90, 95, 99, 100],
                           np.float64),
                  np.array([4, 5, 6, 7, 10, 11, 12, 16, 17, 18, 19, 20, 22, 23, 25, 27, 29, 30, 31, 32, 34, 36, 37,
                            38, 39, 42, 44, 46, 48, 49, 50, 54, 56, 57, 59, 60, 61, 62, 67, 74, 76, 79, 80, 81],
                           np.float64)),
        "offgrid": (np.array([1, 5, 6, 7, 9, 11, 12, 13, 14.5, 16.1]),
                    np.array([2, 3, 4, 8, 9, 10, 12, 13.2, 15.1, 16.4])),
        "random": (rand(), rand()),
    }


def compare_builtin(rule, rule_name: str, pre_times, post_times, resolution: float, delay: float,
                    w0: float = 0.5) -> dict:
    """NEST's stdp_synapse and our simulator on the same realized trains; the errors of our weight at every
    NEST weight read-out (after each pre spike) and of the final weight."""
    r = nest_builtin_run(rule_name, pre_times, post_times, resolution, delay, w0)
    h, d = resolution, r["delay"]
    pre_k, post_k = to_steps(r["pre"], h), to_steps(r["post"] + d, h)
    n = int(max(pre_k.max(), post_k.max()) + 2)
    ws = ours_on_trains(rule, pre_k, post_k, n, h, w0)
    ours_at = ws[to_steps(r["w_times"], h)]
    err = np.abs(ours_at - r["w"])
    change = max(np.abs(r["w"] - w0).max(), 1e-12)
    return {"n_pre": len(r["pre"]) - 1, "n_post": len(r["post"]), "delay": d,
            "max_abs_err": float(err.max()), "rel_to_change": float(err.max() / change),
            "final_nest": r["w_final"], "final_ours": float(ws[-1]), "ours": ours_at, "nest": r["w"]}


# ------------------------------------------------------------------------------- the exported synapse, in NEST
def build_rules_module(rules: dict, out_dir: str, module_name: str = "psparitymodule", log=print) -> dict:
    """Export ``rules`` (label -> rule) to NESTML, pair every synapse with iaf_psc_exp_neuron, generate and build
    one module with the pip wheel's headers; returns {'install': dir, 'module': name, 'models': {label: (neuron,
    synapse)}, 'seconds': {...}}."""
    from plasticity_search.export.nestml import (DEFAULT_NEURON, PAIRED_NEURONS, build_module, codegen_options,
                                                 generate_cpp, nest_wheel_version, paired_model_names,
                                                 pip_nest_config, synapse_name, synaptic_vars, to_nestml_source)

    models_dir = os.path.join(out_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    paths, names, keep = [], {}, {}
    for label, rule in rules.items():
        syn = synapse_name(rule)
        if syn in [s for s, _ in names.values()]:
            raise ValueError(f"two rules export to the same synapse name {syn}")
        names[label] = (syn, rule)
        p = os.path.join(models_dir, f"{syn}.nestml")
        text = to_nestml_source(rule)
        keep[syn] = synaptic_vars(text)
        with open(p, "w") as fh:
            fh.write(text)
        paths.append(p)
    p = os.path.join(models_dir, f"{DEFAULT_NEURON}.nestml")
    with open(p, "w") as fh:
        fh.write(PAIRED_NEURONS[DEFAULT_NEURON])
    paths.append(p)
    opts = codegen_options([s for s, _ in names.values()], DEFAULT_NEURON, nest_wheel_version(), keep)
    t0 = time.perf_counter()
    generate_cpp(paths, os.path.join(out_dir, "target"), module_name, opts)
    t1 = time.perf_counter()
    log(f"generated C++ in {t1 - t0:.1f} s")
    build_module(os.path.join(out_dir, "target"), os.path.join(out_dir, "install"),
                 pip_nest_config(os.path.join(out_dir, "nest_config")))
    t2 = time.perf_counter()
    log(f"built the module in {t2 - t1:.1f} s")
    return {"install": os.path.join(out_dir, "install"), "module": module_name,
            "models": {label: paired_model_names(syn) for label, (syn, _) in names.items()},
            "seconds": {"generate": t1 - t0, "build": t2 - t1}}


def install(built: dict):
    """Load the module into NEST (again after every ResetKernel, which drops the models of modules)."""
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(
        [built["install"]] + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    import nest
    if built["models"] and next(iter(built["models"].values()))[0] not in nest.node_models:
        nest.Install(built["module"])


#: the offsets of the Brian2 parity test (tests/test_export_brian2.py)
PAIRING_OFFSETS = np.r_[np.arange(-100.0, 101.0, 10.0), -0.5, 0.1, 3.7, -63.3]
_LATENCY_STEPS = 1    # iaf_psc_exp_neuron spikes one step after a 1e5 pA input arrives (checked per run)


def nest_module_pairing(built: dict, label: str, offsets, resolution: float = 0.1, delay: float = 1.0,
                        w0: float = 0.5, params: dict | None = None) -> dict:
    """The pairing protocol in NEST with an exported synapse: one pre parrot and one post neuron per offset, the
    post neuron forced to spike by a 1e5 pA input, scheduled so that the synapse sees ``t_post + d - t_pre`` =
    offset, then a flush pre spike. Returns the realized times, NEST's weight change, and the realized offsets."""
    _quiet_nest()
    nest = _nest(resolution)
    install(built)
    neuron_model, syn_model = built["models"][label]
    h = resolution
    offsets = np.asarray(offsets, np.float64)
    k = np.rint(offsets / h).astype(np.int64)
    d_steps = int(round(delay / h))
    t0 = 20.0 + max(0.0, -offsets.min()) + delay          # pre parrot spike time (its generator fires 1 ms earlier)
    n = len(offsets)
    pre = nest.Create("parrot_neuron", n)
    post = nest.Create(neuron_model, n, params={"tau_syn_exc": 0.2})
    rec_pre, rec_post = nest.Create("spike_recorder"), nest.Create("spike_recorder")
    flush = t0 + np.abs(offsets).max() + FLUSH_MS
    for i in range(n):
        t_post = (round(t0 / h) + k[i] - d_steps) * h                 # wanted post spike time
        sg_pre = nest.Create("spike_generator", params={"spike_times": [t0 - 1.0, flush - 1.0]})
        sg_post = nest.Create("spike_generator",
                              params={"spike_times": [round((t_post - 1.0 - _LATENCY_STEPS * h) / h) * h]})
        nest.Connect(sg_pre, pre[i], syn_spec={"delay": 1.0})
        nest.Connect(sg_post, post[i], syn_spec={"delay": 1.0, "weight": 1e5})
    nest.CopyModel(syn_model, "ps_rec", dict(params or {}))
    nest.Connect(pre, post, "one_to_one", syn_spec={"synapse_model": "ps_rec", "weight": w0, "delay": delay})
    nest.Connect(pre, rec_pre)
    nest.Connect(post, rec_post)
    nest.Simulate(_on_grid(flush + 5.0, resolution))
    conns = nest.GetConnections(source=pre, synapse_model="ps_rec")
    src, w = np.asarray(conns.get("source")), np.asarray(conns.get("w"), np.float64)
    order = np.argsort(src)
    w = w[order]
    ev_pre, ev_post = rec_pre.get("events"), rec_post.get("events")
    pre_ids, post_ids = list(pre.tolist()), list(post.tolist())
    t_pre = [np.sort(ev_pre["times"][ev_pre["senders"] == g]) for g in pre_ids]
    t_post = [np.sort(ev_post["times"][ev_post["senders"] == g]) for g in post_ids]
    realized = np.array([tp[0] + delay - tq[0] if len(tp) == 1 and len(tq) == 2 else np.nan
                         for tq, tp in zip(t_pre, t_post)])
    return {"offsets": offsets, "realized": realized, "dw": w - w0, "t_pre": t_pre, "t_post": t_post,
            "delay": delay, "flush": flush}


def triplet_protocols(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pre / post times (ms, post as the synapse sees it: emission + delay) where a rule's slow traces matter
    (Pfister & Gerstner 2006: the pairing-frequency protocol of Sjostrom et al. 2001, five pairs at +-10 ms, and the
    triplets of Wang et al. 2005 at 5 ms), and seeded random trains. Post spikes are >= 3 ms apart (the forced
    neuron's refractory period is 2 ms)."""
    rng = np.random.default_rng(seed)

    def pairs(hz, dt):
        pre = np.arange(5) * 1000.0 / hz
        return pre, pre + dt

    def train(n, min_gap):
        t = np.cumsum(min_gap + rng.exponential(12.0, n))
        return np.round(t, 1)

    out = {f"pairs {hz} Hz {dt:+.0f}": pairs(hz, dt) for hz in (20, 40) for dt in (10.0, -10.0)}
    out["pre-post-post 5/5"] = (np.array([0.0]), np.array([5.0, 10.0]))
    out["post-pre-post 5/5"] = (np.array([5.0]), np.array([0.0, 10.0]))
    out["pre-post-pre 5/5"] = (np.array([0.0, 10.0]), np.array([5.0]))
    out["post-post-pre 5/5"] = (np.array([10.0]), np.array([0.0, 5.0]))
    # two post spikes between pre spikes: NEST prunes the first post spike from the neuron's history
    out["post-pre-post-post 5/5/10"] = (np.array([5.0]), np.array([0.0, 10.0, 20.0]))
    out["random"] = (train(25, 0.5), train(25, 3.0))
    return out


def nest_module_trains(built: dict, label: str, pre_times, post_times, resolution: float = 0.1,
                       delay: float = 1.0, w0: float = 0.5, params: dict | None = None) -> dict:
    """One exported synapse in NEST between a pre parrot that spikes at ``pre_times`` and a post neuron forced
    (1e5 pA inputs) to spike so that the synapse sees its spikes at ``post_times`` (emission + delay), then a flush
    pre spike. Times are relative to a start ``t0``; returns the realized times (absolute) and NEST's weight
    change."""
    _quiet_nest()
    nest = _nest(resolution)
    install(built)
    neuron_model, syn_model = built["models"][label]
    h = resolution
    pre_times, post_times = np.asarray(pre_times, np.float64), np.asarray(post_times, np.float64)
    t0 = 20.0 + delay + max(0.0, -min(pre_times.min(), post_times.min()))
    last = t0 + max(pre_times.max(), post_times.max())
    flush = _on_grid(last + FLUSH_MS, h)
    pre = nest.Create("parrot_neuron")
    post = nest.Create(neuron_model, params={"tau_syn_exc": 0.2})
    rec_pre, rec_post = nest.Create("spike_recorder"), nest.Create("spike_recorder")
    pre_k = np.rint((t0 + pre_times) / h).astype(np.int64)
    post_k = np.rint((t0 + post_times - delay) / h).astype(np.int64) - _LATENCY_STEPS
    sg_pre = nest.Create("spike_generator", params={"spike_times": np.r_[pre_k * h, flush] - 1.0})
    sg_post = nest.Create("spike_generator", params={"spike_times": post_k * h - 1.0})
    nest.Connect(sg_pre, pre, syn_spec={"delay": 1.0})
    nest.Connect(sg_post, post, syn_spec={"delay": 1.0, "weight": 1e5})
    nest.CopyModel(syn_model, "ps_rec", dict(params or {}))
    nest.Connect(pre, post, syn_spec={"synapse_model": "ps_rec", "weight": w0, "delay": delay})
    nest.Connect(pre, rec_pre)
    nest.Connect(post, rec_post)
    nest.Simulate(_on_grid(flush + 5.0, h))
    conn = nest.GetConnections(source=pre, synapse_model="ps_rec")
    t_pre = np.sort(rec_pre.get("events")["times"])
    t_post = np.sort(rec_post.get("events")["times"])
    wanted_pre = np.r_[pre_k * h, flush]
    realized = (len(t_pre) == len(wanted_pre) and len(t_post) == len(post_times)
                and np.allclose(t_pre, wanted_pre, atol=1e-6)
                and np.allclose(t_post + delay, np.sort(t0 + post_times), atol=h / 2 + 1e-6))
    return {"t_pre": t_pre, "t_post": t_post, "delay": delay, "realized": bool(realized),
            "dw": float(conn.get("w")) - w0}


def compare_module_trains(rule, built: dict, label: str, pre_times, post_times, resolution: float = 0.1,
                          delay: float = 1.0, w0: float = 0.5, params: dict | None = None) -> dict:
    """:func:`nest_module_trains` and our simulator on its realized spikes: NEST's and our weight change."""
    run = nest_module_trains(built, label, pre_times, post_times, resolution, delay, w0, params)
    ours = ours_for_module_run(rule, {"t_pre": [run["t_pre"]], "t_post": [run["t_post"]], "delay": delay},
                               resolution, w0, **(params or {}))[0]
    return {"nest": run["dw"], "ours": float(ours), "realized": run["realized"],
            "rel": abs(run["dw"] - ours) / max(abs(ours), 1e-12), "n_pre": len(run["t_pre"]) - 1,
            "n_post": len(run["t_post"])}


def ours_for_module_run(rule, run: dict, resolution: float, w0: float = 0.5, **overrides) -> np.ndarray:
    """Our simulator on the realized spikes of :func:`nest_module_pairing` (pre, flush; post + delay)."""
    h, out = resolution, []
    for tq, tp in zip(run["t_pre"], run["t_post"]):
        pre_k, post_k = to_steps(tq, h), to_steps(tp + run["delay"], h)
        # up to the step of the last spike (the flush), where NEST's last synapse update is: a rule with
        # every-step terms changes w in every later step too
        n = int(max(pre_k.max(), post_k.max()) + 1)
        out.append(ours_on_trains(rule, pre_k, post_k, n, h, w0, **overrides)[-1] - w0)
    return np.array(out)


def side_errors(offsets, got, ref) -> dict:
    """The per-offset relative error on each side of the window: 'ltp' (offset > 0) and 'ltd' (offset < 0), each
    relative to that side's own changes (|ref| > 1e-3 of the side's largest), so that a side with tiny changes
    (stdp_triplet's single-pair LTP is A2p = 5e-10 times tx) is checked on its own scale; nan for a side without
    changes."""
    offsets, got, ref = np.asarray(offsets), np.asarray(got), np.asarray(ref)
    out = {}
    for side, sel in (("ltp", offsets > 0), ("ltd", offsets < 0)):
        g, r = got[sel], ref[sel]
        scale = np.abs(r).max() if r.size else 0.0
        big = np.abs(r) > 1e-3 * scale
        out[side] = float((np.abs(g - r)[big] / np.abs(r)[big]).max()) if scale > 0 and big.any() else float("nan")
    return out


def rel_error(got, ref):
    """Max |got - ref| relative to the largest change, and the max per-offset relative error (|ref| > 1e-3 max)."""
    got, ref = np.asarray(got), np.asarray(ref)
    scale = np.abs(ref).max()
    big = np.abs(ref) > 1e-3 * scale
    return float(np.abs(got - ref).max() / scale), float((np.abs(got - ref)[big] / np.abs(ref)[big]).max())


# -------------------------------------------------------------------------------------------------------- main
#: rules with terms that have no spike factor (they act every step; NEST runs them in update:, replayed in steps of
#: the synapse parameter dt_rule, set to the resolution h in every run here); the label is the synapse name
EVERY_STEP_RULES = {"every_step": "0.01*sy*tx - 0.0005*tx - 0.00001*w + 0.0002*ty*tx2",
                    "every_step_elig": ("dw = 0.01*elig*tx - 0.00001*elig*w + 0.1*sy*elig; "
                                        "delig = 0.1*sy*tx - 0.05*sx*ty - 0.001*ty*tx")}


def parity_rules() -> dict:
    import dataclasses

    from plasticity_search.rules.resolve import resolve_rule
    here = os.path.dirname(os.path.abspath(__file__))
    rules = {name: resolve_rule(spec) for name, spec in (
        ("stdp_add", "stdp_add"), ("stdp_mult", "stdp_mult"), ("stdp_triplet", "stdp_triplet"),
        ("discovered", os.path.join(here, os.pardir, "tests", "data", "stdp_pattern_discovered.json")))}
    rules.update({k: dataclasses.replace(resolve_rule(v), name=k) for k, v in EVERY_STEP_RULES.items()})
    return rules


def module_params(label: str, h: float) -> dict:
    """The synapse parameters of a module run at resolution h: MODULE_OVERRIDES, and dt_rule = h for a rule with
    every-step terms (our simulator ignores dt_rule; its step is h)."""
    return {**MODULE_OVERRIDES.get(label, {}), **({"dt_rule": h} if label in EVERY_STEP_RULES else {})}


#: learning rates for the module runs: the discovered rule's pre-spike term (0.64 per spike) would clip w at 1
MODULE_OVERRIDES = {"discovered": {"lr": 0.1}}
#: initial weights of the module runs (default 0.5): stdp_triplet's single-pair LTP, A2p*tx <= 5e-10, is below the
#: float32 resolution of a weight of 0.5 (6e-8) in our simulator; from w0 = 0 it is resolved (no bounds, additive)
MODULE_W0 = {"stdp_triplet": 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/ps_nest_parity")
    ap.add_argument("--skip-module", action="store_true", help="only the built-in stdp_synapse comparison")
    ap.add_argument("--json", help="write all numbers to this file")
    ap.add_argument("--reuse", action="store_true", help="use the module already built in --out")
    a = ap.parse_args(argv)
    from plasticity_search.spiking.pairing import pairing_dw
    rules = parity_rules()
    results = {"builtin": [], "module": [], "trains": []}
    print("built-in stdp_synapse vs ours (max |w_nest - w_ours| over all weight read-outs; relative to the largest"
          " weight change)")
    print(f"{'rule':10s} {'trains':8s} {'h':>4s} {'d':>4s} {'pre':>4s} {'post':>4s} {'max abs err':>12s} "
          f"{'rel':>9s}")
    for rname in ("stdp_add", "stdp_mult"):
        for pname, (pre, post) in builtin_protocols().items():
            for h in RESOLUTIONS:
                for d in DELAYS:
                    c = compare_builtin(rules[rname], rname, pre, post, h, d)
                    results["builtin"].append({"rule": rname, "trains": pname, "h": h, "delay": c["delay"],
                                               "max_abs_err": c["max_abs_err"], "rel": c["rel_to_change"]})
                    print(f"{rname:10s} {pname:8s} {h:4.1f} {c['delay']:4.1f} {c['n_pre']:4d} {c['n_post']:4d} "
                          f"{c['max_abs_err']:12.3e} {c['rel_to_change']:9.2e}")
    if not a.skip_module:
        if a.reuse:
            from plasticity_search.export.nestml import paired_model_names, synapse_name
            built = {"install": os.path.join(a.out, "install"), "module": "psparitymodule",
                     "models": {k: paired_model_names(synapse_name(r)) for k, r in rules.items()}}
        else:
            built = build_rules_module(rules, a.out)
            results["build_seconds"] = built["seconds"]
        print("\nexported synapse in NEST vs ours, pairing protocol (offsets of the Brian2 parity test)")
        for label, rule in rules.items():
            w0 = MODULE_W0.get(label, 0.5)
            for h in RESOLUTIONS:
                kw = module_params(label, h)
                offs = np.unique(np.rint(PAIRING_OFFSETS / h) * h)
                run = nest_module_pairing(built, label, offs, h, 1.0, w0, params=kw)
                ours = ours_for_module_run(rule, run, h, w0, **kw)
                agg, per = rel_error(run["dw"], ours)
                sides = side_errors(offs, run["dw"], ours)
                ok_offsets = bool(np.allclose(run["realized"], offs, atol=1e-6))
                pair = pairing_dw(rule, offs, dt=h, w0=w0, **kw)
                _, per_p = rel_error(ours, pair)
                results["module"].append({"rule": label, "h": h, "w0": w0, "agg": agg, "per_offset": per,
                                          "per_offset_ltp": sides["ltp"], "per_offset_ltd": sides["ltd"],
                                          "realized_ok": ok_offsets, "vs_pairing_dw": per_p})
                print(f"{label:12s} h={h:3.1f} w0={w0:3.1f} offsets realized: {ok_offsets}  per-offset rel err "
                      f"{per:.2e} (LTP side {sides['ltp']:.2e}, LTD side {sides['ltd']:.2e}; max/largest {agg:.2e});"
                      f"  ours-with-flush vs pairing_dw {per_p:.1e}")
        print("\nexported synapse in NEST vs ours, spike trains where slow traces matter (delay 1 ms; relative error "
              "of the total weight change)")
        protocols = triplet_protocols()
        print(f"{'rule':12s} {'h':>4s} " + " ".join(f"{n:>20s}" for n in protocols))
        for label, rule in rules.items():
            w0 = MODULE_W0.get(label, 0.5)
            for h in RESOLUTIONS:
                kw = module_params(label, h)
                row = []
                for pname, (pre, post) in protocols.items():
                    c = compare_module_trains(rule, built, label, pre, post, h, 1.0, w0, params=kw)
                    results["trains"].append({"rule": label, "h": h, "trains": pname, **c})
                    row.append(f"{c['rel']:9.1e} {c['ours']:+.2e}" + ("" if c["realized"] else "!"))
                print(f"{label:12s} {h:4.1f} " + " ".join(f"{r:>20s}" for r in row))
        print("(each cell: relative error, our weight change; '!': NEST did not realize the asked spike times)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
