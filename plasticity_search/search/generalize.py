"""Generalization report: a rule, FA and BP on held-out conditions (other task families, depths, widths and
activations), each with its paired difference to FA and to BP over the same seeds and initial weights.

A condition is a task (with arguments) and network overrides on top of the run's network::

    generalization:
      at_end: true          # score the chosen rule at the end of every run (runs layer: generalization.json)
      seeds: 16             # seeds per condition (final split)
      conditions:           # null: automatic (by the search task, below); []: none
        - {task: mnist1d_fewshot}
        - {task: digits_fewshot, network: {activation: tanh}}

Automatic conditions for classification: the other data sets of the same protocol (few-shot episodes: the other
few-shot family; online streams: the other streams among digits, mnist1d, yinyang), one hidden layer more, every
hidden layer twice as wide, and another activation (tanh, or relu for a tanh network). None for regression, PCA or
spiking tasks. Conditions use the ``final`` split: data the search never saw.
"""
from __future__ import annotations

import numpy as np

from ..rate import METRIC_SIGN, InnerConfig, evaluate_population
from ..rules.program import Program, Space, stack
from .baselines import resolve_baselines
from .config import DEFAULT_METRIC, GeneralizationConfig, SearchConfig, task_metrics
from .overlap import overlapped
from .stats import paired_difference

FEWSHOT_FAMILIES = ("digits_fewshot", "mnist1d_fewshot")
STREAM_FAMILIES = ("digits", "mnist1d", "yinyang")


def auto_conditions(cfg: SearchConfig) -> list[dict]:
    """The automatic held-out conditions of a rate classification search (see the module docstring)."""
    if cfg.model != "rate" or not cfg.tasks.search:
        return []
    entry = cfg.tasks.search[0]
    task = cfg.make_task(entry)
    if task.objective != "classification":
        return []
    net = cfg.network_config()
    fams = FEWSHOT_FAMILIES if task.name in FEWSHOT_FAMILIES else STREAM_FAMILIES
    out = [{"task": f, "steps": entry.steps if f in FEWSHOT_FAMILIES else None} for f in fams if f != task.name]
    hidden = list(net.hidden)
    base = {"task": entry.task, "args": dict(entry.args), "steps": entry.steps}
    if hidden:
        deeper = {"hidden": hidden + hidden[-1:]}
        if net.layer_rules is not None:      # the new layer takes the rule of the layer it repeats
            deeper["layer_rules"] = list(net.layer_rules[:-1]) + list(net.layer_rules[-2:])
        out.append({**base, "network": deeper, "name": "one layer deeper"})
        out.append({**base, "network": {"hidden": [2 * h for h in hidden]}, "name": "twice as wide"})
    act = "relu" if net.activation == "tanh" else "tanh"
    out.append({**base, "network": {"activation": act}, "name": f"{act} activation"})
    return out


def conditions_of(cfg: SearchConfig) -> list[dict]:
    g: GeneralizationConfig = cfg.generalization
    if g.conditions is None:
        return auto_conditions(cfg)
    return [{"task": c.task, "args": dict(c.args), "network": dict(c.network), "steps": c.steps,
             "seeds": c.seeds, "name": c.name} for c in g.conditions]


def condition_name(c: dict) -> str:
    if c.get("name"):
        return c["name"]
    net = c.get("network") or {}
    extra = ", ".join(f"{k}={v}" for k, v in net.items())
    return c["task"] + (f" ({extra})" if extra else "")


def _condition_plans(space: Space, cfg: SearchConfig, conditions: list[dict], n_default: int, split: str) -> list:
    """Per condition (c, task, net, metric, seeds, inner config, {'fa': thunk, 'bp': thunk}, key prefix)."""
    from ..tasks import make

    plans = []
    for c in conditions:
        task = make(c["task"], **dict(c.get("args") or {}))
        net = cfg.network_config().with_(**{k: (tuple(v) if isinstance(v, list) else v)
                                            for k, v in (c.get("network") or {}).items()})
        metric = cfg.fitness.metric if cfg.fitness.metric in task_metrics(task) else DEFAULT_METRIC[task.objective]
        sd = list(range(int(c.get("seeds") or n_default)))
        icfg = InnerConfig(network=net, steps=c.get("steps"))
        fa, bp = resolve_baselines(("fa", "bp"), space, "rate", net)
        # each condition's compiles serve one call each (the rule's reuses FA's): compiled for a single use
        thunks = {"fa": lambda fa=fa, task=task, icfg=icfg, sd=sd: evaluate_population(
                      stack([fa.program]), fa.space, task, icfg, sd, split, one_shot=True)[0],
                  "bp": lambda bp=bp, task=task, c=c, sd=sd: evaluate_population(
                      stack([bp.program]), bp.space, task, InnerConfig(network=bp.network, steps=c.get("steps")), sd,
                      split, one_shot=True)[0]}
        key = ("generalization", split, repr(sorted(c.items())), n_default, repr(space.to_dict()))
        plans.append((c, task, net, metric, sd, icfg, thunks, key))
    return plans


