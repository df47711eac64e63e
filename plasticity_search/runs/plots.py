"""Plots of a run (PNG, matplotlib, headless: ``Figure`` + Agg canvas, never pyplot or a display).

* ``fitness.png``         best and median fitness over generations (``metrics.jsonl``)
* ``pareto.png``          the hall of fame: fitness vs complexity on search/select/final tasks, chosen rule marked
* ``learning_curves.png`` learning curves of the top rules next to the run's baselines on the final tasks (rate
                          runs: online scores; spiking runs: what the network did while learning, per window)
* ``stdp_window.png``     spiking rules: weight change vs spike-time difference (pairing protocol)
* ``weights.png``         each layer's weight histogram before and after learning, chosen rule and the run's
                          first baseline (FA; Oja for PCA; spiking runs: e.g. stdp_add)

Every function takes plain data (lists, dicts) and a path, so plots can be redrawn from a run directory alone.
"""
from __future__ import annotations

import math
import os

from .rundir import atomic_write_bytes

SPLIT_STYLE = {"search": ("o", "C0"), "select": ("s", "C1"), "final": ("^", "C2")}


def warm_up() -> bool:
    """Import matplotlib's figure and Agg canvas and load its font list (about a second, several on a first run
    that builds the font cache): a run does it in its background thread while it searches."""
    from matplotlib import font_manager
    from matplotlib.backends import backend_agg  # noqa: F401
    from matplotlib import figure  # noqa: F401

    font_manager.findfont(font_manager.FontProperties())
    return True


def _fig(w=6.4, h=4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _save(fig, path: str) -> str:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue(), fsync=False)
    return path


WORST_JSON = -1e9      # the engine's "worst fitness" in JSON (a NaN/exploded rule): not drawn


def _finite(xs):
    return [x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > WORST_JSON
            else math.nan for x in xs]


