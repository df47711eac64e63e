"""End-to-end search throughput against the inner loop alone, on the same population shape, in one run.

Workload: online digits (64-H-10 tanh/softmax, FA feedback, T steps, S seeds per task), the quickstart's rule space,
regularized evolution with ``--children`` candidates per generation out of ``--population``. Two measurements, side
by side in one process:

(a) **inner loop alone**: the search's own compiled evaluator on ``children`` different random programs with the
    search split's data (median of ``--repeats`` calls after compilation);
(b) **the whole search** through the runs layer (``plasticity-search run``): mutation, FEC hashing and cache,
    archive, selection, select re-scoring, metrics lines and checkpoints (the default policy). It runs twice in
    the process; the second run (everything compiled) gives the steady state = the wall time from the end of
    generation 1 to the end of the last generation, measured from the outside with the metrics lines' arrival
    times (also each generation's: the last ones run beside the finalize computed ahead, search/ahead.py); the
    first gives the whole cold run (compile and finalize included).

Throughput counts *evaluated* candidates (FEC hits cost no inner loop), in candidates/s and candidate-steps/s
(x steps x seeds). The ratio ``end_to_end_over_inner`` is the share of the inner loop's throughput the search keeps.

    python scripts/bench_search.py [--population 2048] [--children 1024] [--hidden 32] [--steps 200] [--seeds 2]
                                   [--generations 6] [--repeats 3] [--plan auto|padding|calls] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def config(args) -> dict:
    import yaml

    with open(os.path.join(ROOT, "search_spaces", "quickstart.yaml")) as f:
        space = yaml.safe_load(f)["space"]
    return {
        "name": "bench_search", "seed": 0, "space": space,
        "search": {"strategy": "regularized_evolution", "population": args.population, "children": args.children,
                   "tournament": 8},
        "network": {"hidden": [args.hidden], "activation": "tanh", "feedback": "fa", "lr": 0.05},
        "tasks": {"search": [{"task": "digits", "seeds": args.seeds, "steps": args.steps}],
                  "select": [{"task": "digits", "seeds": args.seeds, "steps": args.steps}],
                  "final": [{"task": "digits", "seeds": args.seeds, "steps": args.steps}]},
        "fitness": {"metric": "final_accuracy"},
        "hall_of_fame": {"select_seeds": None},
        "baselines": [],
        "generalization": {"at_end": False},
        "budget": {"generations": args.generations},
    }


def timed_calls(search, ev, n: int, repeats: int, seed: int) -> dict:
    """``ev.evaluate`` on ``repeats + 1`` populations of ``n`` different random programs: the first call's extra
    time (compilation) and the median of the others."""
    import jax
    import numpy as np

    from plasticity_search.rules import random_population

    pops = [jax.tree.map(np.asarray, random_population(jax.random.key(seed + i), search.space, n, 3))
            for i in range(repeats + 1)]
    t0 = time.perf_counter()
    ev.evaluate(pops[0])
    first = time.perf_counter() - t0
    times = []
    for p in pops[1:]:
        t0 = time.perf_counter()
        ev.evaluate(p)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"compile_s": first - med, "call_s": med, "candidates_per_s": n / med}


def inner_alone(cfg, repeats: int) -> dict:
    """The search's own search-split evaluator on ``children`` random programs (one compiled shape)."""
    from plasticity_search.search.engine import Search

    search = Search(cfg)
    return timed_calls(search, search.evaluator("search"), cfg.search.children, repeats, 100)


def knee(cfg, sizes, repeats: int) -> list[dict]:
    """Inner-loop throughput against the batch (candidates per compiled call): where the device saturates."""
    from plasticity_search.search.engine import Search

    search = Search(cfg)
    rows = []
    for n in sizes:
        ev = search.evaluators.build(search.tasks["search"], "search", n)
        r = timed_calls(search, ev, n, repeats, 7)
        rows.append({"batch": n, "candidates_per_s": r["candidates_per_s"], "compile_s": r["compile_s"]})
    return rows


