"""Data for the learning-curve and STDP-window plots (computed once at the end of a run, cached as JSON in
``plots/``): the top rules of the hall of fame next to FA and BP baselines on the run's final tasks, and the
pairing-protocol window of spiking rules."""
from __future__ import annotations

import os
import warnings

import numpy as np

from .results import entries, rule_from_entry

STDP_OFFSETS_MS = np.arange(-50.0, 50.5, 2.5)


def _top_rules(run_dir: str, hof_json: dict, top: int):
    out = []
    base = os.path.basename(os.path.normpath(run_dir))
    for i, e in enumerate(entries(hof_json)[:top]):
        out.append((i, e, rule_from_entry(e, name=f"{base}:{i}", hof_json=hof_json, index=i)))
    return out


def stdp_windows(run_dir: str, hof_json: dict, top: int = 3) -> dict:
    """{label: {"offsets_ms", "dw"}} for the spiking rules among the top ranks ({} if none, or no simulator)."""
    spiking = [(i, e, r) for i, e, r in _top_rules(run_dir, hof_json, top) if getattr(r, "model", "") == "spiking"]
    if not spiking:
        return {}
    try:
        from ..spiking.pairing import pairing_dw
    except ImportError:
        return {}
    out = {}
    for i, e, r in spiking:
        dw = pairing_dw(r, STDP_OFFSETS_MS)
        out[f"rank {i}: {e.get('formula', '')}"[:60]] = {"offsets_ms": STDP_OFFSETS_MS.tolist(),
                                                       "dw": np.asarray(dw, np.float64).tolist()}
    return out


from ..search.curves import CURVE_METRIC  # noqa: E402 - one source for the curve labels


def compute_curves(run_dir: str, hof_json: dict, top: int = 3, max_tasks: int = 2) -> dict:
    """Learning curves (mean and std over the task's seeds) of the top ``top`` rules, the FA baseline (rule
    ``fa`` with feedback alignment) and the BP baseline (rule ``fa`` with backpropagated errors) on the run's final
    tasks (select or search tasks if it has none), with the run's network.

    {task: {"metric", "xlabel", "x", "split", "series": {label: {"mean": [...], "std": [...]}}}}
    """
    stored = (hof_json.get("info") or {}).get("curves")
    if isinstance(stored, dict) and stored:      # recorded by the search's final evaluation: nothing to re-run
        return stored
    from ..inner import InnerConfig, evaluate_population
    from ..rules import pad, stack
    from ..search.config import rule_in_space
    from .configs import load
    from .rundir import CONFIG_FILE

    cfg = load(os.path.join(run_dir, CONFIG_FILE), what="run config")
    split = next((s for s in ("final", "select", "search") if getattr(cfg.tasks, s)), None)
    if split is None or cfg.model == "spiking":      # spiking runs: the STDP windows of the top rules instead
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
            icfg = InnerConfig(network=net.with_(feedback=fb), steps=steps)
            _, curves = evaluate_population(stack(pop), space, task, icfg, seeds, split)   # [P, S, C]
            with warnings.catch_warnings():          # a rule that exploded has all-NaN curves: plotted as a gap
                warnings.simplefilter("ignore", RuntimeWarning)
                for lab, c in zip(labs, np.asarray(curves, np.float64)):
                    series[lab] = {"mean": np.nanmean(c, 0).tolist(), "std": np.nanstd(c, 0).tolist()}
        n_steps = steps or task.default_steps
        C = len(next(iter(series.values()))["mean"]) if series else 0
        x = [round((k + 1) * n_steps / C) for k in range(C)] if C else []
        title = task.name if len(getattr(cfg.tasks, split)) == 1 else f"{task.name} ({entry.task})"
        out[f"{title} [{split}]"] = {"metric": CURVE_METRIC.get(task.objective, "score"), "xlabel": "online updates",
                                     "x": x, "split": split, "series": series}
    return out