def plot_fitness(metrics: list[dict], path: str, title: str = "") -> str:
    fig = _fig()
    ax = fig.add_subplot()
    gens = [m.get("generation", i) for i, m in enumerate(metrics)]
    drawn = False
    for key, label, style in (("best_fitness", "best", "-"), ("median_fitness", "median", "--")):
        ys = _finite([m.get(key) for m in metrics])
        if any(not math.isnan(y) for y in ys):
            ax.plot(gens, ys, style, marker="." if len(gens) < 40 else None, label=label)
            drawn = True
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (higher is better)")
    ax.set_title(title or "fitness over generations")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(loc="best")
    else:   # no generation yet, or no finite fitness in the log (every rule exploded, or a hand-edited log)
        ax.text(0.5, 0.5, "no generation yet" if not metrics else "no finite fitness in metrics.jsonl",
                ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_pareto(hof_json: dict, path: str, title: str = "") -> str:
    from .results import best_index, entries, split_score

    es = entries(hof_json)
    fig = _fig()
    ax = fig.add_subplot()
    for split, (marker, color) in SPLIT_STYLE.items():
        pts = [(e.get("complexity"), split_score(e, split)) for e in es]
        pts = [(c, f) for c, f in pts if c is not None and f is not None and math.isfinite(f) and f > WORST_JSON]
        if pts:
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, ls="-" if
                    split == "search" else ":", label=f"{split} tasks")
    b = best_index(hof_json)
    on = (hof_json.get("info") or {}).get("chosen_on") or "search"
    if 0 <= b < len(es) and es[b].get("complexity") is not None and split_score(es[b], on) is not None:
        ax.plot([es[b]["complexity"]], [split_score(es[b], on)], marker="*", ms=16, color="C3", ls="none",
                label=f"chosen (on {on} tasks)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("complexity")
    ax.set_ylabel("fitness (higher is better)")
    ax.set_title(title or "hall of fame (Pareto front)")
    ax.grid(alpha=0.3)
    if es:
        ax.legend(loc="best")
    return _save(fig, path)


def plot_learning_curves(curves: dict, path: str, title: str = "") -> str:
    """``curves``: {task: {"metric": name, "x": [...] | None, "series": {label: {"mean": [...], "std": [...]}}}}."""
    tasks = list(curves)
    n = max(1, len(tasks))
    fig = _fig(5.0 * n, 3.8)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        spec = curves[task]
        for k, (label, s) in enumerate(spec.get("series", {}).items()):
            mean = _finite(s.get("mean") or [])
            std = _finite(s.get("std") or [0.0] * len(mean))
            xs = spec.get("x") or list(range(1, len(mean) + 1))
            base = label.startswith("baseline")
            ls = "--" if base else "-"
            ax.plot(xs, mean, ls, color="0.3" if "BP" in label else ("0.6" if base else f"C{k}"), label=label)
            lo = [m - d for m, d in zip(mean, std)]
            hi = [m + d for m, d in zip(mean, std)]
            ax.fill_between(xs, lo, hi, alpha=0.12, color="0.5" if base else f"C{k}")
        ax.set_title(task)
        ax.set_xlabel(spec.get("xlabel", "training window"))
        ax.set_ylabel(spec.get("metric", "metric"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_stdp(windows: dict, path: str, title: str = "") -> str:
    """``windows``: {label: {"offsets_ms": [...], "dw": [...], optional "clipped": [bool], "w0", "w_bounds"}}
    (:func:`plasticity_search.runs.curves.pairing_window`), one panel each, side by side (a discovered rule next
    to the stdp_add reference, each on its own scale). ``dw`` is the rule's change before clipping; offsets where
    the weight bounds would clip it are marked with red crosses."""
    import numpy as np
    n = max(1, len(windows))
    fig = _fig(min(3.6 * n, 18.0), 3.4)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (label, w) in zip(axes, windows.items()):
        x, dw = np.asarray(w["offsets_ms"], float), np.asarray(_finite(w["dw"]), float)
        ax.plot(x, dw, marker=".", label="dw before clipping" if "clipped" in w else "dw")
        clipped = np.asarray(w.get("clipped") or [False] * len(x), bool)
        if clipped.any():
            b = w.get("w_bounds")
            ax.plot(x[clipped], dw[clipped], "x", color="red", ms=6,
                    label=f"clipped by w_bounds {b} at w0={w.get('w0', 0.5):g}")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_xlabel(r"$t_{post} - t_{pre}$ (ms)")
        ax.set_title(label, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    axes[0].set_ylabel(r"$\Delta w$")
    fig.suptitle(title or "STDP window (pairing protocol, weight mid-range)")
    return _save(fig, path)


def plot_weights(data: dict, path: str, title: str = "") -> str:
    """``data``: :func:`plasticity_search.runs.curves.weight_histograms` (one panel per layer: the weights before
    learning, filled, and after learning with each rule, as step outlines on the same bins)."""
    layers = data.get("layers") or []
    n = max(1, len(layers))
    fig = _fig(min(max(3.4 * n, 5.0), 17.0), 3.4)          # one layer: room for the title
    axes = fig.subplots(1, n, squeeze=False)[0]
    labels = data.get("labels") or []
    for ax, layer in zip(axes, layers):
        edges = layer["edges"]
        for k, lab in enumerate(labels):
            counts = layer["counts"].get(lab)
            if counts is None:
                continue
            if k == 0:
                ax.stairs(counts, edges, fill=True, color="0.8", label=lab)
            else:
                ax.stairs(counts, edges, color=f"C{k - 1}", lw=1.4, label=lab)
        ax.set_title(layer.get("name", ""), fontsize=9)
        ax.set_xlabel("weight")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("synapses")
    if layers:
        axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(title or f"weights before and after learning ({data.get('task', '')}, seed {data.get('seed', '')})",
                 fontsize=10)
    return _save(fig, path)


def latex_png(latex: str, dpi: int = 110) -> bytes | None:
    """The formula rendered by matplotlib mathtext (no TeX install needed), or None if mathtext cannot parse it."""
    import io

    from matplotlib import mathtext

    text = latex.strip()
    if not text:
        return None
    buf = io.BytesIO()
    try:
        mathtext.math_to_image(f"${text}$", buf, dpi=dpi, format="png")
    except Exception:  # noqa: BLE001 - mathtext covers most, not all, of LaTeX: the caller falls back to text
        return None
    return buf.getvalue()


def plot_paths(run_dir: str) -> dict[str, str]:
    from .rundir import PLOTS_DIR

    d = os.path.join(run_dir, PLOTS_DIR)
    return {k: os.path.join(d, f"{k}.png") for k in ("fitness", "pareto", "learning_curves", "stdp_window", "weights")}
