"""Baseline table: feedback pathway (bp / fa / dfa) x rule (fa / hebb / oja) x task, final split, mean ± std.

Each (feedback, task) pair runs the three rules as one population (one compile). Rules use their registry
learning rates; tasks their default networks and steps (digits: 64-100-10 tanh, T = 1000).

    python scripts/baselines.py [--seeds 5] [--tasks digits digits:100-50 yinyang mnist1d teacher_student pca] [--json]

A task may carry a network spec after a colon (``digits:100-50`` = hidden layers 100 and 50), so that the
feedback pathways differ (with one hidden layer dfa and fa coincide).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from plasticity_search.rate import InnerConfig, evaluate_population  # noqa: E402
from plasticity_search.rate import default_network, parse_network_spec  # noqa: E402
from plasticity_search.rules import RATE_SPACE, RULES, pad, stack  # noqa: E402
from plasticity_search.tasks import make  # noqa: E402

RULE_NAMES = ("fa", "hebb", "oja")
HEADLINE = {"classification": "final_accuracy", "regression": "final_mse", "pca": "pc1_alignment"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tasks", nargs="+", default=["digits", "digits:100-50", "yinyang", "mnist1d", "teacher_student", "pca"])
    ap.add_argument("--feedbacks", nargs="+", default=["bp", "fa", "dfa"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    space = RATE_SPACE.resized(n_post=2, n_pre=2, n_terms=3)
    pop = stack([pad(*RULES[n].compile(), space) for n in RULE_NAMES])
    rows = []
    for task_name in args.tasks:
        name, _, spec = task_name.partition(":")
        task = make(name)
        metric = HEADLINE[task.objective]
        for fb in args.feedbacks:
            # one population, one compile; each rule keeps its own learning rate by scaling its coefficients
            base = default_network(task.objective).with_(feedback=fb)
            if spec:
                base = parse_network_spec(spec, task.n_in, task.n_out, base)
            lrs = np.array([RULES[n].defaults.get("lr", base.lr) for n in RULE_NAMES], np.float32)
            scaled = pop._replace(term_coef=np.asarray(pop.term_coef) * (lrs / base.lr)[:, None])
            cfg = InnerConfig(network=base)
            t0 = time.perf_counter()
            m, _ = evaluate_population(scaled, space, task, cfg, range(args.seeds), "final")
            dt = time.perf_counter() - t0
            for i, rule in enumerate(RULE_NAMES):
                v = m[metric][i].astype(np.float64)
                rows.append({"task": task_name, "feedback": fb, "rule": rule, "metric": metric,
                             "mean": float(np.nanmean(v)) if np.isfinite(v).any() else None,
                             "std": float(np.nanstd(v)) if np.isfinite(v).any() else None,
                             "diverged_seeds": int((~np.isfinite(v)).sum()), "seconds": dt})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"| task | metric | feedback | {' | '.join(RULE_NAMES)} |")
    print("|---|---|---|" + "---|" * len(RULE_NAMES))
    for task_name in args.tasks:
        for fb in args.feedbacks:
            cells = []
            for rule in RULE_NAMES:
                r = next(x for x in rows if x["task"] == task_name and x["feedback"] == fb and x["rule"] == rule)
                if r["mean"] is None:
                    cells.append("diverged")
                else:
                    cells.append(f"{r['mean']:.3g} ± {r['std']:.2g}"
                                 + (f" ({r['diverged_seeds']} div.)" if r["diverged_seeds"] else ""))
            print(f"| {task_name} | {rows[[x['task'] for x in rows].index(task_name)]['metric']} | {fb} | "
                  + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
