"""``report.html`` and the plots of a run.

The report is one self-contained page: no script, stylesheet, font or image is fetched from anywhere (it opens
offline). Plots are embedded as base64 PNGs; each LaTeX formula is embedded as a PNG rendered by matplotlib's
mathtext (its source is the image's ``alt``/``title`` text, and stays in the page as ``$$...$$``).
"""
from __future__ import annotations

import base64
import html
import math
import os

from . import plots as P
from ..search.stats import format_delta, left_out, ref_all_diverged, verdict
from .results import SPLITS, baselines, best_index, entries, paired, split_score
from .rundir import (
    CONFIG_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    atomic_write_text,
    read_metrics,
    read_run_record,
    run_status,
)

CURVES_FILE = "curves.json"       # plots/curves.json: the learning-curve data (computed once, at the end of a run)
STDP_FILE = "stdp_window.json"
WEIGHTS_FILE = "weights.json"     # plots/weights.json: weight histograms before/after learning (with the curves)


def formula_legend(formulas) -> list[dict]:
    """The legend of the variables the formula texts read: ``[{"name", "latex", "side", "description"}]``
    (one source: :data:`plasticity_search.rules.variables.VARIABLES`)."""
    from ..rules.variables import legend, variables_in
    return legend(variables_in(*[f for f in formulas if isinstance(f, str)]))


def write_outputs(run_dir: str, hof_json: dict | None = None, *, curves: bool = False,
                  log=None, status: str | None = None) -> dict[str, str]:
    """(Re)draw every plot and ``report.html``; returns {plot name: path} of the plots written.

    ``curves=True`` computes the learning curves of the top rules and the run's baselines on the final tasks
    and the weight histograms of the chosen rule and the first baseline before and after learning (costs a few
    evaluations; the data is cached in ``plots/curves.json`` and ``plots/weights.json`` and redrawn from there
    afterwards).
    A plot that cannot be drawn is skipped with one line on ``log``; it never fails the run.
    """
    log = log or (lambda s: None)
    if hof_json is None:
        from .results import load_hall_of_fame

        hof_json, _ = load_hall_of_fame(run_dir)
    pdir = os.path.join(run_dir, PLOTS_DIR)
    os.makedirs(pdir, exist_ok=True)
    paths = P.plot_paths(run_dir)
    out = {}
    metrics = read_metrics(run_dir)
    name = (read_run_record(run_dir) or {}).get("name", "")

    def attempt(key, fn):
        try:
            fn()
            out[key] = paths[key]
        except Exception as exc:  # noqa: BLE001 - a plot must never take the results down with it
            log(f"warning: plot '{key}' skipped: {_why(exc)}")

    attempt("fitness", lambda: P.plot_fitness(metrics, paths["fitness"], f"{name}: fitness over generations"))
    attempt("pareto", lambda: P.plot_pareto(hof_json, paths["pareto"], f"{name}: hall of fame"))

    def learning_curves():
        from .curves import compute_curves
        return compute_curves(run_dir, hof_json)

    def windows():
        from .curves import stdp_windows
        return stdp_windows(run_dir, hof_json)

    # learning curves are recomputed when asked for (the run may have grown); STDP windows only when missing
    cdata = _derived(os.path.join(pdir, CURVES_FILE), learning_curves, lambda old: curves, "learning curves", log)
    if cdata:
        attempt("learning_curves", lambda: P.plot_learning_curves(cdata, paths["learning_curves"],
                                                                  "top rules vs the run's baselines (final tasks)"))
    sdata = _derived(os.path.join(pdir, STDP_FILE), windows, lambda old: old is None, "STDP window", log)
    if sdata:
        attempt("stdp_window", lambda: P.plot_stdp(sdata, paths["stdp_window"]))

    def weights():
        from .curves import weight_histograms
        return weight_histograms(run_dir, hof_json)

    wdata = _derived(os.path.join(pdir, WEIGHTS_FILE), weights, lambda old: curves, "weight histograms", log)
    if wdata:
        attempt("weights", lambda: P.plot_weights(wdata, paths["weights"]))
    write_report(run_dir, hof_json, out, status=status)
    return out


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _read_json(p: str):
    """A derived JSON file of the run directory, or None if it is missing or damaged (bounded reader)."""
    from ..rules.documents import read_json_file
    if not os.path.isfile(p):
        return None
    try:
        return read_json_file(p, os.path.basename(p), error=ValueError)
    except (OSError, ValueError):
        return None


