#!/usr/bin/env python
"""STDP window of a rule: the classic pairing protocol through our own simulator, next to the analytic window.

    python scripts/stdp_window.py stdp_add [--json] [--plot window.png] [--dt 0.1] [--step 1] [--w0 0.5]

One pre and one post spike at offsets delta = t_post - t_pre from -100 to +100 ms (step ``--step``) are imposed on
one synapse; the rule runs every ``--dt`` ms in the order of docs/SPIKING_CONVENTIONS.md
(:func:`plasticity_search.spiking.pairing.pairing_dw`). For rules with a known analytic window (stdp_add,
stdp_mult, stdp_triplet, vogels; r_stdp's eligibility window) it prints the largest relative error
``max |sim - analytic| / |analytic|`` over the offsets where the analytic value is not 0 (``max_rel_error``), and the
largest absolute simulated change where it is 0. RULE may be a known rule name or a formula in quotes.
Exit code 2 with one line on stderr on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rule", help="known rule name (stdp_add, stdp_mult, ...) or a formula in quotes")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--plot", metavar="FILE", help="write a PNG with the simulated and analytic windows")
    ap.add_argument("--dt", type=float, default=0.1, help="simulation step in ms (default 0.1)")
    ap.add_argument("--step", type=float, default=1.0, help="offset spacing in ms (default 1)")
    ap.add_argument("--max-offset", type=float, default=100.0, help="largest |offset| in ms (default 100)")
    ap.add_argument("--w0", type=float, default=0.5, help="initial weight (default 0.5)")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except (ValueError, KeyError) as exc:  # RuleError is a ValueError
        print(f"stdp_window: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 2


def run(args) -> int:
    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.spiking.pairing import ANALYTIC_RULES, analytic_window, pairing_run

    if not (args.step > 0 and args.max_offset >= 0 and args.dt > 0):
        raise ValueError("--dt and --step must be > 0 and --max-offset >= 0")
    rule = resolve_rule(args.rule)
    if rule.model != "spiking":
        raise ValueError(f"rule '{rule.name}' is a rate rule; the pairing protocol needs a spiking rule")
    n = int(round(args.max_offset / args.step))
    offsets = np.arange(-n, n + 1) * args.step
    out = pairing_run(rule, offsets, dt=args.dt, w0=args.w0)
    quantity = "delig" if rule.name == "r_stdp" else "dw"
    sim = out[quantity]
    ana = analytic_window(rule.name, offsets, w0=args.w0) if rule.name in ANALYTIC_RULES else None
    res = {"rule": rule.name, "formula": rule.formula, "quantity": quantity, "dt_ms": args.dt, "w0": args.w0,
           "offsets_ms": offsets.tolist(), "sim": sim.tolist(),
           "analytic": None if ana is None else ana.tolist(), "max_rel_error": None, "max_abs_error_at_zero": None}
    if ana is not None:
        nz = ana != 0
        res["max_rel_error"] = float(np.max(np.abs(sim[nz] - ana[nz]) / np.abs(ana[nz]))) if nz.any() else 0.0
        res["max_abs_error_at_zero"] = float(np.max(np.abs(sim[~nz]))) if (~nz).any() else 0.0
    if args.plot:
        _plot(args.plot, offsets, sim, ana, rule, quantity)
        res["plot"] = args.plot
    if args.json:
        print(json.dumps(res))
        return 0
    label = "delta elig" if quantity == "delig" else "delta w"
    print(f"# {rule.name}: {rule.formula}   (dt = {args.dt} ms, w0 = {args.w0}; {label} per pairing)")
    print(f"{'offset_ms':>10} {'simulated':>14} {'analytic':>14}")
    for i in range(len(offsets)):
        a = "" if ana is None else f"{ana[i]:14.6g}"
        print(f"{offsets[i]:10.1f} {sim[i]:14.6g} {a}")
    if ana is not None:
        print(f"max_rel_error = {res['max_rel_error']:.3g}")
    return 0


def _plot(path, offsets, sim, ana, rule, quantity):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    if ana is not None:
        ax.plot(offsets, ana, "-", color="0.6", lw=3, label="analytic")
    ax.plot(offsets, sim, "o", ms=2.5, color="C3", label="simulated (pairing protocol)")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel(r"$\Delta t = t_\mathrm{post} - t_\mathrm{pre}$ (ms)")
    ax.set_ylabel(r"$\Delta c$" if quantity == "delig" else r"$\Delta w$")
    ax.set_title(f"{rule.name}: {rule.formula}", fontsize=8)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
