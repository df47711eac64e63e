"""Throughput of the online inner loop: symbolic programs vs a hand-written FA rule vs a naive PyTorch loop.

Workload (../shared/docs/BENCHMARKS.md): online digits, 64-100-10 tanh/softmax, batch 1, T steps, FA feedback.
(a) P *different* random programs from the quickstart search space, run by the interpreter under jit(vmap);
(b) the same network with the FA update written by hand in JAX, vmapped over P learning rates;
(c) a naive PyTorch loop over candidates and steps with the FA rule (skipped if torch is not installed).
Reports candidate-steps/s (median of --repeats timed runs after compilation), compile time separately, and the
ratios ``symbolic_over_handwritten`` and ``symbolic_over_naive_torch``, all measured side by side in one run.

    python scripts/bench_inner_loop.py [--json] [--pops 64 256] [--steps 1000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from plasticity_search.inner import InnerConfig, make_evaluator, task_batch, instance_keys  # noqa: E402
from plasticity_search.networks import NetworkConfig, RateNet  # noqa: E402
from plasticity_search.rules import Space, random_population  # noqa: E402
from plasticity_search.tasks import make  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")


def quickstart_space() -> Space:
    with open(os.path.join(ROOT, "search_spaces", "quickstart.yaml")) as f:
        return Space.from_dict(yaml.safe_load(f)["space"])


def timed(fn, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def bench_symbolic(space, task, P, T, repeats):
    cfg = InnerConfig(network=NetworkConfig(hidden=(100,), feedback="fa", lr=0.05), steps=T)
    fn = make_evaluator(space, task, cfg)
    data = task_batch(task, [0], "search", T)
    keys = instance_keys([0], "search")
    pops = [random_population(jax.random.key(i), space, P, 3) for i in range(repeats + 1)]
    it = iter(pops)
    first, med = timed(lambda: fn(next(it), data, keys), repeats)
    return {"compile_s": first - med, "run_s": med, "candidate_steps_per_s": P * T / med}


def bench_handwritten(task, P, T, repeats):
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
    lrs = jnp.linspace(0.02, 0.08, P)
    key = jax.random.key(0)
    first, med = timed(lambda: fn(lrs, key), repeats)
    return {"compile_s": first - med, "run_s": med, "candidate_steps_per_s": P * T / med}


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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    space = quickstart_space()
    task = make("digits")
    results = {"device": jax.devices()[0].device_kind, "steps": args.steps, "space": space.to_dict(), "pops": {}}
    torch_res = bench_torch(task, args.torch_candidates, args.steps)
    results["naive_torch"] = torch_res
    for P in args.pops:
        sym = bench_symbolic(space, task, P, args.steps, args.repeats)
        hand = bench_handwritten(task, P, args.steps, args.repeats)
        r = {"symbolic": sym, "handwritten": hand,
             "symbolic_over_handwritten": sym["candidate_steps_per_s"] / hand["candidate_steps_per_s"]}
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
        line = f"P={P:>4} symbolic / hand-written = {r['symbolic_over_handwritten']:.2f}"
        if "symbolic_over_naive_torch" in r:
            line += f", symbolic / naive torch = {r['symbolic_over_naive_torch']:.1f}"
        print(line)


if __name__ == "__main__":
    main()
