"""``plasticity-search inspect RUN_DIR``: the hall of fame as a PySR-style table (or one JSON document), plus the
plots and ``report.html`` redrawn in the run directory. Works on a finished run and on a running one (the table of
a running run is provisional: from its newest checkpoint)."""
from __future__ import annotations

import math
import os

from .report import formula_legend
from .validate import read_generalization
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
    es = entries(hof_json)
    rows = []
    for i, e in enumerate(es[:top]):
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
           "n_entries": len(es), "entries": rows, "baselines": bls,
           "compared_on": cmp_split, "choice": info.get("choice")}
    doc["legend"] = formula_legend([r["formula"] for r in rows] + [bl["formula"] for bl in bls])
    gen = read_generalization(run_dir)
    if isinstance(gen, dict) and isinstance(gen.get("rows"), list):
        if 0 <= b < len(es) and es[b].get("formula"):
            # the report scores the chosen rule: its label is that rule's formula, derived from the hall of fame's
            # program like every formula shown, never the text written in the file
            gen = {**gen, "rule": es[b]["formula"]}
        doc["generalization"] = gen
    return doc


def format_table(doc: dict) -> str:
    """PySR-style text table: rank, complexity, fitness on search/select/final tasks, formula; '>' marks the
    chosen rule."""
    from ..rules.formula import rule_equation
    from ..search.hall_of_fame import MAX_DELTA_COLUMNS
    from ..search.stats import format_delta
    names = [bl["name"] for bl in doc.get("baselines", [])][:MAX_DELTA_COLUMNS]
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
    if doc.get("error"):
        first = str(doc["error"]).splitlines()[0] if str(doc["error"]).strip() else "(no message)"
        lines.append(f"stopped on an error: {first}  (continue with: plasticity-search run {doc['run_dir']} --resume)")
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
    if doc.get("legend"):
        from ..rules.variables import legend_lines
        lines.append("legend:")
        lines.extend(legend_lines([v["name"] for v in doc["legend"]]))
    if doc.get("generalization"):
        from ..search.generalize import format_report
        lines.append(format_report(doc["generalization"]))
    return "\n".join(lines)


def _verdicts(entry: dict, doc: dict) -> list[str]:
    """One line per baseline: is the chosen rule better, worse or tied (paired 95% interval) on held-out data."""
    from ..search.stats import format_delta, left_out, ref_all_diverged, verdict
    out = []
    for bl in doc.get("baselines", []):
        p = (entry.get("paired") or {}).get(bl["name"])
        if not p:
            continue
        v, split = verdict(p), doc.get("compared_on", "final")
        if ref_all_diverged(p):
            out.append(f"  vs {bl['name']}: no comparison: {bl['name']} DIVERGED on every {split} instance")
            continue
        word = {"better": "BEATS", "worse": "LOSES TO", "tie": "is not distinguishable from",
                "diverged": "DIVERGED; no comparison with"}[v]
        k = left_out(p)
        out.append(f"  vs {bl['name']}: chosen rule {word} {bl['name']} on {split} "
                   f"(Δ {format_delta(p)}, {p.get('n')} paired instances"
                   + (f"; {k} where {bl['name']} diverged left out" if k else "") + ")")
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


