"""Population sharding: candidate-steps/s and agreement with one device, for 1, 2, 4, 8 ... devices.

Workload (the inner-loop benchmark's): P different random programs from the quickstart search space, online digits
64-100-10 tanh/softmax with FA feedback, batch 1, T steps, one seed; the population axis sharded over a
``jax.sharding.Mesh`` of N devices exactly as a search does it (``plasticity_search.distributed``).

Each device count runs in its own subprocess. On a CPU-only machine the devices are fake
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``): they share the same cores, so this measures that results
agree (per candidate, the largest relative difference of any metric vs the first device count; candidates over
1e-4 are counted apart with their accuracy: they are diverging, chaotic programs) and what the split costs, not a speed-up. On a GPU/TPU machine
the real devices are used (``--devices`` up to ``jax.device_count()``).

    python scripts/bench_scaling.py [--devices 1 2 4 8] [--pop 64] [--steps 500] [--repeats 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def worker(n: int, pop_size: int, steps: int, repeats: int, out: str) -> None:
    sys.path.insert(0, ROOT)
    import jax
    import jax.numpy as jnp
    import numpy as np
    import yaml

    from plasticity_search import distributed as dist
    from plasticity_search.rate import InnerConfig, instance_keys, task_batch
    from plasticity_search.rate.online import compiled_population
    from plasticity_search.rate import NetworkConfig
    from plasticity_search.rules import Space, random_population
    from plasticity_search.tasks import make

    with open(os.path.join(ROOT, "search_spaces", "quickstart.yaml")) as f:
        space = Space.from_dict(yaml.safe_load(f)["space"])
    task = make("digits")
    cfg = InnerConfig(network=NetworkConfig(hidden=(100,), feedback="fa", lr=0.05), steps=steps)
    fn = compiled_population(space, task, cfg)
    data, keys = task_batch(task, [0], "search", steps), instance_keys([0], "search")
    mesh = dist.population_mesh(n)
    padded = dist.padded_size(pop_size, mesh)
    data_r, keys_r = dist.replicate(data, mesh), dist.replicate(keys, mesh)

    def run(i):
        pop = jax.tree.map(np.asarray, random_population(jax.random.key(i), space, pop_size, 3))
        sharded = dist.shard_population(dist.pad_population(pop, padded), mesh)
        metrics, _ = fn(sharded, data_r, keys_r)
        return {k: np.asarray(v)[:pop_size] for k, v in dist.gather(metrics).items()}

    t0 = time.perf_counter()
    first = run(0)
    t_first = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(i + 1))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    with open(out, "w") as f:
        json.dump({"devices": n, "device_kind": jax.devices()[0].device_kind, "platform": jax.devices()[0].platform,
                   "padded_population": padded, "compile_s": t_first - med, "run_s": med,
                   "candidate_steps_per_s": pop_size * steps / med,
                   "metrics": {k: jnp.asarray(v).tolist() for k, v in first.items()}}, f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--pop", type=int, default=64)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fake", choices=("auto", "yes", "no"), default="auto",
                    help="fake CPU devices (auto: when the machine has no accelerator)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("N", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(int(a.worker[0]), a.pop, a.steps, a.repeats, a.worker[1])
        return 0
    import numpy as np

    fake = a.fake == "yes"
    if a.fake == "auto":
        probe = subprocess.run([sys.executable, "-c", "import jax; print(jax.default_backend())"],
                               capture_output=True, text=True, check=True)
        fake = probe.stdout.strip() == "cpu"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.devices:
            env = dict(os.environ)
            if fake:
                env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n}"
                env["JAX_PLATFORMS"] = "cpu"
            out = os.path.join(tmp, f"{n}.json")
            subprocess.run([sys.executable, __file__, "--worker", str(n), out, "--pop", str(a.pop), "--steps",
                            str(a.steps), "--repeats", str(a.repeats)], env=env, check=True)
            with open(out) as f:
                rows.append(json.load(f))
    base = rows[0]
    for r in rows:
        # per candidate: the largest relative difference of any metric vs the first device count. Candidates whose
        # weights blow up are chaotic: a different float summation order (another shard shape) changes their
        # trajectory, so they are counted apart, with their accuracy, instead of hiding in one maximum.
        rel = np.zeros(a.pop)
        for k in base["metrics"]:
            x, y = (np.asarray(d["metrics"][k], float).reshape(a.pop, -1) for d in (base, r))
            both_nan = np.isnan(x) & np.isnan(y)
            d = np.where(both_nan, 0.0, np.abs(x - y) / np.maximum(np.abs(x), 1e-6))
            rel = np.maximum(rel, np.nan_to_num(d, nan=np.inf).max(1))
        acc = np.nanmax(np.asarray(base["metrics"]["final_accuracy"], float).reshape(a.pop, -1), 1)
        differ = rel > 1e-4
        r["candidates_differing"] = int(differ.sum())
        r["best_final_accuracy_of_differing"] = float(np.nanmax(acc[differ])) if differ.any() else None
        r["max_rel_diff_of_the_others"] = float(rel[~differ].max()) if (~differ).any() else None
        r["speed_vs_first"] = r["candidate_steps_per_s"] / base["candidate_steps_per_s"]
        r["fake_devices"] = fake
    for r in rows:
        del r["metrics"]
    if a.json:
        print(json.dumps({"pop": a.pop, "steps": a.steps, "rows": rows}, indent=2))
        return 0
    print(f"P={a.pop} programs x T={a.steps} steps, digits 64-100-10 FA; "
          + ("fake CPU devices (same cores)" if fake else f"{rows[0]['platform']} devices ({rows[0]['device_kind']})"))
    print(f"{'devices':>7} {'padded P':>8} {'cand-steps/s':>13} {'vs first':>8} {'compile s':>9} "
          f"{'rel diff':>9} {'differing':>9}  (their best accuracy)")
    for r in rows:
        acc = r["best_final_accuracy_of_differing"]
        print(f"{r['devices']:>7} {r['padded_population']:>8} {r['candidate_steps_per_s']:>13,.0f} "
              f"{r['speed_vs_first']:>8.2f} {r['compile_s']:>9.1f} {r['max_rel_diff_of_the_others'] or 0:>9.1e} "
              f"{r['candidates_differing']:>9}  " + ("" if acc is None else f"({acc:.3f})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