def device_parts(cfg, repeats: int) -> dict:
    """``search.generations_per_call``: one generation inside the compiled block of 10 (calls of 1 and of 10, per
    generation) against its parts called on their own: the search evaluator on ``children`` random programs, the
    mutation (``ask``) and the traced complexity; medians of ``repeats`` alternating rounds, in ms."""
    import dataclasses

    import jax
    import numpy as np

    from plasticity_search.rules import random_population
    from plasticity_search.rules.program import complexities_traced
    from plasticity_search.search.engine import Search
    from plasticity_search.search.regevo import jitted

    s = cfg.search
    if s.generations_per_call < 2:
        cfg = dataclasses.replace(cfg, search=dataclasses.replace(s, fec=False, generations_per_call=10))
    search = Search(cfg)
    state = search.init()
    ev, dg = search.evaluator("search"), search.device_generations
    pops = [jax.tree.map(np.asarray, random_population(jax.random.key(i), search.space, cfg.search.children, 3))
            for i in range(3)]
    ask = jitted(search.strategy.regevo, "ask")
    cplx = jax.jit(lambda p: complexities_traced(p, search.space))
    parts = {
        "evaluate": lambda r: ev.evaluate(pops[r % 3]),
        "block_of_1": lambda r: dg.run(state.key, state.strategy, 1),
        "block_of_10_per_generation": lambda r: dg.run(state.key, state.strategy, 10),
        "ask": lambda r: jax.block_until_ready(ask(state.key, state.strategy)),
        "complexity": lambda r: jax.block_until_ready(cplx(pops[r % 3])),
    }
    times: dict = {k: [] for k in parts}
    for r in range(repeats + 1):           # round 0 compiles
        for k, fn in parts.items():
            t0 = time.perf_counter()
            fn(r)
            dt = time.perf_counter() - t0
            if r:
                times[k].append(dt / (10 if k == "block_of_10_per_generation" else 1))
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def phases(path: str, plots: bool = True) -> dict:
    """A real ``run`` of a config file: wall time before the first generation (setup, compile, initial
    population), in generations (first generation start to last generation end) and after (finalize, baselines,
    generalization, report)."""
    from plasticity_search.runs.runner import execute, plan_run
    import plasticity_search.search.engine as engine

    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_run(path, out=os.path.join(tmp, "run"), wandb="disabled", plots=plots)
        marks: dict = {}
        orig_steps = engine.Search.steps         # what the runner calls: one or more generations

        def steps(self, state):
            marks.setdefault("first_step", time.perf_counter())
            out = orig_steps(self, state)
            marks["last_step_end"] = time.perf_counter()
            return out

        engine.Search.steps = steps
        t0 = time.perf_counter()
        try:
            res = execute(plan, progress=False, log=lambda s: None)
        finally:
            engine.Search.steps = orig_steps
        total = time.perf_counter() - t0
        lines = [json.loads(x) for x in open(os.path.join(plan.run_dir, "metrics.jsonl"))]
    steps = sum(float(m["wall_time_s"]) for m in lines)
    before = marks["first_step"] - t0
    after = t0 + total - marks["last_step_end"]
    return {"config": path, "generations": res.generations_done, "total_s": total, "before_s": before,
            "generations_s": total - before - after, "after_s": after, "engine_steps_s": steps,
            "between_steps_share": (total - before - after - steps) / max(total - before - after, 1e-9),
            "outside_share": (before + after) / total}


def chunk_check(cfg, n: int) -> dict:
    """The same ``n`` random programs evaluated in calls of 8, 16, 32 and ``n``: are the metrics bit-identical?
    (Runs use batch sizes that are powers of two from 16: evaluator.buckets.)"""
    import jax
    import numpy as np

    from plasticity_search.rules import random_population
    from plasticity_search.search.engine import Search

    search = Search(cfg)
    pop = jax.tree.map(np.asarray, random_population(jax.random.key(3), search.space, n, 3))
    out = {}
    for c in (8, 16, 32, n):
        ev = search.evaluators.build(search.tasks["search"], "search", c)
        out[c] = ev.evaluate(pop)[1][0]
    ref = out[n]
    res = {}
    for c in (8, 16, 32):
        diffs = [float(np.nanmax(np.abs(out[c][k] - ref[k]))) if np.isfinite(ref[k]).any() else 0.0 for k in ref]
        res[str(c)] = {"identical": all(np.array_equal(out[c][k], ref[k], equal_nan=True) for k in ref),
                       "max_abs_diff": max(diffs)}
    return {"n": n, "vs_one_call": res}


def profile_rows(prof, n: int) -> dict:
    """The ``n`` functions with the most own time and the most cumulative time, as short text rows."""
    import pstats

    st = pstats.Stats(prof)
    rows = {}
    for key in ("tottime", "cumulative"):
        fns = sorted(st.stats.items(), key=lambda kv: kv[1][2 if key == "tottime" else 3], reverse=True)[:n]
        rows[key] = [f"{v[2]:8.3f} {v[3]:8.3f} {v[1]:7d}  {os.path.basename(k[0])}:{k[1]} {k[2]}" for k, v in fns]
    return rows