# --------------------------------------------------------------------------------------------------------------
# several runs side by side: ``inspect RUN_A RUN_B ...``
# --------------------------------------------------------------------------------------------------------------
def _config_of(run_dir: str) -> dict:
    """The run's ``config.yaml`` as a plain mapping (bounded reader; one line if it is missing or damaged, or was
    edited after the run started: the side-by-side would show another config than the one its results came from)."""
    from ..search.config import ConfigError, load_yaml, read_text_file
    from .rundir import CONFIG_FILE, RunDirError

    path = os.path.join(run_dir, CONFIG_FILE)
    try:
        doc = load_yaml(read_text_file(path, "run config"), f"run config '{path}'")
    except FileNotFoundError:
        raise RunDirError(f"run directory '{run_dir}' has no {CONFIG_FILE}") from None
    except (OSError, ConfigError, ValueError) as exc:
        raise RunDirError(f"'{path}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - a YAML syntax error
        raise RunDirError(f"'{path}' is not valid YAML ({getattr(exc, 'problem', None) or type(exc).__name__})") \
            from None
    if not isinstance(doc, dict):
        raise RunDirError(f"'{path}' must hold a mapping of keys")
    from .configs import check_unedited, find_key
    from .rundir import read_run_record

    check_unedited(run_dir, read_run_record(run_dir), find_key(doc, "generations") or "generations",
                   "its results belong to the config the run started with")
    return doc


def _leaves(d, prefix: str = "") -> dict:
    """{dotted key: value} of every leaf of a nested mapping (lists are values)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(configs: list[dict]) -> list[dict]:
    """[{key, values}] for every dotted config key whose value is not the same in all runs (``None`` in
    ``values`` where a run's config lacks the key; ``present`` says which runs have it)."""
    flat = [_leaves(c) for c in configs]
    keys = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    out = []
    for k in keys:
        vals = [f.get(k, _ABSENT) for f in flat]
        if any(v != vals[0] for v in vals[1:]):
            out.append({"key": k, "values": [None if v is _ABSENT else v for v in vals],
                        "present": [v is not _ABSENT for v in vals]})
    return out


_ABSENT = object()


def _metric_means(metrics: dict) -> dict:
    """{metric: {mean, std}} of one split's metrics (``fitness`` and the ``*_std`` companions folded in)."""
    out = {}
    for k, v in (metrics or {}).items():
        if k == "fitness" or k.endswith("_std"):
            continue
        out[k] = {"mean": _num(v), "std": _num(metrics.get(f"{k}_std"))}
    return out


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def compare_data(run_dirs: list[str]) -> dict:
    """The JSON document of ``inspect RUN_A RUN_B ... --json``: per run its status, the chosen rule with its
    fitness on each split, its metrics on the split the baselines were scored on (``final``), each baseline's
    score and the chosen rule's paired difference to it (95% interval, verdict), and the config keys that differ
    between the runs."""
    from ..search.stats import verdict

    runs = []
    for d in run_dirs:
        doc = inspect_data(d)
        cmp_split = doc.get("compared_on", "final")
        ch = next((e for e in doc["entries"] if e["chosen"]), None)
        chosen = None
        if ch is not None:
            chosen = {"rank": ch["rank"], "formula": ch["formula"], "complexity": ch["complexity"],
                      "fitness": ch["fitness"],
                      "metrics": _metric_means((ch.get("metrics") or {}).get(cmp_split)),
                      "paired": {n: {**p, "verdict": verdict(p)} for n, p in (ch.get("paired") or {}).items()
                                 if isinstance(p, dict)}}
        bls = [{"name": bl["name"], "formula": bl["formula"], "feedback": bl.get("feedback"),
                "fitness": bl["fitness"].get(cmp_split),
                "metrics": _metric_means(bl["metrics"].get(cmp_split))} for bl in doc["baselines"]]
        runs.append({k: doc.get(k) for k in ("run_dir", "name", "status", "provisional", "generations_done",
                                             "generations", "seed", "elapsed_s")}
                    | {"compared_on": cmp_split, "n_entries": doc["n_entries"], "chosen": chosen, "baselines": bls})
    diffs = config_differences([_config_of(d) for d in run_dirs])
    return {"runs": runs, "config_differences": diffs}


def _labels(run_dirs: list[str]) -> list[str]:
    """Short column names: the run directories' last path parts, as many as make them distinct."""
    parts = [os.path.normpath(os.path.abspath(d)).split(os.sep) for d in run_dirs]
    for n in range(1, max(len(p) for p in parts) + 1):
        labels = [os.sep.join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return list(run_dirs)


def _value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, dict)):
        import json
        return json.dumps(v, separators=(", ", ": "))
    return str(v)


def format_comparison(doc: dict) -> str:
    """The runs side by side: one column per run, one row per quantity; then the config keys that differ."""
    from ..rules.variables import rule_equation
    from ..search.stats import format_delta_verdict

    runs = doc["runs"]
    labels = _labels([r["run_dir"] for r in runs])
    rows: list[tuple[str, list[str]]] = [("run", [r["run_dir"] for r in runs])]
    rows.append(("status", [f"{r['status']}, generation {r.get('generations_done')}/{r.get('generations')}"
                            + (" (provisional)" if r.get("provisional") else "") for r in runs]))
    rows.append(("wall time", ["-" if r.get("elapsed_s") is None else f"{r['elapsed_s']:.1f} s" for r in runs]))
    rows.append(("chosen rule", [rule_equation(r["chosen"]["formula"]) if r["chosen"] else "(empty hall of fame)"
                                 for r in runs]))
    rows.append(("complexity", [str(r["chosen"]["complexity"]) if r["chosen"] else "-" for r in runs]))
    for s in SPLITS:
        rows.append((f"fit.{s}", [_f(r["chosen"]["fitness"].get(s)) if r["chosen"] else "-" for r in runs]))
    split = runs[0].get("compared_on", "final") if runs else "final"
    metric_names = []
    for r in runs:
        metric_names += [m for m in ((r["chosen"] or {}).get("metrics") or {}) if m not in metric_names]
    for m in metric_names:
        cells = []
        for r in runs:
            v = ((r["chosen"] or {}).get("metrics") or {}).get(m)
            cells.append("-" if not v or v["mean"] is None else
                         _f(v["mean"]) + ("" if v["std"] is None else f" ± {_f(v['std'])}"))
        rows.append((f"{m} ({split})", cells))
    names = []
    for r in runs:
        names += [b["name"] for b in r["baselines"] if b["name"] not in names]
    for n in names:
        cells, deltas = [], []
        for r in runs:
            bl = next((b for b in r["baselines"] if b["name"] == n), None)
            cells.append("-" if bl is None else _f(bl["fitness"])
                         + (f" ({bl['feedback']} feedback)" if bl.get("feedback") else ""))
            p = ((r["chosen"] or {}).get("paired") or {}).get(n)
            deltas.append(format_delta_verdict(p) if p else "-")
        rows.append((f"baseline {n} ({split})", cells))
        rows.append((f"Δ vs {n} (95% CI)", deltas))
    w0 = max(len(k) for k, _ in rows)
    widths = [max(len(labels[i]), *(len(c[i]) for _, c in rows)) for i in range(len(runs))]
    sep = "   "
    lines = [" " * w0 + sep + sep.join(lab.ljust(w) for lab, w in zip(labels, widths)).rstrip()]
    lines += [k.ljust(w0) + sep + sep.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for k, cells in rows]
    diffs = doc.get("config_differences") or []
    if not diffs:
        lines.append("config: the same in every run")
        return "\n".join(lines)
    lines.append(f"config differences ({len(diffs)} key{'s' if len(diffs) != 1 else ''}):")
    cells = [[("<absent>" if not ok else _value(v)) for v, ok in zip(d["values"], d["present"])] for d in diffs]
    k0 = max(len(d["key"]) for d in diffs) + 2
    cw = [max(len(labels[i]), *(len(c[i]) for c in cells)) for i in range(len(runs))]
    lines.append(" " * k0 + sep + sep.join(lab.ljust(w) for lab, w in zip(labels, cw)).rstrip())
    for d, c in zip(diffs, cells):
        lines.append(("  " + d["key"]).ljust(k0) + sep + sep.join(x.ljust(w) for x, w in zip(c, cw)).rstrip())
    return "\n".join(lines)


def cmd_inspect_many(args) -> int:
    """``inspect RUN_A RUN_B ...``: the runs side by side (nothing is written in the run directories)."""
    import json

    from ..errors import UsageError

    if args.top is not None:
        raise UsageError("inspect: --top applies to one run; with several runs each shows its chosen rule")
    seen = set()
    for d in args.run_dir:
        key = os.path.realpath(d)
        if key in seen:
            raise UsageError(f"inspect: run directory '{d}' is given twice")
        seen.add(key)
    doc = compare_data(list(args.run_dir))
    if args.json:
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        print(format_comparison(doc))
    return 0


# flat per-split metrics are part of the JSON document already; exported for callers that want them
__all__ = ["cmd_inspect", "cmd_inspect_many", "compare_data", "config_differences", "flat_metrics",
           "format_comparison", "format_table", "inspect_data"]
