"""Coefficient searches over fixed rule structures (BENCHMARKS.md benchmarks 6 and 1).

``st_pool``: the Shervani-Tabar & Rosenbaum term pool ``-th0 e x - th1 e e_pre + th2 (y x - y^2 w)`` on 5-way 20-shot
online digits episodes, deep softplus network (64-100-80-60-5), FA feedback. The pool is tuned by CMA-ES
(``search_spaces/st_pool.yaml``) and by meta-gradient (``st_pool_metagrad.yaml``) from plain FA (theta = [1, 0, 0]);
``--fa-tuned`` also tunes the FA coefficient alone (its learning rate) by CMA-ES, the fair baseline. Reported: query
accuracy after 100 online updates on the ``final`` episodes (64 episodes never used by the search), mean ± std over
search seeds, against plain FA on the same episodes.

``volterra``: the 27-term Confavreux polynomial basis tuned by CMA-ES from 0 on the PCA objective
(``search_spaces/volterra_oja.yaml``), against Oja's rule on the same final tasks.

    python scripts/reproduce_coefficients.py st_pool  [--seeds 0 1 2] [--fa-tuned] [--json OUT] [--plot PNG]
    python scripts/reproduce_coefficients.py volterra [--seeds 0 1 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from repro_common import ROOT, baseline, best_entry, plot_progress, run_seed, save_json  # noqa: E402


def ms(xs) -> str:
    xs = np.asarray(xs, np.float64)
    return f"{xs.mean():.4f} ± {xs.std():.4f}"


def st_pool(args) -> int:
    runs = {"CMA-ES (st_pool.yaml)": "search_spaces/st_pool.yaml",
            "meta-gradient (st_pool_metagrad.yaml)": "search_spaces/st_pool_metagrad.yaml"}
    extra = {}
    if args.fa_tuned:
        runs["FA, coefficient tuned by CMA-ES"] = "search_spaces/st_pool.yaml"
        extra["FA, coefficient tuned by CMA-ES"] = {"coefficients.structure": "-e*x", "coefficients.init": [-1.0]}
    fa = baseline(os.path.join(ROOT, "search_spaces/st_pool.yaml"), "-e*x")["final_accuracy"]
    print(f"plain FA (theta = [1, 0, 0]) on the final episodes: {ms(fa)} (over {len(fa)} episodes)", flush=True)
    table, results = {}, {}
    for name, cfg in runs.items():
        accs, rows = [], []
        for seed in args.seeds:
            r = run_seed(os.path.join(ROOT, cfg), seed, extra.get(name), in_process=args.in_process, nice=args.nice)
            hof, e = best_entry(r)
            acc = e.metrics["final"]["final_accuracy"]
            accs.append(acc)
            rows.append({"seed": seed, "final_accuracy": acc, "final_accuracy_std_episodes":
                         e.metrics["final"].get("final_accuracy_std"), "select_accuracy":
                         e.metrics.get("select", {}).get("final_accuracy"), "formula": e.formula,
                         "theta": r.get("theta"), "theta_names": r.get("theta_names"),
                         "wall_s": round(r["wall_s"], 1), "generations": len(r["metrics"])})
            r["label"] = f"{name.split(' (')[0]}, seed {seed}"
            results.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: final acc {acc:.4f} (select {rows[-1]['select_accuracy']:.4f})  "
                  f"{r['wall_s']:.0f} s  theta {np.round(r.get('theta', []), 3).tolist()}  dw = {e.formula}",
                  flush=True)
        table[name] = {"mean_std": ms(accs), "per_seed": rows}
    print("\n| rule | final query accuracy (mean ± std) | per seed |")
    print("|---|---|---|")
    print(f"| plain FA, theta = [1, 0, 0] | {ms(fa)} (over episodes) | deterministic |")
    for name, t in table.items():
        per = ", ".join(f"{r['final_accuracy']:.3f}" for r in t["per_seed"])
        print(f"| {name} | {t['mean_std']} (over seeds) | {per} |")
    save_json(args.json, {"fa": fa, "table": table, "results": results})
    if args.plot:
        plot_progress(args.plot, [r for rs in results.values() for r in rs], key="best_fitness_ever",
                      title="st_pool: best search accuracy so far")
    return 0


def volterra(args) -> int:
    from plasticity_search.search.equivalence import positive_factor
    cfg = os.path.join(ROOT, "search_spaces/volterra_oja.yaml")
    oja = baseline(cfg, "y*(x - y*w)", ("pc1_alignment", "weight_norm"))
    print(f"Oja (lr 0.005) on the final tasks: alignment {ms(oja['pc1_alignment'])}, "
          f"norm {ms(oja['weight_norm'])}", flush=True)
    rows, results = [], []
    for seed in args.seeds:
        r = run_seed(cfg, seed, in_process=args.in_process, nice=args.nice)
        hof, e = best_entry(r)
        prog, space = e.rule_program()
        k, res = positive_factor(prog, space, "y*(x - y*w)")
        theta = np.asarray(r.get("theta", []))
        names = r.get("theta_names", [])
        top = sorted(zip(names, theta), key=lambda t: -abs(t[1]))[:4]
        f = e.metrics["final"]
        rows.append({"seed": seed, "pc1_alignment": f.get("pc1_alignment"), "weight_norm": f.get("weight_norm"),
                     "fitness": f.get("fitness"), "oja_factor": k, "oja_residual": res, "formula": e.formula,
                     "top_coefficients": [(n, float(v)) for n, v in top], "wall_s": round(r["wall_s"], 1)})
        results.append(r)
        print(f"seed {seed}: final alignment {f.get('pc1_alignment'):.4f} norm {f.get('weight_norm'):.4f}  "
              f"largest mean coefficients {[(n, round(float(v), 3)) for n, v in top]}  "
              f"distance to Oja (relative residual) {res:.3f}  {r['wall_s']:.0f} s", flush=True)
    print("\n| seed | final pc1_alignment | final weight_norm | largest coefficients (CMA mean) | time (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        tc = ", ".join(f"{n}={v:.2f}" for n, v in r["top_coefficients"])
        print(f"| {r['seed']} | {r['pc1_alignment']:.4f} | {r['weight_norm']:.4f} | {tc} | {r['wall_s']} |")
    save_json(args.json, {"oja": oja, "rows": rows, "results": results})
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", choices=["st_pool", "volterra"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fa-tuned", action="store_true", help="st_pool: also tune plain FA's coefficient by CMA-ES")
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument("--in-process", action="store_true")
    ap.add_argument("--nice", type=int, default=0)
    args = ap.parse_args(argv)
    return st_pool(args) if args.bench == "st_pool" else volterra(args)


if __name__ == "__main__":
    sys.exit(main())
