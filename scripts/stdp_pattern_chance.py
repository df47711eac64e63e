#!/usr/bin/env python
"""Does stdp_pattern need spike timing? Known STDP rules next to rate rules and Hebbian rules without a timing term.

    python scripts/stdp_pattern_chance.py [--seeds 5] [--steps 600] [--split final] [--json] [RULE ...]

Every rule runs under the settings of ``search_spaces/stdp_pattern.yaml`` (its ``spiking:`` section: learning rate,
trace time constants, weight bounds), on the same seeds (same streams, same initial weights), on the final split.
Prints per rule the snr (mean ± std over seeds, and per seed), the output rate, and the paired difference to no
plasticity (``snr_before`` of the same instances) and to ``stdp_add`` with 95% intervals; then the spike-based
detection (hit rate - false-alarm rate of the spiking neuron on the test stream) with its paired difference to
``stdp_add``; then the learning curve, the same detection while learning (the neuron's own spikes in each training
segment, per twentieth of the stream; mean over seeds, plastic weights). Default rules:

* timing rules: ``stdp_add``, ``stdp_mult`` (pair STDP, causal order);
* rate rules: ``0.01*sx`` (potentiate every input spike), ``-1.4*sy + 0.7*tx`` and ``0.6429*sx - 1.366*sy*tx`` (the
  rules searches chose on the old, rate-leaking task; issue 15);
* Hebbian rules without a timing term: ``0.01*tx2*ty2`` (product of ~100 ms rates), ``0.01*(sy*tx + ty*sx)``
  (coincidence within ~20 ms, no causal order).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

DEFAULT_RULES = ("stdp_add", "stdp_mult", "0.01*sx", "-1.4*sy + 0.7*tx", "0.6429*sx - 1.366*sy*tx",
                 "0.01*tx2*ty2", "0.01*(sy*tx + ty*sx)")
KIND = {"stdp_add": "timing (pair STDP)", "stdp_mult": "timing (pair STDP)", "0.01*sx": "rate (pre)",
        "-1.4*sy + 0.7*tx": "rate (old search)", "0.6429*sx - 1.366*sy*tx": "old search",
        "0.01*tx2*ty2": "Hebb of rates", "0.01*(sy*tx + ty*sx)": "Hebb, symmetric"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table(rules=DEFAULT_RULES, seeds: int = 5, steps=None, split: str = "final",
          config: str = os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml")) -> dict:
    """Score ``rules`` (and stdp_add) on the same instances: {"rows": [...], "snr_before": [...], ...}."""
    from plasticity_search.rules import pad
    from plasticity_search.rules.known import SPACES
    from plasticity_search.rules.program import stack
    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.search.config import load_config
    from plasticity_search.search.stats import paired_difference
    from plasticity_search.spiking.spiking_model import make_evaluator, make_instances
    from plasticity_search.tasks import make

    cfg = load_config(config)
    space = SPACES["spiking"]
    rules = list(rules) if "stdp_add" in rules else ["stdp_add"] + list(rules)
    progs = []
    for r in rules:
        rr = resolve_rule(r)
        progs.append(pad(rr.program, rr.space, space))
    task = make("stdp_pattern")
    ev = make_evaluator(space, task, cfg.spiking_eval_config())
    m, curves = ev(stack(progs), make_instances(task, range(seeds), split, steps))
    m = {k: np.asarray(v, np.float64) for k, v in m.items()}
    curves = np.asarray(curves, np.float64)                # [P, S, C]: online detection per window of segments
    ref_i = rules.index("stdp_add")
    ref = m["snr"][ref_i]
    rows = []
    for i, r in enumerate(rules):
        snr = m["snr"][i]
        rows.append({"rule": r, "kind": KIND.get(r, ""), "snr_mean": float(np.mean(snr)),
                     "snr_std": float(np.std(snr)), "snr": [float(x) for x in snr], "rate_hz": float(np.mean(m["rate_hz"][i])),
                     "vs_before": paired_difference(snr, m["snr_before"][i]),
                     "vs_stdp_add": paired_difference(snr, ref),
                     "detection": [float(x) for x in m["detection"][i]],
                     "hit_rate": float(np.mean(m["hit_rate"][i])),
                     "false_alarm_rate": float(np.mean(m["false_alarm_rate"][i])),
                     "detection_vs_stdp_add": paired_difference(m["detection"][i], m["detection"][ref_i]),
                     "online_detection": [None if not np.isfinite(x) else float(x) for x in curves[i].mean(0)]})
    out = {"seeds": seeds, "split": split, "settings": cfg.spiking_eval_config(),
           "window_segments": (steps or task.default_steps) // curves.shape[-1],
           "snr_before": [float(x) for x in m["snr_before"][0]],
           "detection_before": [float(x) for x in m["detection_before"][0]], "rows": rows}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rules", nargs="*", default=list(DEFAULT_RULES), help="known rule names or formulas")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="training segments (default: the task's, 600)")
    ap.add_argument("--split", default="final")
    ap.add_argument("--config", default=os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        out = table(args.rules, args.seeds, args.steps, args.split, args.config)
    except (ValueError, KeyError, OSError) as exc:      # RuleError, ConfigError, TaskError are ValueErrors
        print(f"stdp_pattern_chance: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 2
    rows = out["rows"]
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return 0
    f = lambda p: "-" if p["delta"] is None else f"{p['delta']:+.2f} [{p['lo']:+.2f}, {p['hi']:+.2f}]"  # noqa: E731
    print(f"snr_before (no plasticity): {np.mean(out['snr_before']):.2f} ± {np.std(out['snr_before']):.2f}  "
          f"{np.round(out['snr_before'], 2).tolist()}")
    print("| rule | kind | snr (mean ± std) | per seed | output Hz | Δ vs no plasticity | Δ vs stdp_add |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['rule']}` | {r['kind']} | {r['snr_mean']:.2f} ± {r['snr_std']:.2f} | "
              f"{', '.join(f'{x:.2f}' for x in r['snr'])} | {r['rate_hz']:.1f} | {f(r['vs_before'])} | "
              f"{f(r['vs_stdp_add'])} |")
    print(f"\nspike-based detection (hit rate - false-alarm rate of the spiking neuron on the test stream); "
          f"no plasticity: {np.mean(out['detection_before']):.3f} {np.round(out['detection_before'], 3).tolist()}")
    print("| rule | detection (mean ± std) | per seed | hit rate | false-alarm rate | Δ detection vs stdp_add |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['rule']}` | {np.mean(r['detection']):.3f} ± {np.std(r['detection']):.3f} | "
              f"{', '.join(f'{x:.3f}' for x in r['detection'])} | {r['hit_rate']:.3f} | "
              f"{r['false_alarm_rate']:.3f} | {f(r['detection_vs_stdp_add'])} |")
    n_win = len(rows[0]["online_detection"])
    shown = sorted({0, 1, n_win // 4, n_win // 2, n_win - 1} & set(range(n_win)))
    print(f"\nonline detection while learning (hits - false alarms of the neuron's spikes per window of "
          f"{out['window_segments']} training segments; mean over seeds)")
    print("| rule | " + " | ".join(f"window {k + 1}" for k in shown) + " | first window >= 0.5 |")
    print("|---|" + "---|" * (len(shown) + 1))
    for r in rows:
        c = r["online_detection"]
        first = next((k + 1 for k, x in enumerate(c) if x is not None and x >= 0.5), None)
        print(f"| `{r['rule']}` | " + " | ".join("-" if c[k] is None else f"{c[k]:.3f}" for k in shown)
              + f" | {'never' if first is None else first} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
