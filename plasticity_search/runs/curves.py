"""Data for the learning-curve and STDP-window plots (computed once at the end of a run, cached as JSON in
``plots/``): the top rules of the hall of fame next to the run's baselines on the run's final tasks, and the
pairing-protocol window of spiking rules."""
from __future__ import annotations

import os
import warnings

import numpy as np

from .results import entries, rule_from_entry

STDP_OFFSETS_MS = np.arange(-50.0, 51.0, 2.0)


def _top_rules(run_dir: str, hof_json: dict, top: int):
    out = []
    base = os.path.basename(os.path.normpath(run_dir))
    for i, e in enumerate(entries(hof_json)[:top]):
        out.append((i, e, rule_from_entry(e, name=f"{base}:{i}", hof_json=hof_json, index=i)))
    return out


def stdp_windows(run_dir: str, hof_json: dict, top: int = 3) -> dict:
    """{label: window} for the spiking rules among the top ranks, then ``stdp_add`` under the same settings as a
    reference ({} if none, or no simulator); a window is :func:`pairing_window`'s dict."""
    spiking = [(i, e, r) for i, e, r in _top_rules(run_dir, hof_json, top) if getattr(r, "model", "") == "spiking"]
    if not spiking:
        return {}
    try:
        from ..rules.resolve import resolve_rule
        from ..spiking.pairing import pairing_dw  # noqa: F401 - the simulator is there
    except ImportError:
        return {}
    out = {}
    for i, e, r in spiking:
        out[f"rank {i}: {e.get('formula', '')}"[:60]] = pairing_window(r)
    import dataclasses
    settings = dict(spiking[0][2].defaults or {})       # the run's lr, time constants and bounds
    out["stdp_add (reference)"] = pairing_window(dataclasses.replace(resolve_rule("stdp_add"), defaults=settings))
    return out


def pairing_window(rule, offsets_ms=STDP_OFFSETS_MS, rtol: float = 1e-3, dt: float = 1.0) -> dict:
    """The pairing window of a rule away from its weight bounds, and where the bounds would clip it.

    The protocol runs at the spiking tasks' step ``dt`` (1 ms; terms without a spike act once per step, so this is
    the change the rule made in its task; offsets are rounded to multiples of ``dt``). The weight starts mid-range (the middle of the rule's ``w_bounds``, 0.5 without bounds) and ``dw`` is the
    rule's change *before* clipping (the pairing protocol without bounds), so the window shows the rule, not the
    bounds. ``dw_clipped`` is the change with the bounds applied; ``clipped[k]`` is True where the two differ
    (by more than ``rtol`` of the largest |dw|): there the bounds, not the rule, set the weight change.
    {"offsets_ms", "dw", "dw_clipped", "clipped", "w0", "w_bounds"}.
    """
    from ..spiking.pairing import pairing_dw
    bounds = (getattr(rule, "defaults", None) or {}).get("w_bounds")
    w0 = 0.5 if bounds is None else 0.5 * (float(bounds[0]) + float(bounds[1]))
    offsets_ms = np.rint(np.asarray(offsets_ms, np.float64) / dt) * dt
    raw = np.asarray(pairing_dw(rule, offsets_ms, dt=dt, w0=w0, w_bounds=None), np.float64)
    clip = raw if bounds is None else np.asarray(pairing_dw(rule, offsets_ms, dt=dt, w0=w0), np.float64)
    scale = float(np.nanmax(np.abs(raw))) if np.any(np.isfinite(raw)) else 0.0
    clipped = np.abs(raw - clip) > rtol * max(scale, 1e-12)
    return {"offsets_ms": np.asarray(offsets_ms, np.float64).tolist(), "dw": raw.tolist(),
            "dw_clipped": clip.tolist(), "clipped": clipped.tolist(), "w0": w0,
            "w_bounds": None if bounds is None else [float(bounds[0]), float(bounds[1])]}


from ..search.panels import curve_x  # noqa: E402 - one source for the curves' x axis