def whole_search(cfg_dict: dict, profile: int = 0) -> dict:
    """A real ``run`` (runs layer, checkpoints by the default policy); generation times from metrics-line arrivals.
    ``profile > 0``: the run under cProfile, its ``profile`` functions of most own time and most cumulative time
    (where the host spends a generation; on an accelerator, time waiting for the device shows up where results are
    read)."""
    from plasticity_search.runs.runner import execute, plan_run

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(cfg_dict, f)
        run_dir = os.path.join(tmp, "run")
        plan = plan_run(path, out=run_dir, wandb="disabled", plots=False)
        stamps: list[float] = []
        t0 = time.perf_counter()
        import plasticity_search.runs.runner as runner

        from plasticity_search.search.evaluator import SplitEval

        orig, orig_call = runner.append_metrics, SplitEval._call
        calls: list[int] = [0]
        calls_at: list[int] = []

        def stamped(d, m):          # the moment each generation's metrics line is written, and the calls so far
            orig(d, m)
            stamps.append(time.perf_counter())
            calls_at.append(calls[0])

        def counted(self, *a, **k):  # the search's compiled evaluation calls (one per chunk and task; select
            if threading.current_thread() is threading.main_thread():   # re-scoring too; not the ahead thread's)
                calls[0] += 1
            return orig_call(self, *a, **k)

        runner.append_metrics, SplitEval._call = stamped, counted
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        try:
            res = execute(plan, progress=False, log=lambda s: None)
        finally:
            runner.append_metrics = orig
            SplitEval._call = orig_call
            if prof is not None:
                prof.disable()
        total = time.perf_counter() - t0
        lines = [json.loads(x) for x in open(os.path.join(run_dir, "metrics.jsonl"))]
        ckpt_bytes = sum(os.path.getsize(os.path.join(run_dir, "checkpoints", f))
                         for f in os.listdir(os.path.join(run_dir, "checkpoints")))
    evaluated = [int(m["n_evaluated"]) for m in lines]
    step_s = [float(m["wall_time_s"]) for m in lines]
    # steady state from the end of the first call (its last line: with search.generations_per_call a call writes
    # that many lines at once) to the end of the last
    i0 = int(lines[0].get("generations_per_call", 1)) - 1
    n_steady = evaluated[-1] - evaluated[i0]
    steady_s = stamps[-1] - stamps[i0]
    out = {"profile": profile_rows(prof, profile)} if prof is not None else {}
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    out["generation_s"] = {"median": statistics.median(gaps) if gaps else None, "each": gaps}
    per_gen = [b - a for a, b in zip(calls_at, calls_at[1:])]
    out["eval_calls_per_generation"] = {"median": statistics.median(per_gen) if per_gen else None, "each": per_gen}
    return {**out, "generations": res.generations_done, "total_s": total, "first_generation_end_s": stamps[0] - t0,
            "finalize_s": t0 + total - stamps[-1], "steady_s": steady_s,
            "steady_step_s": sum(step_s[i0 + 1:]), "evaluated_steady": n_steady,
            "steady_generations": len(lines) - i0 - 1,
            "candidates_per_s": n_steady / steady_s if steady_s > 0 else 0.0,
            "fec_hit_rate": lines[-1].get("fec_hit_rate"), "checkpoint_bytes": ckpt_bytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=2048)
    ap.add_argument("--children", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--knee", type=int, nargs="*", default=None,
                    help="only the inner loop's throughput at these batch sizes (where the device saturates)")
    ap.add_argument("--hidden-layers", type=int, nargs="*", default=None,
                    help="hidden widths (default: one layer of --hidden)")
    ap.add_argument("--chunk-check", type=int, default=None, metavar="N",
                    help="only check that N programs give identical metrics in calls of 8, 16, 32 and N")
    ap.add_argument("--config", default=None,
                    help="only run this config (runs layer) and report the wall time before, in and after its "
                         "generations")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="run the steady search under cProfile and report its N top functions (own and cumulative "
                         "time)")
    ap.add_argument("--plan", choices=("auto", "padding", "calls"), default="auto",
                    help="how evaluations are planned into compiled calls: this platform's default "
                         "(search/autosize.py PLAN), least padding (a CPU's) or fewest calls (an accelerator's)")
    ap.add_argument("--generations-per-call", type=int, default=1, metavar="K",
                    help="search.generations_per_call: K generations in one compiled call (implies --no-fec)")
    ap.add_argument("--no-fec", action="store_true", help="search.fec: false (every child evaluated)")
    ap.add_argument("--device-parts", action="store_true",
                    help="only time one generation inside the device block against its parts (ms)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")

    import jax

    if args.plan != "auto":
        from plasticity_search.search import autosize

        autosize.PLAN[autosize.platform()] = args.plan

    from plasticity_search.search.config import load_config

    if args.config:
        r = phases(args.config)
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            print(f"{args.config}: {r['total_s']:.1f} s, {r['generations']} generations; before the first "
                  f"{r['before_s']:.1f} s, generations {r['generations_s']:.1f} s, after {r['after_s']:.1f} s; "
                  f"outside generations {r['outside_share']:.0%}; within generations, outside the engine's steps "
                  f"(checkpoints, metrics, logging) {r['between_steps_share']:.0%}")
        return
    d = config(args)
    if args.generations_per_call > 1 or args.no_fec:
        d["search"]["fec"] = False
        d["search"]["generations_per_call"] = args.generations_per_call
    if args.hidden_layers:
        d["network"]["hidden"] = list(args.hidden_layers)
    cfg = load_config(d)
    if args.device_parts:
        r = device_parts(cfg, args.repeats)
        print(json.dumps({"device": jax.devices()[0].device_kind, "children": args.children, "ms": r}, indent=2))
        return
    if args.chunk_check:
        print(json.dumps({"device": jax.devices()[0].device_kind, **chunk_check(cfg, args.chunk_check)}, indent=2))
        return
    if args.knee is not None:
        rows = knee(cfg, args.knee or [8, 16, 32, 64, 128, 256, 512, 1024], args.repeats)
        if args.json:
            print(json.dumps({"device": jax.devices()[0].device_kind, "network": d["network"]["hidden"],
                              "seeds": args.seeds, "steps": args.steps, "knee": rows}, indent=2))
        else:
            top = max(r["candidates_per_s"] for r in rows)
            for r in rows:
                print(f"batch {r['batch']:6d}: {r['candidates_per_s']:10.1f} cand/s ({r['candidates_per_s'] / top:.2f} "
                      f"of the best), compile {r['compile_s']:.1f} s")
        return
    per_cand = args.steps * args.seeds
    inner = inner_alone(cfg, args.repeats)
    cold = whole_search(d)          # compiles what the inner loop did not (select, buckets, finalize)
    e2e = whole_search(d, args.profile)  # the same run again: steady state without compilation
    e2e["cold_total_s"] = cold["total_s"]
    from plasticity_search.search.autosize import plan_policy

    out = {"device": jax.devices()[0].device_kind, "platform": jax.default_backend(), "plan": plan_policy(),
           "population": args.population, "children": args.children, "hidden": args.hidden, "steps": args.steps,
           "seeds": args.seeds, "fec": d["search"].get("fec", True),
           "generations_per_call": args.generations_per_call,
           "inner": {**inner, "candidate_steps_per_s": inner["candidates_per_s"] * per_cand},
           "search": {**e2e, "candidate_steps_per_s": e2e["candidates_per_s"] * per_cand},
           "end_to_end_over_inner": e2e["candidates_per_s"] / inner["candidates_per_s"]}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"device {out['device']} ({out['platform']}); population {args.population}, children {args.children}, "
          f"64-{args.hidden}-10, {args.steps} steps x {args.seeds} seeds")
    print(f"inner loop alone : {inner['candidates_per_s']:10.1f} cand/s  "
          f"{out['inner']['candidate_steps_per_s']:12.0f} cand-steps/s  (compile {inner['compile_s']:.1f} s)")
    print(f"whole search     : {e2e['candidates_per_s']:10.1f} cand/s  "
          f"{out['search']['candidate_steps_per_s']:12.0f} cand-steps/s  (steady {e2e['steady_s']:.1f} s over "
          f"{e2e['steady_generations']} generations, engine steps {e2e['steady_step_s']:.1f} s, fec hits "
          f"{e2e['fec_hit_rate']:.2f})")
    gen = e2e["generation_s"]
    print(f"generations      : median {1e3 * (gen['median'] or 0):.1f} ms; each "
          + " ".join(f"{1e3 * g:.0f}" for g in gen["each"]) + " ms")
    calls = e2e["eval_calls_per_generation"]
    print(f"evaluation calls : median {calls['median']} per generation ({out['plan']} plan); each "
          + " ".join(str(c) for c in calls["each"]))
    print(f"whole run        : {e2e['cold_total_s']:.1f} s cold, {e2e['total_s']:.1f} s warm (first generation done at "
          f"{e2e['first_generation_end_s']:.1f} s, "
          f"finalize {e2e['finalize_s']:.1f} s, checkpoints {e2e['checkpoint_bytes'] / 1e6:.2f} MB)")
    print(f"end_to_end_over_inner = {out['end_to_end_over_inner']:.2f}")
    for key, rows in e2e.get("profile", {}).items():
        print(f"profile by {key} (own s, cumulative s, calls, function):")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
