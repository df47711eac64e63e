"""The tables of the Jordan et al. 2021 protocols (jordan_correlation, jordan_reward): known and published rules on
the same final seeds (same streams, stimuli, initial weights and noise for every rule), each with its paired
difference to the first row and a 95% interval.

    python scripts/jordan_protocols.py correlation [--seeds 8] [--rule RUN_DIR:0 ...] [--task-arg end_background_ms=0]
    python scripts/jordan_protocols.py reward [--seeds 8] [--rule RUN_DIR:0 ...] [--task-arg update_after_trial=true]

A row's simulation settings (lr, trace time constants) are its own: registry rules run with their registry
defaults, formulas with the settings given here (a reward formula given with --rule: lr 1, tau+- 10 ms,
tau_elig 500 ms), a run's rule (RUN_DIR:RANK) with its run's.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

# (label, rule, settings): settings None = the rule's own (registry / run) defaults
CORRELATION = [
    ("no plasticity", "0*sy", None),
    ("stdp_add (A+ 0.01, A- 0.0105)", "stdp_add", None),
    ("stdp_mult (lambda 0.01)", "stdp_mult", None),
    ("homeostatic STDP (their Fig. 5 reference; Masquelier 2017)", "0.01*sy*tx - 0.0015*sy", None),
    ("their evolved LR1 (run 9): 0.01*[sy*(tx - w) - sx*(w*ty - w - ty)]",
     "0.01*(sy*tx - sy*w - sx*ty*w + sx*w + sx*ty)", None),
]
_REWARD_SETTINGS = {"lr": 1.0, "tau_plus": 10.0, "tau_minus": 10.0, "tau_elig": 500.0}
REWARD = [
    ("no plasticity", "0*sy", None),
    ("r_stdp (registry: lr 0.01, tau_elig 1 s)", "r_stdp", None),
    ("r_stdp, lr 0.3, tau_elig 500 ms (the search config's settings)",
     "dw = 0.3*(r - rbar)*elig; delig = sy*tx - 1.5*ty*sx", _REWARD_SETTINGS),
    ("their evolved E*(R - 1), E without the expectation term",
     "dw = 0.2*(r - r*r)*elig; delig = sy*tx", _REWARD_SETTINGS),
    ("their evolved E*(R - 1), E = sy*tx - 0.01*v^2*tx (their E)",
     "dw = 0.2*(r - r*r)*elig; delig = sy*tx - 0.01*v*v*tx", _REWARD_SETTINGS),
]


def _resolve(spec: str, settings, protocol: str = "correlation"):
    from plasticity_search.runs import resolve_rule_spec

    rule = resolve_rule_spec(spec)
    if settings is None and not rule.defaults and protocol == "reward":
        settings = _REWARD_SETTINGS             # a formula given with --rule: the reward rows' settings
    if settings is not None:
        rule = dataclasses.replace(rule, defaults={**(rule.defaults or {}), **settings})
    return rule


def _num(x):
    """A finite float, else None (JSON null: a seed or metric that diverged)."""
    return float(x) if x is not None and np.isfinite(x) else None


def row_record(label: str, spec: str, settings, values, others: dict, paired: dict, seconds: float) -> dict:
    """One row of the table as data: per-seed values (None where a seed diverged), mean/std/min over the finite
    seeds and how many diverged, the other metrics' means, the paired difference to the first row."""
    v = np.array([np.nan if x is None else x for x in values], np.float64)
    ok = v[np.isfinite(v)]         # a seed that diverged is counted, not averaged
    stat = (lambda f: _num(f(ok)) if ok.size else None)      # noqa: E731
    return {"label": label, "rule": spec, "settings": settings, "values": [_num(x) for x in v],
            "mean": stat(np.mean), "std": stat(np.std), "min": stat(np.min), "diverged": int(v.size - ok.size),
            "others": {k: _num(x) for k, x in others.items()},
            "delta": paired["delta"], "lo": paired["lo"], "hi": paired["hi"], "seconds": seconds}


def row_text(r: dict, p: dict | None) -> str:
    """The markdown row of :func:`row_record`'s ``r``; ``p`` its paired difference (None: the reference row)."""
    from plasticity_search.search.stats import format_delta

    f2 = lambda x: "nan" if x is None else f"{x:.2f}"      # noqa: E731
    d = ("" if p is None else format_delta(p) if p["delta"] is None
         else f"{p['delta']:+.2f}" if p["lo"] is None else f"{p['delta']:+.2f} [{p['lo']:+.2f}, {p['hi']:+.2f}]")
    div = f" ({r['diverged']} of {len(r['values'])} seeds diverged)" if r["diverged"] else ""
    return (f"| {r['label']} | `{r['rule']}` | {f2(r['mean'])} ± {f2(r['std'])}{div} | {f2(r['min'])} | "
            + ", ".join("nan" if x is None else f"{x:.1f}" for x in r["values"]) + f" | {d} | "
            + ", ".join(f"{k} {f2(x)}" for k, x in r["others"].items()) + " |")


def main(argv=None) -> int:
    from plasticity_search.evaluate_cmd import parse_task_args
    from plasticity_search.search.stats import paired_difference
    from plasticity_search.spiking import evaluate_rule
    from plasticity_search.tasks import make

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocol", choices=("correlation", "reward"))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--rule", action="append", default=[], help="another rule (formula or RUN_DIR:RANK)")
    ap.add_argument("--task-arg", action="append", metavar="FIELD=VALUE")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    task = make(f"jordan_{args.protocol}", **parse_task_args(args.task_arg))
    metric = task.metrics[0]
    rows = list(CORRELATION if args.protocol == "correlation" else REWARD) + [(r, r, None) for r in args.rule]
    out, ref = [], None
    for label, spec, settings in rows:
        t0 = time.perf_counter()
        res, _ = evaluate_rule(_resolve(spec, settings, args.protocol), task, seeds=args.seeds, steps=args.steps)
        v = np.array([np.nan if x is None else x for x in res[metric]["values"]])
        ref = v if ref is None else ref
        p = paired_difference(v, ref)
        out.append(row_record(label, spec, settings, v, {k: res[k]["mean"] for k in res if k not in (metric, "finite")},
                              p, time.perf_counter() - t0))
        if not args.json:
            print(row_text(out[-1], None if len(out) == 1 else p), flush=True)
    if args.json:
        json.dump({"task": task.name, "metric": metric, "seeds": args.seeds, "split": "final",
                   "rows": out}, sys.stdout, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
