"""``plasticity-search inspect RUN_DIR``: the hall of fame as a PySR-style table (or one JSON document), plus the
plots and ``report.html`` redrawn in the run directory. Works on a finished run and on a running one (the table of
a running run is provisional: from its newest checkpoint)."""
from __future__ import annotations

import math
import os

from .report import _read_json
from .rundir import GEN_JSON
from .results import (
    SPLITS,
    baselines,
    best_index,
    entries,
    flat_metrics,
    load_hall_of_fame,
    run_summary,
    split_score,
)


def inspect_data(run_dir: str, top: int | None = None, *, loaded: tuple | None = None) -> dict:
    """The JSON document of ``inspect --json`` (``loaded``: a ``load_hall_of_fame`` result to reuse)."""
    hof_json, status = loaded or load_hall_of_fame(run_dir)
    summary = run_summary(run_dir)
    b = best_index(hof_json)
    rows = []
    for i, e in enumerate(entries(hof_json)[:top]):
        rows.append({"rank": e.get("rank", i), "chosen": i == b, "complexity": e.get("complexity"),
                     "fitness": {s: split_score(e, s) for s in SPLITS}, "formula": e.get("formula", ""),
                     "latex": e.get("latex", ""), "metrics": e.get("metrics", {}),
                     "paired": e.get("paired") or {}})
    info = hof_json.get("info") or {}
    cmp_split = info.get("compared_on", "final")
    bls = [{"name": bl["name"], "formula": bl.get("formula", ""), "feedback": bl.get("feedback"),
            "fitness": {s: (bl.get("fitness") if s == cmp_split else None) for s in SPLITS},
            "metrics": {cmp_split: bl.get("metrics") or {}}} for bl in baselines(hof_json)]
    doc = {**summary, "status": status, "provisional": status != "finished", "best": b,
           "n_entries": len(entries(hof_json)), "entries": rows, "baselines": bls,
           "compared_on": cmp_split, "choice": info.get("choice")}
    gen = _read_json(os.path.join(run_dir, GEN_JSON))
    if isinstance(gen, dict) and isinstance(gen.get("rows"), list):
        doc["generalization"] = gen
    return doc


def format_table(doc: dict) -> str:
    """PySR-style text table: rank, complexity, fitness on search/select/final tasks, formula; '>' marks the
    chosen rule."""
    from ..rules.formula import rule_equation
    from ..search.stats import format_delta
    names = [bl["name"] for bl in doc.get("baselines", [])][:2]
    head = ["", "rank", "complexity", *[f"fit.{s}" for s in SPLITS], *[f"Δ vs {n} (95% CI)" for n in names],
            "formula"]
    rows = []
    for e in doc["entries"]:
        rows.append([">" if e["chosen"] else "", str(e["rank"]), str(e["complexity"]),
                     *[_f(e["fitness"][s]) for s in SPLITS],
                     *[format_delta((e.get("paired") or {}).get(n)) for n in names], e["formula"]])
    for bl in doc.get("baselines", []):
        fb = f", {bl['feedback']} feedback" if bl.get("feedback") else ""
        rows.append(["", "base", "-", *[_f(bl["fitness"][s]) for s in SPLITS], *["" for _ in names],
                     f"{bl['formula']}   (baseline {bl['name']}{fb})"])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = []
    gen = f"{doc.get('generations_done')}/{doc.get('generations')}"
    tag = " (provisional: from the newest checkpoint)" if doc.get("provisional") else ""
    lines.append(f"run {doc['run_dir']}  [{doc['status']}, generation {gen}]{tag}")
    sep = "  "
    lines.append(sep.join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))
                 + sep + head[-1])
    lines.append("-" * (sum(widths) + len(sep) * len(widths) + max(7, max((len(r[-1]) for r in rows), default=7))))
    for r in rows:
        lines.append(sep.join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     + sep + r[-1])
    if not rows:
        lines.append("(empty hall of fame)")
    else:
        ch = next((e for e in doc["entries"] if e["chosen"]), None)
        if ch is not None:
            lines.append(f"> chosen: rank {ch['rank']}   {rule_equation(ch['formula'])}")
            if doc.get("choice"):
                lines.append(f"  choice: {doc['choice']}")
            lines.extend(_verdicts(ch, doc))
    if doc.get("generalization"):
        from ..search.generalize import format_report
        lines.append(format_report(doc["generalization"]))
    return "\n".join(lines)


def _verdicts(entry: dict, doc: dict) -> list[str]:
    """One line per baseline: is the chosen rule better, worse or tied (paired 95% interval) on held-out data."""
    from ..search.stats import format_delta, verdict
    out = []
    for bl in doc.get("baselines", []):
        p = (entry.get("paired") or {}).get(bl["name"])
        if not p:
            continue
        v = verdict(p)
        word = {"better": "BEATS", "worse": "LOSES TO", "tie": "is not distinguishable from",
                "diverged": "DIVERGED; no comparison with"}[v]
        out.append(f"  vs {bl['name']}: chosen rule {word} {bl['name']} on {doc.get('compared_on', 'final')} "
                   f"(Δ {format_delta(p)}, {p.get('n')} paired instances)")
    return out


def _f(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x <= -1e9:           # the engine's worst fitness (NaN / exploded)
        return "worst"
    return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.4g}"


def cmd_inspect(args) -> int:
    import json
    import sys

    from .report import write_outputs
    from .results import load_hall_of_fame

    if args.top is not None and args.top < 1:
        from ..errors import UsageError
        raise UsageError(f"--top must be >= 1, got {args.top}")
    loaded = load_hall_of_fame(args.run_dir)
    doc = inspect_data(args.run_dir, args.top, loaded=loaded)
    if not args.no_plots:
        hof_json = loaded[0]
        try:
            write_outputs(args.run_dir, hof_json, log=lambda s: print(s, file=sys.stderr))
        except OSError as exc:   # a read-only run directory still prints its table
            print(f"plasticity-search: warning: plots/report not written: {exc.strerror}", file=sys.stderr)
    if args.json:
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        print(format_table(doc))
    return 0


# flat per-split metrics are part of the JSON document already; exported for callers that want them
__all__ = ["cmd_inspect", "flat_metrics", "format_table", "inspect_data"]