def _img(path: str, alt: str, cls: str = "plot") -> str:
    with open(path, "rb") as f:
        b64 = base64.b64encode(f.read()).decode("ascii")
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _fmt(x, nd=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float) and x <= -1e9:
        return "worst"
    if isinstance(x, float):
        return f"{x:.{nd}g}"
    return html.escape(str(x))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{padding:.3em .6em;border-bottom:1px solid #eee;text-align:right;
vertical-align:middle}th{background:#f6f6f6}td.f{text-align:left;font-family:ui-monospace,Menlo,monospace}
tr.chosen{background:#fff7d6}img.plot{max-width:100%;border:1px solid #eee;margin:.5em 0}
img.tex{vertical-align:middle}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}
.muted{color:#777;font-size:.85em}
"""


def _metrics_table(entry: dict) -> str:
    """Chosen rule: every metric (rows) on every task split (columns), as mean ± std."""
    m = entry.get("metrics") or {}
    splits = [sp for sp in SPLITS if isinstance(m.get(sp), dict)]
    names = []
    for sp in splits:
        for k in m[sp]:
            if not k.endswith("_std") and k not in names:
                names.append(k)
    if not names:
        return ""
    rows = []
    for k in names:
        cells = []
        for sp in splits:
            v, sd = m[sp].get(k), m[sp].get(f"{k}_std")
            if isinstance(v, dict):
                v, sd = v.get("mean"), v.get("std")
            cells.append(f"<td>{_fmt(v)}" + (f" ± {_fmt(sd)}" if isinstance(sd, (int, float)) else "") + "</td>")
        rows.append(f"<tr><th>{html.escape(k)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{sp} tasks</th>" for sp in splits)
    return (f"<h2>Chosen rule: metrics (mean ± std over tasks and seeds)</h2>"
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>")


def _legend_table(rows: list[dict]) -> str:
    """The variables the formulas of the page read: name, symbol (as in the LaTeX column), side, meaning."""
    if not rows:
        return ""
    out = []
    for r in rows:
        png = P.latex_png(r["latex"])
        sym = (f'<img class="tex" alt="{html.escape(r["latex"])}" '
               f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">' if png is not None
               else f"<code>{html.escape(r['latex'])}</code>")
        out.append(f"<tr><td class='f'>{html.escape(r['name'])}</td><td class='f'>{sym}</td>"
                   f"<td class='f'>{html.escape(r['side'])}</td>"
                   f"<td class='f'>{html.escape(r['description'])}</td></tr>")
    return ("<h2>Variables</h2><p class='muted'>The local quantities the formulas above read (post: the "
            "postsynaptic neuron, pre: the presynaptic neuron, syn: the synapse, global: shared by all).</p>"
            "<table><tr><th>name</th><th>symbol</th><th>side</th><th>meaning</th></tr>" + "".join(out) + "</table>")


def _weights_caption(data) -> str:
    if not isinstance(data, dict):
        return "Weight histograms before and after learning."
    labels = data.get("labels") or []
    ref = labels[2].removeprefix("after: ") if len(labels) > 2 and isinstance(labels[2], str) else "the baseline"
    return (f"Weights of every layer before learning (shared: the same seed gives both rules the same initial "
            f"weights) and after {data.get('updates', '?')} {data.get('unit', 'online updates')} with the chosen "
            f"rule and with {ref}, on {data.get('task', '?')} ({data.get('split', '?')} split, seed "
            f"{data.get('seed', '?')}). The outer bins also count the weights beyond them.")


def _derived(path: str, compute, recompute, what: str, log):
    """The JSON data cached at ``path``; computed afresh (and written there if non-empty) when
    ``recompute(cached)`` says so. A failing computation is logged and the cached data, if any, is kept."""
    data = _read_json(path)
    if recompute(data):
        try:
            new = compute()
            if new:
                from .rundir import atomic_write_json, json_safe
                atomic_write_json(path, json_safe(new), fsync=False)
            data = new
        except Exception as exc:  # noqa: BLE001
            log(f"warning: {what} skipped: {_why(exc)}")
    return data


def write_report(run_dir: str, hof_json: dict, images: dict[str, str], status: str | None = None) -> str:
    rec = read_run_record(run_dir) or {}
    metrics = read_metrics(run_dir)
    try:
        with open(os.path.join(run_dir, CONFIG_FILE), encoding="utf-8", errors="replace") as f:   # shown only
            cfg_text = f.read(1 << 20)
    except OSError:
        cfg_text = ""
    es = entries(hof_json)
    b = best_index(hof_json)
    title = f"plasticity-search run: {rec.get('name', os.path.basename(os.path.abspath(run_dir)))}"
    status = status or (run_status(run_dir, rec) if rec else "unknown")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    ch = es[b] if 0 <= b < len(es) else (es[0] if es else {})
    error = rec.get("error") if status == "failed" else None
    summary = [("status", status if not error else f"{status}: {error}"),
               ("generations", f"{len(metrics)} / {rec.get('generations', '?')}"),
               ("stopped by", rec.get("stopped_by")), ("seed", rec.get("seed")),
               ("chosen rule", ch.get("formula")), ("chosen rule: select fitness", split_score(ch, "select")),
               ("chosen rule: final fitness", split_score(ch, "final")),
               ("wall time (s)", rec.get("elapsed_s")), ("created", rec.get("created")),
               ("wandb", (rec.get("wandb") or {}).get("mode"))]
    parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td class='f'>{_fmt(v)}</td></tr>"
                                     for k, v in summary) + "</table>")

    parts.append("<h2>Hall of fame</h2><p class='muted'>Pareto set of fitness vs complexity; ★ marks the chosen "
                 "rule. Fitness on the search tasks (searched on), select tasks (used to choose) and final tasks "
                 "(held out).</p>")
    bls = baselines(hof_json)
    names = [bl["name"] for bl in bls]
    cmp_split = (hof_json.get("info") or {}).get("compared_on", "final")
    head = "".join(f"<th>{h}</th>" for h in ("", "rank", "complexity", *[f"fitness {s}" for s in SPLITS],
                                             *[f"Δ vs {html.escape(n)} (95% CI)" for n in names],
                                             "rule (LaTeX)", "formula"))
    rows = []
    for i, e in enumerate(es):
        latex = e.get("latex") or ""
        png = P.latex_png(latex) if latex else None
        if png is not None:
            tex = (f'<img class="tex" alt="{html.escape(latex)}" title="{html.escape(latex)}" '
                   f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
        else:
            tex = f"<code>$${html.escape(latex)}$$</code>"
        chosen = i == b
        rows.append(f"<tr class='{'chosen' if chosen else ''}'><td>{'★' if chosen else ''}</td>"
                    f"<td>{_fmt(e.get('rank', i))}</td><td>{_fmt(e.get('complexity'))}</td>"
                    + "".join(f"<td>{_fmt(split_score(e, s))}</td>" for s in SPLITS)
                    + "".join(f"<td>{html.escape(format_delta(paired(e, n)))}</td>" for n in names)
                    + f"<td class='f'>{tex}</td><td class='f'>{html.escape(str(e.get('formula', '')))}</td></tr>")
    for bl in bls:
        fb = f", {bl['feedback']} feedback" if bl.get("feedback") else ""
        rows.append("<tr class='baseline'><td></td><td>baseline</td><td></td>"
                    + "".join(f"<td>{_fmt(bl.get('fitness') if s == cmp_split else None)}</td>" for s in SPLITS)
                    + "".join("<td></td>" for _ in names)
                    + f"<td class='f'>{html.escape(bl['name'] + fb)}</td>"
                    f"<td class='f'>{html.escape(str(bl.get('formula', '')))}</td></tr>")
    parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    info = hof_json.get("info") or {}
    notes = [f"Chosen: {info['choice']}."] if info.get("choice") else []
    for n in names:
        p = paired(ch, n) if ch else None
        if p and ref_all_diverged(p):
            notes.append(f"Chosen rule vs {n}: no comparison on {cmp_split} ({n} diverged on every instance).")
        elif p:
            k = left_out(p)
            notes.append(f"Chosen rule vs {n}: {verdict(p)} on {cmp_split} (Δ {format_delta(p)}, "
                         f"{p.get('n')} paired instances: same tasks, seeds and initial weights"
                         + (f"; {k} where {n} diverged left out" if k else "") + ").")
    if notes:
        parts.append("<p>" + "<br>".join(html.escape(x) for x in notes) + "</p>")
    if es:
        chosen = es[b] if 0 <= b < len(es) else es[0]
        parts.append(_metrics_table(chosen))
        parts.append(f"<p class='muted'>LaTeX: <code>$${html.escape(chosen.get('latex', ''))}$$</code></p>")
    parts.append(_legend_table(formula_legend([e.get("formula") for e in es] + [bl.get("formula") for bl in bls])))

    from .validate import read_generalization

    gen = read_generalization(run_dir)
    if isinstance(gen, dict) and isinstance(gen.get("rows"), list) and gen["rows"]:
        parts.append("<h2>Generalization</h2><p class='muted'>The chosen rule, FA and BP on held-out conditions "
                     f"({html.escape(str(gen.get('split', 'final')))} split); Δ: paired difference over the same "
                     "seeds and initial weights, 95% interval.</p>")
        ghead = "".join(f"<th>{h}</th>" for h in ("condition", "network", "metric", "seeds", "rule", "FA", "BP",
                                                  "Δ vs FA", "Δ vs BP"))
        grows = []
        for r in gen["rows"]:
            if not isinstance(r, dict):
                continue
            grows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
                r.get("condition", ""), r.get("layers", ""), r.get("metric", ""), r.get("seeds", ""),
                _fmt(r.get("rule")), _fmt(r.get("fa")), _fmt(r.get("bp")),
                format_delta(r.get("vs_fa") if isinstance(r.get("vs_fa"), dict) else None),
                format_delta(r.get("vs_bp") if isinstance(r.get("vs_bp"), dict) else None))) + "</tr>")
        parts.append(f"<table><tr>{ghead}</tr>{''.join(grows)}</table>")

    parts.append("<h2>Plots</h2>")
    captions = {"fitness": "Best and median fitness per generation.", "pareto": "Hall of fame: fitness vs complexity.",
                "learning_curves": ("Learning curves of the top rules next to the run's baselines (FA and BP for "
                                    "supervised rate runs) on the final tasks, mean and SD over the seeds."),
                "stdp_window": ("STDP windows of the top spiking rules next to stdp_add under the run's settings "
                                "(pairing protocol; the weight starts mid-range and dw is the rule's change before "
                                "clipping; red crosses: offsets where the weight bounds clip it)."),
                "weights": _weights_caption(_read_json(os.path.join(run_dir, PLOTS_DIR, WEIGHTS_FILE)))}
    for k, p in images.items():
        if os.path.isfile(p):
            parts.append(f"<figure>{_img(p, k)}<figcaption class='muted'>{captions.get(k, k)}</figcaption></figure>")
    parts.append(f"<h2>Config</h2><pre>{html.escape(cfg_text)}</pre>")
    parts.append("<p class='muted'>Written by plasticity-search; self-contained (no network needed).</p>")
    parts.append("</body></html>\n")
    path = os.path.join(run_dir, REPORT_FILE)
    atomic_write_text(path, "\n".join(parts), fsync=False)
    return path
