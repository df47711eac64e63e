"""The regime table of BENCHMARKS.md: where FA falls short of backprop, and what the open-ended search finds there.

On one few-shot regime (``search_spaces/quickstart.yaml``: 5-way 20-shot digits episodes, deep softplus network
with fixed random feedback), every row is scored on the same ``final`` episodes (never seen by any search), seeds
and initial weights, and compared with plain FA by the paired difference of query accuracy (95% interval):

* feedback pathways for the gradient rule ``-e x``: BP (non-local reference), FA, DFA, sign-concordant feedback;
* the Shervani-Tabar term pool tuned by CMA-ES on the same network (``st_pool.yaml`` with the quickstart's network
  and search episodes; a planted basis of known terms), one run per ``--pool-seeds``;
* the rules chosen by open-ended quickstart runs (random programs, no seeded rules), given as run directories.

    python scripts/regime_table.py RUN_DIR [RUN_DIR ...] [--pool-seeds 0] [--episodes 64] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

from plasticity_search.rate import InnerConfig, evaluate_population  # noqa: E402
from plasticity_search.rules.program import stack  # noqa: E402
from plasticity_search.runs import resolve_rule_spec  # noqa: E402
from plasticity_search.search import load_config, run_search  # noqa: E402
from plasticity_search.search.stats import format_delta, paired_difference  # noqa: E402

QUICKSTART = os.path.join(ROOT, "search_spaces", "quickstart.yaml")
ST_POOL = os.path.join(ROOT, "search_spaces", "st_pool.yaml")


def score(rule, cfg, feedback: str, episodes: int) -> np.ndarray:
    """Final query accuracy per final episode of ``rule`` on the quickstart's task and network."""
    entry = cfg.tasks.final[0]
    task = cfg.make_task(entry)
    net = cfg.network_config().with_(feedback=feedback)
    m, _ = evaluate_population(stack([rule.program]), rule.space, task, InnerConfig(network=net, steps=entry.steps),
                               range(episodes), "final")
    return np.asarray(m["final_accuracy"][0], np.float64)


def pool_rule(cfg, seed: int):
    """Tune the Shervani-Tabar pool by CMA-ES on the quickstart's network and search/select episodes."""
    over = {"seed": seed, "network": dict(cfg.network), "tasks.search": [{"task": "digits_fewshot", "seeds": 16}],
            "tasks.select": [{"task": "digits_fewshot", "seeds": 16}],
            "tasks.final": [{"task": "digits_fewshot", "seeds": 16}], "generalization.at_end": False,
            "baselines": []}
    t0 = time.perf_counter()
    hof = run_search(load_config(ST_POOL, over))
    return hof.rule(hof.best), hof.formula(), time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="quickstart run directories (their rank-0 rule)")
    ap.add_argument("--pool-seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    cfg = load_config(QUICKSTART)
    fa = resolve_rule_spec("fa")
    rows = []
    ref = score(fa, cfg, "fa", args.episodes)
    for label, rule, fb in (("BP (rule -e x, backpropagated errors)", fa, "bp"), ("FA (fixed random feedback)", fa, "fa"),
                            ("DFA (direct random feedback)", fa, "dfa"), ("sign-concordant feedback", fa, "sign")):
        rows.append((label, "-e*x", ref if fb == "fa" else score(rule, cfg, fb, args.episodes), ""))
    for s in args.pool_seeds:
        rule, formula, wall = pool_rule(cfg, s)
        rows.append((f"ST pool tuned by CMA-ES (seed {s})", formula, score(rule, cfg, "fa", args.episodes),
                     f"{wall:.0f} s"))
    for d in args.runs:
        rule = resolve_rule_spec(f"{d}:0")
        with open(os.path.join(d, "run.json")) as f:
            rec = json.load(f)
        rows.append((f"open-ended search, seed {rec.get('seed')}", rule.formula, score(rule, cfg, "fa", args.episodes),
                     f"{rec.get('elapsed_s', 0):.0f} s"))
    net = cfg.network_config()
    print(f"digits_fewshot, network 64-{'-'.join(map(str, net.hidden))}-5 {net.activation}, {args.episodes} final "
          "episodes (same episodes and initial weights for every row)\n")
    print("| rule / feedback | formula | final query accuracy (mean ± std) | Δ vs FA (95% CI) | search wall |")
    print("|---|---|---|---|---|")
    out = []
    for label, formula, acc, wall in rows:
        p = paired_difference(acc, ref)
        d = "(reference)" if acc is ref else format_delta(p)
        print(f"| {label} | `{formula}` | {acc.mean():.4f} ± {acc.std():.4f} | {d} | {wall} |")
        out.append({"row": label, "formula": formula, "mean": float(acc.mean()), "std": float(acc.std()),
                    "vs_fa": p, "wall": wall})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
