"""Throughput of the online inner loop: symbolic programs vs a hand-written FA rule vs a naive PyTorch loop.

Workload (../shared/docs/BENCHMARKS.md): online digits, 64-100-10 tanh/softmax, batch 1, T steps, FA feedback.
(a) P *different* random programs from the quickstart search space, run by the interpreter under jit(vmap);
(b) the same network with the FA update written by hand in JAX, vmapped over P learning rates;
(c) a naive PyTorch loop over candidates and steps with the FA rule (skipped if torch is not installed).
With ``--fa-rows`` also: the FA rule ``-e*x`` run by the interpreter, (d) compiled into the quickstart space (same
array shapes as (a): up to 3 terms and 1+1 instructions evaluated, one term active) and (e) in the minimal space of
``rules.resolve_rule('fa')`` (1 term, no instructions), P copies with the learning rates of (b); and with
``--legacy`` (f) the random programs of (a) through the issue-3 interpreter path (stacked register file read by
gather, one outer-product sum per synapse factor: ``term_vectors`` + ``combine_terms``), for before/after figures.
Both sides run the same network, steps and forward/feedback work; the symbolic side also computes the loss and the
held-out evaluation of ``compiled_population`` (250 samples once, small), and random programs have up to 3 terms where
hand-written FA has 1 (rows (d), (e) separate program size from interpreter overhead).
Reports candidate-steps/s (median of --repeats timed runs after compilation), compile time separately, and the
ratios ``symbolic_over_handwritten`` and ``symbolic_over_naive_torch``, all measured side by side in one run; the
timed calls of all rows are interleaved (round robin) so that load from other processes hits every row alike.

    python scripts/bench_inner_loop.py [--json] [--pops 64 256] [--steps 1000] [--repeats 3] [--fa-rows] [--legacy]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, fields

import jax
import jax.numpy as jnp
import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from plasticity_search.rate import InnerConfig, InnerLoop, task_batch, instance_keys  # noqa: E402
from plasticity_search.rate.online import compiled_population  # noqa: E402
from plasticity_search.rate import NetworkConfig, RateNet  # noqa: E402
from plasticity_search.rules import Space, random_population  # noqa: E402
from plasticity_search.rules.formula import compile_formula  # noqa: E402
from plasticity_search.rules.program import stack  # noqa: E402
from plasticity_search.rules.resolve import resolve_rule  # noqa: E402
from plasticity_search.tasks import make  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")


def quickstart_space() -> Space:
    with open(os.path.join(ROOT, "search_spaces", "quickstart.yaml")) as f:
        return Space.from_dict(yaml.safe_load(f)["space"])


def timed_rows(rows, repeats):
    """rows: {name: (fn, [args per call])}; the first call of each row compiles, then ``repeats`` timed calls of
    every row are interleaved. Returns {name: (first_s, median_s)}."""
    first = {}
    for name, (fn, args) in rows.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args[0]))
        first[name] = time.perf_counter() - t0
    times = {name: [] for name in rows}
    for r in range(repeats):
        for name, (fn, args) in rows.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args[(r + 1) % len(args)]))
            times[name].append(time.perf_counter() - t0)
    return {name: (first[name], statistics.median(times[name])) for name in rows}


CFG = lambda T: InnerConfig(network=NetworkConfig(hidden=(100,), feedback="fa", lr=0.05), steps=T)  # noqa: E731
LRS = lambda P: jnp.linspace(0.02, 0.08, P)  # noqa: E731


def symbolic_row(space, task, T, pops, fn=None):
    fn = fn or compiled_population(space, task, CFG(T))
    data = task_batch(task, [0], "search", T)
    keys = instance_keys([0], "search")
    return fn, [(jax.tree.map(jnp.asarray, p), data, keys) for p in pops]


def fa_population(prog, P):
    """P copies of the FA program with the learning rates of the hand-written row (coefficient -lr/0.05)."""
    pop = stack([prog] * P)
    return pop._replace(term_coef=pop.term_coef * (np.asarray(LRS(P)) / 0.05)[:, None].astype(np.float32))


class LegacyLoop(InnerLoop):
    """The issue-3 interpreter path: stacked register file read by gather, terms combined by combine_terms."""

    def _rule_vectors(self, space, prog, post_vals, pre_vals, g):
        post_in, pre_in = self._stack_inputs(space, post_vals, pre_vals, g)
        return space.term_vectors(prog, space.post_registers(prog, post_in), space.pre_registers(prog, pre_in))


@dataclass(frozen=True)
class LegacySpace(Space):
    def update_weights(self, term_s, term_tgt, P, Q, w, scale):
        return w + scale * self.combine_terms(term_s, term_tgt, P, Q, w)[0]


def legacy_evaluator(space, task, cfg):
    loop = LegacyLoop(LegacySpace(**{f.name: getattr(space, f.name) for f in fields(Space)}), task, cfg)
    return jax.jit(jax.vmap(jax.vmap(loop.evaluate_one, in_axes=(None, 0, 0)), in_axes=(0, None, None)))


def handwritten_row(task, P, T):
    net = RateNet(task.n_in, task.n_out, task.objective, NetworkConfig(hidden=(100,), feedback="fa"))
    data = task_batch(task, [0], "search", T)
    xs, ys = data.x_stream[0], data.y_stream[0]

    def train(lr, key):
        st = net.init(key)

        def step(st, d):
            x, y = d
            fwd = net.forward(st.W, x)
            deltas = net.errors(st, fwd, y)
            W = tuple(W - lr * jnp.outer(dl, a) for W, dl, a in zip(st.W, deltas, fwd.acts))
            return st._replace(W=W), jnp.argmax(fwd.out) == jnp.argmax(y)

        st, correct = jax.lax.scan(step, st, (xs, ys))
        return correct.mean()

    fn = jax.jit(jax.vmap(train, in_axes=(0, None)))
    return fn, [(LRS(P), jax.random.key(0))]


def bench_pop(space, task, P, T, repeats, fa_rows=False, legacy=False):
    pops = [random_population(jax.random.key(i), space, P, 3) for i in range(repeats + 1)]
    rows = {"symbolic": symbolic_row(space, task, T, pops), "handwritten": handwritten_row(task, P, T)}
    if fa_rows:
        prog, _ = compile_formula("-e*x", space, fit=False)
        rows["fa_quickstart_space"] = symbolic_row(space, task, T, [fa_population(prog, P)])
        fa = resolve_rule("fa")
        rows["fa_own_space"] = symbolic_row(fa.space, task, T, [fa_population(fa.program, P)])
    if legacy:
        rows["symbolic_legacy"] = symbolic_row(space, task, T, pops, legacy_evaluator(space, task, CFG(T)))
    res = timed_rows(rows, repeats)
    return {name: {"compile_s": first - med, "run_s": med, "candidate_steps_per_s": P * T / med}
            for name, (first, med) in res.items()}


def bench_torch(task, P, T):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)  # tiny ops: one thread is fastest and avoids oversubscription on a busy machine
    data = task.sample(0, "search", T)
    xs, ys = torch.tensor(data.x_stream), torch.tensor(data.y_stream)
    t0 = time.perf_counter()
    for p in range(P):
        g = torch.Generator().manual_seed(p)
        W1 = (torch.rand(100, 65, generator=g) * 2 - 1) * (6 / 164) ** 0.5
        W2 = (torch.rand(10, 101, generator=g) * 2 - 1) * (6 / 110) ** 0.5
        B = (torch.rand(100, 10, generator=g) * 2 - 1) * (6 / 110) ** 0.5
        lr = 0.05
        for t in range(T):
            x = torch.cat([xs[t], torch.ones(1)])
            a1 = W1 @ x
            h = torch.tanh(a1)
            h1 = torch.cat([h, torch.ones(1)])
            p_out = torch.softmax(W2 @ h1, 0)
            e = p_out - ys[t]
            d1 = (1 - h * h) * (B @ e)
            W2 -= lr * torch.outer(e, h1)
            W1 -= lr * torch.outer(d1, x)
    dt = time.perf_counter() - t0
    return {"run_s": dt, "candidate_steps_per_s": P * T / dt, "P": P, "T": T}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pops", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch-candidates", type=int, default=4, help="naive torch: candidates timed (extrapolated)")
    ap.add_argument("--fa-rows", action="store_true", help="also the FA rule run by the interpreter (two spaces)")
    ap.add_argument("--legacy", action="store_true", help="also the issue-3 interpreter path (before/after)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    space = quickstart_space()
    task = make("digits")
    results = {"device": jax.devices()[0].device_kind, "steps": args.steps, "space": space.to_dict(), "pops": {}}
    torch_res = bench_torch(task, args.torch_candidates, args.steps)
    results["naive_torch"] = torch_res
    for P in args.pops:
        r = bench_pop(space, task, P, args.steps, args.repeats, args.fa_rows, args.legacy)
        hand = r["handwritten"]
        for name in [k for k in r if k != "handwritten"]:
            key = "symbolic_over_handwritten" if name == "symbolic" else f"{name}_over_handwritten"
            r[key] = r[name]["candidate_steps_per_s"] / hand["candidate_steps_per_s"]
        sym = r["symbolic"]
        if torch_res:
            r["symbolic_over_naive_torch"] = sym["candidate_steps_per_s"] / torch_res["candidate_steps_per_s"]
        results["pops"][str(P)] = r
    first = results["pops"][str(args.pops[0])]
    results["symbolic_over_handwritten"] = first["symbolic_over_handwritten"]
    results["symbolic_over_naive_torch"] = first.get("symbolic_over_naive_torch")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"digits 64-100-10, T={args.steps}, device {results['device']}")
    if torch_res:
        print(f"naive torch loop        : {torch_res['candidate_steps_per_s']:>12,.0f} candidate-steps/s")
    else:
        print("naive torch loop        : skipped (torch not installed)")
    for P, r in results["pops"].items():
        s, h = r["symbolic"], r["handwritten"]
        print(f"P={P:>4} symbolic         : {s['candidate_steps_per_s']:>12,.0f} candidate-steps/s "
              f"(compile {s['compile_s']:.1f}s)")
        print(f"P={P:>4} hand-written FA  : {h['candidate_steps_per_s']:>12,.0f} candidate-steps/s "
              f"(compile {h['compile_s']:.1f}s)")
        for name in ("fa_quickstart_space", "fa_own_space", "symbolic_legacy"):
            if name in r:
                print(f"P={P:>4} {name:<17}: {r[name]['candidate_steps_per_s']:>12,.0f} candidate-steps/s "
                      f"(compile {r[name]['compile_s']:.1f}s), / hand-written = {r[name + '_over_handwritten']:.2f}")
        line = f"P={P:>4} symbolic / hand-written = {r['symbolic_over_handwritten']:.2f}"
        if "symbolic_over_naive_torch" in r:
            line += f", symbolic / naive torch = {r['symbolic_over_naive_torch']:.1f}"
        print(line)


if __name__ == "__main__":
    main()