def compute_curves(run_dir: str, hof_json: dict, top: int = 3, max_tasks: int = 2) -> dict:
    """Learning curves (mean and std over the task's seeds) of the top ``top`` rules next to the baselines, as
    recorded by the search's final evaluation (``info.curves``: the run's own baselines). Older rate runs without
    that record are re-scored here with the FA baseline (rule ``fa`` with feedback alignment) and the BP baseline
    (rule ``fa`` with backpropagated errors) on the run's final tasks (select or search tasks if it has none), with
    the run's network; older spiking runs have none.

    {task: {"metric", "xlabel", "x", "split", "series": {label: {"mean": [...], "std": [...]}}}}
    """
    stored = (hof_json.get("info") or {}).get("curves")
    if isinstance(stored, dict) and stored:      # recorded by the search's final evaluation: nothing to re-run
        return stored
    from ..rate import InnerConfig, evaluate_population
    from ..rules import pad, stack
    from ..search.config import rule_in_space
    from .configs import load
    from .rundir import CONFIG_FILE

    cfg = load(os.path.join(run_dir, CONFIG_FILE), what="run config")
    split = next((s for s in ("final", "select", "search") if getattr(cfg.tasks, s)), None)
    if split is None or cfg.model == "spiking":      # an older spiking run: its STDP windows only
        return {}
    space = cfg.rule_space()
    rules = [(i, e, r) for i, e, r in _top_rules(run_dir, hof_json, top) if getattr(r, "model", "rate") == "rate"]
    progs = [pad(r.program, r.space, space) for _, _, r in rules]
    labels = [f"rank {i}: {e.get('formula', '')}"[:48] for i, e, _ in rules]
    fa = rule_in_space("fa", space)
    net = cfg.network_config()
    out = {}
    for entry in getattr(cfg.tasks, split)[:max_tasks]:
        task = cfg.make_task(entry)
        steps = entry.steps
        seeds = list(entry.seed_list)
        series = {}
        groups = [(net.feedback, progs + ([fa] if net.feedback == "fa" else []),
                   labels + (["baseline FA"] if net.feedback == "fa" else []))]
        if net.feedback != "fa":
            groups.append(("fa", [fa], ["baseline FA"]))
        groups.append(("bp", [fa], ["baseline BP"]))
        for fb, pop, labs in groups:
            if not pop:
                continue
            icfg = InnerConfig(network=net.with_feedback(fb), steps=steps)
            _, curves = evaluate_population(stack(pop), space, task, icfg, seeds, split)   # [P, S, C]
            with warnings.catch_warnings():          # a rule that exploded has all-NaN curves: plotted as a gap
                warnings.simplefilter("ignore", RuntimeWarning)
                for lab, c in zip(labs, np.asarray(curves, np.float64)):
                    series[lab] = {"mean": np.nanmean(c, 0).tolist(), "std": np.nanstd(c, 0).tolist()}
        n_steps = steps or task.default_steps
        C = len(next(iter(series.values()))["mean"]) if series else 0
        title = task.name if len(getattr(cfg.tasks, split)) == 1 else f"{task.name} ({entry.task})"
        out[f"{title} [{split}]"] = {"metric": task.curve_metric, "xlabel": task.steps_unit,
                                     "x": curve_x(n_steps, C) if C else [], "split": split, "series": series}
    return out


WEIGHT_BINS = 40


def _reference_rule(hof_json: dict, net):
    """The rule the chosen one's weights are drawn beside: the run's first baseline (FA for supervised rate runs,
    Oja for PCA; ``bp`` is rule ``fa`` under backpropagated errors), else FA. (rule, network, label)"""
    from ..rules.resolve import resolve_rule
    from ..search.config import BP_BASELINE

    names = [b.get("name") for b in (hof_json.get("baselines") or []) if isinstance(b, dict)]
    name = names[0] if names and isinstance(names[0], str) else "fa"
    if name in ("fa", BP_BASELINE):
        fb = "fa" if name == "fa" else "bp"
        return resolve_rule("fa"), net.with_feedback(fb), name.upper()
    return resolve_rule(name), net, name


