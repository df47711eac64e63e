"""Shared helpers of the reproduction scripts (scripts/reproduce_*.py): run one search per seed, each in a fresh
Python process (cold: imports and compilation included, like ``plasticity-search run CONFIG --seed S``), collect the
hall of fame, the per-generation metrics and the wall time.

    python scripts/repro_common.py --worker CONFIG SEED OVERRIDES_JSON OUT_JSON     # used internally
"""
from __future__ import annotations

import time

T_START = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_seed(config: str, seed: int, overrides: dict | None = None, in_process: bool = False,
             nice: int = 0) -> dict:
    """{'seed', 'wall_s', 'hall_of_fame', 'metrics', 'state_counters'} of one search."""
    overrides = dict(overrides or {})
    if in_process:
        t0 = time.perf_counter()
        out = _work(config, seed, overrides)
        out["wall_s"] = time.perf_counter() - t0
        return out
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", config, str(seed), json.dumps(overrides), path]
        if nice:
            cmd = ["nice", "-n", str(nice)] + cmd
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"seed {seed} failed:\n{r.stderr[-3000:]}")
        with open(path) as f:
            out = json.load(f)
    out["wall_s"] = wall
    return out


def _work(config: str, seed: int, overrides: dict) -> dict:
    """init / step until done / finalize (what run_search does), keeping the final strategy parameters."""
    sys.path.insert(0, ROOT)
    import numpy as np

    from plasticity_search.search import Search, load_config
    cfg = load_config(config, {**overrides, "seed": seed})
    search = Search(cfg)
    state = search.init()
    metrics = []
    while not search.done(state):
        state, m = search.steps(state)
        metrics += m
    hof = search.finalize(state)
    out = {"seed": seed, "config": cfg.to_dict(), "hall_of_fame": hof.to_json(), "metrics": metrics,
           "counters": {k: v for k, v in state.counters.items()}}
    if search.kind == "metagrad":
        out["theta"] = np.asarray(state.strategy.theta).tolist()
    elif search.kind == "evosax":
        es = search._es(search.param.n, cfg.search.population)
        out["theta"] = np.asarray(es.mean(state.strategy)).tolist()
    if search.param is not None:
        out["theta_names"] = list(search.param.names)
    return out


def baseline(config: str, formula: str, metrics=("final_accuracy",)) -> dict:
    """A fixed rule evaluated on the config's final tasks with the config's network: per-episode values."""
    import numpy as np

    from plasticity_search.rate import InnerConfig, evaluate_population
    from plasticity_search.rules import compile_formula, stack
    from plasticity_search.rules.known import RATE_SPACE
    from plasticity_search.search import load_config
    cfg = load_config(config)
    prog, space = compile_formula(formula, RATE_SPACE)
    out = {m: [] for m in metrics}
    for e in cfg.tasks.final:
        task = cfg.make_task(e)
        m, _ = evaluate_population(stack([prog]), space, task, InnerConfig(network=cfg.network_config(),
                                                                          steps=e.steps), e.seed_list, "final")
        for k in metrics:
            out[k].extend(np.asarray(m[k][0], np.float64).tolist())
    return out


def best_entry(result: dict):
    from plasticity_search.search import HallOfFame
    hof = HallOfFame.from_json(result["hall_of_fame"])
    return hof, hof.entries[hof.best] if hof.entries else None


def mean_std(xs) -> str:
    import numpy as np
    xs = np.asarray(xs, np.float64)
    return f"{xs.mean():.4f} ± {xs.std():.4f}"


def save_json(path: str | None, doc) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {path}")


def plot_progress(path: str | None, results: list[dict], key: str = "best_fitness_ever", title: str = "") -> None:
    """Best fitness so far vs generation, one line per seed."""
    if not path:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in results:
        g = [m["generation"] for m in r["metrics"]]
        v = [max(m[key], -1.0) for m in r["metrics"]]
        ax.plot(g, v, label=r.get("label", f"seed {r['seed']}"))
    ax.set_xlabel("generation")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--worker":
    _, _, cfg_path, seed_s, over_s, out_path = sys.argv
    res = _work(cfg_path, int(seed_s), json.loads(over_s))
    res["process_s"] = time.perf_counter() - T_START
    with open(out_path, "w") as f:
        json.dump(res, f)
