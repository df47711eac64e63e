"""``plasticity-search inspect RUN_DIR``: the hall of fame as a PySR-style table (or one JSON document), plus the
plots and ``report.html`` redrawn in the run directory. Works on a finished run and on a running one (the table of
a running run is provisional: from its newest checkpoint)."""
from __future__ import annotations

import math

from .results import (
    SPLITS,
    best_index,
    entries,
    flat_metrics,
    load_hall_of_fame,
    run_summary,
    split_score,
)


def inspect_data(run_dir: str, top: int | None = None, *, engine=None, loaded: tuple | None = None) -> dict:
    """The JSON document of ``inspect --json`` (``loaded``: a ``load_hall_of_fame`` result to reuse)."""
    hof_json, status = loaded or load_hall_of_fame(run_dir, engine=engine)
    summary = run_summary(run_dir)
    b = best_index(hof_json)
    rows = []
    for i, e in enumerate(entries(hof_json)[:top]):
        rows.append({"rank": e.get("rank", i), "chosen": i == b, "complexity": e.get("complexity"),
                     "fitness": {s: split_score(e, s) for s in SPLITS}, "formula": e.get("formula", ""),
                     "latex": e.get("latex", ""), "metrics": e.get("metrics", {})})
    return {**summary, "status": status, "provisional": status != "finished", "best": b,
            "n_entries": len(entries(hof_json)), "entries": rows}


def format_table(doc: dict) -> str:
    """PySR-style text table: rank, complexity, fitness on search/select/final tasks, formula; '>' marks the
    chosen rule."""
    from ..rules.formula import rule_equation
    head = ["", "rank", "complexity", *[f"fit.{s}" for s in SPLITS], "formula"]
    rows = []
    for e in doc["entries"]:
        rows.append([">" if e["chosen"] else "", str(e["rank"]), str(e["complexity"]),
                     *[_f(e["fitness"][s]) for s in SPLITS], e["formula"]])
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
    return "\n".join(lines)


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
        from ..cli import UsageError
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