def baseline_jobs(space: Space, cfg: SearchConfig, conditions: list[dict] | None = None, seeds: int | None = None,
                  split: str = "final") -> dict:
    """FA and BP on every condition ({key: thunk}): the calls of :func:`generalization_report` that do not depend
    on the rule (computed ahead while a run searches, :mod:`.ahead`)."""
    conditions = conditions_of(cfg) if conditions is None else conditions
    plans = _condition_plans(space, cfg, conditions, int(seeds or cfg.generalization.seeds), split)
    return {key + (name,): t for *_, thunks, key in plans for name, t in thunks.items()}


def generalization_report(prog: Program, space: Space, cfg: SearchConfig, conditions: list[dict] | None = None,
                          seeds: int | None = None, split: str = "final", log=None, ahead=None) -> dict:
    """Score ``prog``, FA and BP on every condition; {"rule", "split", "rows": [...]} with per row the metric's
    means and the paired differences of the rule to FA and to BP (95% intervals).

    Each of the three is one call of one program. FA and BP come from ``ahead`` (:class:`.ahead.Ahead`) where it
    computed them; the others run side by side first, then the rule's calls (which share FA's compile)."""
    from ..rules.formula import to_text

    conditions = conditions_of(cfg) if conditions is None else conditions
    plans = _condition_plans(space, cfg, conditions, int(seeds or cfg.generalization.seeds), split)
    base, todo = {}, []
    for *_, thunks, key in plans:
        for name, t in thunks.items():
            k = key + (name,)
            got = None if ahead is None else ahead.get(k)      # None: not a job of it, or the job failed
            if got is not None:
                base[k] = got
            else:
                todo.append((k, t))
    # baselines before the rules: the rule and FA have one compile (same space, network and shapes), which two
    # threads side by side would each do
    for (k, _), r in zip(todo, overlapped([t for _, t in todo])):
        base[k] = r
    rule_res = overlapped([lambda task=task, icfg=icfg, sd=sd: evaluate_population(stack([prog]), space, task, icfg,
                                                                                    sd, split, one_shot=True)[0]
                           for _, task, _, _, sd, icfg, _, _ in plans])
    rows = []
    for (c, task, net, metric, sd, _, _, key), res in zip(plans, rule_res):
        r = np.asarray(res[metric][0], np.float64)
        f, b = (np.asarray(base[key + (name,)][metric][0], np.float64) for name in ("fa", "bp"))
        sign = float(METRIC_SIGN.get(metric, 1)) or 1.0
        row = {"condition": condition_name(c), "task": c["task"], "network": dict(c.get("network") or {}),
               "layers": net.spec(task.n_in, task.n_out),
               "metric": metric, "seeds": len(sd), "rule": _mean(r), "fa": _mean(f), "bp": _mean(b),
               "vs_fa": paired_difference(sign * r, sign * f), "vs_bp": paired_difference(sign * r, sign * b)}
        rows.append(row)
        if log is not None:
            log(row)
    return {"rule": to_text(prog, space), "split": split, "rows": rows}


def format_report(doc: dict) -> str:
    """The matrix as text: one line per condition."""
    from .stats import format_delta
    rows = [r for r in doc.get("rows", []) if isinstance(r, dict)]
    if not rows:
        return "(no held-out conditions)"
    w = max(len(str(r.get("condition", ""))) for r in rows)
    f = lambda x: "  -   " if x is None else f"{x:.4f}"  # noqa: E731
    out = [f"generalization ({doc.get('split', 'final')} split; Δ: paired difference, 95% interval)",
           f"  {'condition':<{w}}  {'rule':>6}  {'FA':>6}  {'BP':>6}  {'Δ vs FA':<26}{'Δ vs BP':<26}"]
    for r in rows:
        out.append(f"  {str(r.get('condition', '')):<{w}}  {f(r.get('rule'))}  {f(r.get('fa'))}  {f(r.get('bp'))}  "
                   f"{format_delta(r.get('vs_fa')):<26}{format_delta(r.get('vs_bp')):<26}")
    return "\n".join(out)


def _mean(x) -> float | None:
    m = float(np.mean(x))
    return m if np.isfinite(m) else None


__all__ = ["auto_conditions", "conditions_of", "generalization_report", "baseline_jobs", "condition_name",
           "format_report"]