def weight_histograms(run_dir: str, hof_json: dict, bins: int = WEIGHT_BINS) -> dict:
    """Histograms of every layer's weights before and after learning, for the chosen rule and the run's first
    baseline, on one instance of the run's first final task (select or search task if it has none; its first seed):
    the same data and initial weights for both rules. Rate runs: the chosen rule under the run's feedback and
    :func:`_reference_rule` (FA, rule ``fa`` with feedback alignment, for supervised runs; Oja for PCA), from
    :func:`plasticity_search.rate.weight_trajectory`. Spiking runs: both rules under the run's spiking settings
    (lr, time constants, weight bounds), from :func:`plasticity_search.spiking.trained_weights`; "before" is the
    initial weights (trained with dw = 0: clipped to the run's bounds, as training would).

    {"task", "split", "seed", "steps", "unit", "updates", "labels": [before, chosen, baseline], "layers": [{"name",
    "edges", "counts": {label: [...]}, "stats": {label: {"mean", "std", "min", "max", "nonfinite"}}}]}; values
    outside the shared bin range (0.5th to 99.5th percentile of all three) are counted in the outer bins.
    """
    from .configs import load
    from .results import best_index
    from .rundir import CONFIG_FILE

    cfg = load(os.path.join(run_dir, CONFIG_FILE), what="run config")
    split = next((s for s in ("final", "select", "search") if getattr(cfg.tasks, s)), None)
    es = entries(hof_json)
    if split is None or not es:
        return {}
    b = best_index(hof_json)
    b = b if 0 <= b < len(es) else 0
    chosen = rule_from_entry(es[b], name=f"{os.path.basename(os.path.normpath(run_dir))}:{b}", hof_json=hof_json,
                             index=b)
    if getattr(chosen, "model", "rate") != cfg.model:
        return {}
    entry = getattr(cfg.tasks, split)[0]
    task = cfg.make_task(entry)
    seed = int(entry.seed_list[0])
    weights = _spiking_weights if cfg.model == "spiking" else _rate_weights
    ws, ref_label, bias, updates = weights(cfg, hof_json, chosen, task, seed, entry.steps, split)
    labels = ("before learning", f"after: chosen rule (rank {b})", f"after: {ref_label}")
    layers = []
    for l, layer_ws in enumerate(ws):
        flat = [np.asarray(w, np.float64).ravel() for w in layer_ws]
        pooled = np.concatenate([w[np.isfinite(w)] for w in flat])
        lo, hi = (np.percentile(pooled, [0.5, 99.5]) if pooled.size else (-1.0, 1.0))
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        counts, stats = {}, {}
        for lab, w in zip(labels, flat):
            f = w[np.isfinite(w)]
            counts[lab] = np.histogram(np.clip(f, lo, hi), edges)[0].tolist()
            stats[lab] = {"mean": float(f.mean()) if f.size else None, "std": float(f.std()) if f.size else None,
                          "min": float(f.min()) if f.size else None, "max": float(f.max()) if f.size else None,
                          "nonfinite": int(w.size - f.size)}
        n_post, n_pre = np.shape(layer_ws[0])
        n_pre -= 1 if bias else 0
        layers.append({"name": f"layer {l + 1}: {n_pre} -> {n_post}" + (" (+ bias)" if bias else ""),
                       "edges": edges.tolist(), "counts": counts, "stats": stats})
    return {"task": task.name, "split": split, "seed": seed, "steps": entry.steps or task.default_steps,
            "unit": task.steps_unit, "updates": updates, "labels": list(labels), "layers": layers}


def _rate_weights(cfg, hof_json, chosen, task, seed, steps, split):
    """Per layer [before, after the chosen rule, after the reference] from the rate inner loop; the reference's
    label, whether the layers end in a bias column, the number of online updates."""
    from ..rate import weight_trajectory

    net = cfg.network_config()
    ref, ref_net, ref_label = _reference_rule(hof_json, net)
    trajs = [weight_trajectory(r, task, seed, steps, snapshots=1, split=split, network=n)
             for r, n in ((chosen, net), (ref, ref_net))]
    n_layers = sum(1 for k in trajs[0] if k.startswith("W"))
    ws = [[trajs[0][f"W{l}"][0], trajs[0][f"W{l}"][-1], trajs[1][f"W{l}"][-1]] for l in range(n_layers)]
    return ws, ref_label, net.bias, int(trajs[0]["update"][-1])


def _spiking_weights(cfg, hof_json, chosen, task, seed, steps, split):
    """Per layer [before, after the chosen rule, after the run's first baseline] from the spiking simulation, every
    rule under the run's spiking settings (as the run scored its baselines); the baseline's name, no bias, the
    training stream's length in the task's steps."""
    import dataclasses

    from ..rules.resolve import resolve_rule
    from ..spiking import trained_weights

    settings = dict(chosen.defaults or {})      # the run's lr, time constants and bounds
    names = [b.get("name") for b in (hof_json.get("baselines") or []) if isinstance(b, dict)]
    ref_name = names[0] if names and isinstance(names[0], str) else "stdp_add"
    fb = cfg.spiking_eval_config().get("feedback", "fa")
    rules = [dataclasses.replace(resolve_rule("0*sy"), defaults=settings), chosen,
             dataclasses.replace(resolve_rule(ref_name), defaults=settings)]
    runs = [trained_weights(r, task, seed, steps, split, fb) for r in rules]
    return [[run[l] for run in runs] for l in range(len(runs[0]))], ref_name, False, int(steps or task.default_steps)

