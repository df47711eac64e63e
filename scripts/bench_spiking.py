#!/usr/bin/env python
"""Throughput of the spiking inner loop on a population of different rule programs.

    python scripts/bench_spiking.py [--json] [--pop 16 64] [--steps 1000] [--repeats 3] [--variants ...] [--compile-only]
                                    [--space CONFIG.yaml ...]

Workload: the ``spiking_digits`` network (64 Poisson inputs -> 100 LIF -> 10 leaky readouts, dt = 1 ms, FA
feedback; both layers plastic, 7,400 synapses), ``--steps`` simulation steps of online learning (digits samples
presented for 50 ms each), the population axis vmapped, everything in one ``jit`` with ``lax.scan`` over time.

* ``interpreted``: P *different* random programs of the full spiking space (``SPIKING_SPACE``: 6 post + 6 pre
  instructions over 21 ops, 6 terms, 6 synapse factors, weight and eligibility targets), run by the interpreter
  (``Space.post_registers`` / ``pre_registers`` / ``term_vectors`` / ``combine``) once per step on both layers'
  neuron vectors concatenated -- the code path of :func:`plasticity_search.spiking.make_evaluator`;
* ``interpreted_reference``: the same programs through the generic interpreter of rules/program.py
  (``learn(..., reference=True)``: the code path before issue 13; bitwise the same results) -- before/after side by
  side;
* ``interpreted_poly``: the same with the op set without transcendental functions (``POLY_OPS``: 16 ops);
* ``interpreted_stdp``: the known rule ``stdp_add`` compiled to a program (its minimal space) by the same path;
* ``space:NAME`` (one per ``--space CONFIG.yaml``): P different random programs of that config's rule space (e.g.
  ``search_spaces/spiking_digits.yaml``: 4 ops, 2+1 instructions, 2 terms, factors 1 and w) by the interpreter's
  path, on the same network -- what a search with that config pays per candidate-step;
* ``handwritten_stdp``: pair STDP ``A+ sy (x) tx - A- ty (x) sx`` written directly in JAX in the same network and
  step order (the reference: what a hand-coded simulator would run).

Reported: candidate-steps/s (P x steps / wall time, compile excluded, best of ``--repeats``) and the ratio of each
to the hand-written STDP measured in the same run. ``--compile-only`` reports lowering + compile time only (e.g.
``--pop 1024 --compile-only``); ``--variants`` picks variants (default: all).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time


VARIANTS = ("interpreted", "interpreted_reference", "interpreted_poly", "interpreted_stdp", "handwritten_stdp")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--pop", type=int, nargs="+", default=[16, 64], help="population sizes (default 16 64)")
    ap.add_argument("--steps", type=int, default=1000, help="simulation steps (default 1000)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, best is reported (default 3)")
    ap.add_argument("--variants", nargs="+", default=None, choices=VARIANTS, help="variants to run (default: all)")
    ap.add_argument("--compile-only", action="store_true", help="only lower + compile (report compile_s)")
    ap.add_argument("--space", nargs="+", default=[], metavar="CONFIG",
                    help="also run random programs of these configs' rule spaces (variant space:NAME)")
    args = ap.parse_args(argv)
    if min(args.pop) < 1 or args.steps < 1 or args.repeats < 1:
        print("bench_spiking: error: --pop, --steps and --repeats must be >= 1", file=sys.stderr)
        return 2
    try:
        from plasticity_search.search.config import load_config

        cfgs = [(p, load_config(p)) for p in args.space]
    except Exception as e:  # noqa: BLE001 -- a bad config path or file: one line, exit 2
        print(f"bench_spiking: error: --space: {e}", file=sys.stderr)
        return 2
    rate = [p for p, c in cfgs if c.model != "spiking"]
    if rate:
        print(f"bench_spiking: error: --space: {rate[0]} is a rate config; this "
              "benchmark runs spiking rule spaces", file=sys.stderr)
        return 2
    args.spaces = [c.rule_space() for _, c in cfgs]
    res = run(args)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"# spiking inner loop, {res['workload']}")
    print(f"{'P':>5} {'variant':>21} {'cand-steps/s':>14} {'ratio':>7} {'compile_s':>9}")
    for row in res["rows"]:
        cs, ratio = row["candidate_steps_per_s"], row["ratio_to_handwritten"]
        print(f"{row['P']:>5} {row['variant']:>21} {'-' if cs is None else f'{cs:,.0f}':>14} "
              f"{'-' if ratio is None else f'{ratio:.3f}':>7} {row['compile_s']:>9.1f}")
    return 0


def run(args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    import dataclasses

    from plasticity_search.rules import SPIKING_SPACE, Program, random_population
    from plasticity_search.rules.ops import POLY_OPS
    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.spiking import make_instances
    from plasticity_search.spiking import simulate as inner
    from plasticity_search.spiking.network import feedback_matrices, forward, init_state, learn
    from plasticity_search.spiking.plasticity import RuleHyper, add_spikes, decay_traces, rule_hyper
    from plasticity_search.tasks import make

    task = make("spiking_digits")
    spec = inner._class_spec(task, "fa")
    T = task.n_pres
    n_samples = -(-args.steps // T)
    inst = make_instances(task, [0], "search", n_samples)
    xs, ys = inst.data.x_stream[0], inst.data.y_stream[0]
    key = inst.keys[0]
    k_w1, k_w2, k_b, k_stream = jax.random.split(key, 4)
    n_in, H, C = spec.sizes
    w1 = task.w_in * jax.random.normal(k_w1, (H, n_in)) / jnp.sqrt(n_in)
    w2 = task.w_out * jax.random.normal(k_w2, (C, H)) / jnp.sqrt(H)
    B = feedback_matrices(k_b, spec)
    # one shared input stream [steps, n_in] and targets (Poisson spikes drawn once, outside the timed loop)
    spikes = jnp.concatenate([inner._encode(task, xs[i], jax.random.fold_in(k_stream, i)) for i in range(n_samples)])
    spikes = spikes[:args.steps]
    targets = jnp.repeat(ys, T, axis=0)[:args.steps]

    def simulate(learn_fn, prog, hyper):
        def step(state, st):
            s, y = st
            state, fw = forward(spec, state, s)
            e_out = (jax.nn.softmax(fw.v[-1]) - y) / T
            return learn_fn(prog, hyper, state, fw, e_out), None

        state, _ = lax.scan(step, init_state(spec, (w1, w2)), (spikes, targets))
        return jnp.stack([jnp.sum(w) for w in state.ws])

    def interp_learn(space, reference=False):
        def f(prog, hyper, state, fw, e_out):
            return learn(space, prog, hyper, spec, state, fw, e_out, B, reference=reference)
        return f

    def hand_learn(prog, hyper, state, fw, e_out):
        a_plus, a_minus = prog
        tr, eligs = decay_traces(state.tr, state.eligs, hyper)
        sy, sx = jnp.concatenate(fw.s[1:]), jnp.concatenate(fw.s[:-1])
        ws, po, pq = [], 0, 0
        for w, n, m in zip(state.ws, spec.post_sizes, spec.pre_sizes):
            dw = a_plus * jnp.outer(sy[po:po + n], tr.tx[pq:pq + m]) - a_minus * jnp.outer(tr.ty[po:po + n],
                                                                                         sx[pq:pq + m])
            ws.append(jnp.clip(w + hyper.lr * dw, hyper.w_lo, hyper.w_hi))
            po, pq = po + n, pq + m
        return state._replace(ws=tuple(ws), eligs=eligs, tr=add_spikes(tr, sx, sy))

    stdp = resolve_rule("stdp_add")
    poly = dataclasses.replace(SPIKING_SPACE, ops=POLY_OPS, name="spiking_poly")
    rows = []
    for P in args.pop:
        hyper_p = RuleHyper(*[jnp.full((P,), x, jnp.float32) for x in rule_hyper({"lr": 1e-3})])
        variants = {
            "interpreted": (interp_learn(SPIKING_SPACE), random_population(jax.random.key(P), SPIKING_SPACE, P, 4),
                            hyper_p),
            "interpreted_reference": (interp_learn(SPIKING_SPACE, reference=True),
                                      random_population(jax.random.key(P), SPIKING_SPACE, P, 4), hyper_p),
            "interpreted_poly": (interp_learn(poly), random_population(jax.random.key(P), poly, P, 4), hyper_p),
            "interpreted_stdp": (interp_learn(stdp.space),
                                 Program(*[jnp.broadcast_to(jnp.asarray(x), (P,) + np.shape(x))
                                           for x in stdp.program]),
                                 RuleHyper(*[jnp.full((P,), x, jnp.float32) for x in rule_hyper(stdp.defaults)])),
            "handwritten_stdp": (hand_learn, (jnp.full((P,), 0.01), jnp.full((P,), 0.0105)),
                                 RuleHyper(*[jnp.full((P,), x, jnp.float32) for x in rule_hyper(stdp.defaults)])),
        }
        for sp in getattr(args, "spaces", []):
            variants[f"space:{sp.name}"] = (interp_learn(sp), random_population(jax.random.key(P), sp, P, 4), hyper_p)
        timing = {}
        wanted = tuple(args.variants or VARIANTS) + tuple(f"space:{sp.name}" for sp in getattr(args, "spaces", []))
        if not args.compile_only and "handwritten_stdp" not in wanted:
            wanted = tuple(wanted) + ("handwritten_stdp",)      # the reference of the ratios
        variants = {k: v for k, v in variants.items() if k in wanted}
        for name, (lf, prog, hyper) in variants.items():
            fn = jax.jit(jax.vmap(lambda p, h, lf=lf: simulate(lf, p, h)))
            t0 = time.perf_counter()
            compiled = fn.lower(prog, hyper).compile()
            t_comp = time.perf_counter() - t0
            if args.compile_only:
                timing[name] = (None, t_comp)
                continue
            jax.block_until_ready(compiled(prog, hyper))
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(prog, hyper))
                best = min(best, time.perf_counter() - t0)
            timing[name] = (P * args.steps / best, t_comp)
        ref = timing.get("handwritten_stdp", (None,))[0]
        for name, (cs, tc) in timing.items():
            rows.append({"P": P, "variant": name, "candidate_steps_per_s": cs,
                         "ratio_to_handwritten": None if cs is None or ref is None else cs / ref, "compile_s": tc})
    return {"workload": f"spiking_digits net {spec.sizes}, {args.steps} steps of 1 ms, FA, both layers plastic",
            "steps": args.steps, "rows": rows, "jax": jax.__version__, "machine": platform.machine(),
            "devices": [str(d) for d in jax.devices()]}


if __name__ == "__main__":
    sys.exit(main())
