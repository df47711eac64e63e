"""``plasticity-search evaluate``: train networks with one or more rules and report their metrics (mean and std over
seeds). With several rules every rule runs on the same seeds (same data and initial weights), and each is compared
with the first by the paired difference of the task's metric and its 95% interval. The name ``bp`` stands for rule
``fa`` under backpropagated errors (the non-local reference), as in a config's ``baselines:``."""
from __future__ import annotations

import json
import math
import re

from .errors import UsageError

# Nothing heavy at import time (the command line's start-up): models, the rule language, tasks and the search layer
# load inside the commands. The feedback pathways are rate.mlp.FEEDBACKS (tests/test_cli_ux.py checks they agree).
FEEDBACK_NAMES = ("bp", "fa", "dfa", "sign")


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_task_args(items) -> dict:
    """``--task-arg FIELD=VALUE`` (repeatable) -> {field: value}; each value is one YAML scalar (``20``, ``0.5``,
    ``true``, ``relu``), read with the config's bounded safe YAML loader: no code runs, no tags."""
    from .runs.run_cmd import read_value

    out = {}
    for item in items or ():
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not _IDENT.match(key):
            raise UsageError(f"--task-arg: expected FIELD=VALUE with FIELD a task field name, got {item!r}")
        if key in out:
            raise UsageError(f"--task-arg: field '{key}' given twice")
        try:
            value = read_value(text, f"--task-arg {key}") if text.strip() else None
        except Exception as exc:  # noqa: BLE001 - any YAML error is bad input
            raise UsageError(f"--task-arg {key}: value {text!r} is not a YAML scalar "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if isinstance(value, (dict, list)) or value is None:
            raise UsageError(f"--task-arg {key}: value {text!r} must be a number, true/false or a word")
        out[key] = value
    return out


def make_task(name: str, task_args: dict):
    """``tasks.make(name, **task_args)``, each argument checked like ``args:`` of a config's task entry
    (type of the task's field; sizes and counts >= 1 and bounded; numbers finite)."""
    from .search.config import ConfigError, TaskEntry, _check_task_args
    from .tasks import make

    for k, v in task_args.items():     # before the task is built: its constructor never sees a bad value
        try:
            _check_task_args(TaskEntry(task=name, args={k: v}), "task")
        except ConfigError as exc:      # "task.args.n_in: must be >= 1, got 0" -> "--task-arg n_in: ..."
            msg = str(exc).split(": ", 1)[-1]
            raise UsageError(f"--task-arg {k}: {msg}") from None
    return make(name, **task_args)      # an unknown field: one line naming the settable ones


def _check_flags(args) -> None:
    """Every number on the command line bounded like the same number in a config (:mod:`.limits`)."""
    from .limits import MAX_BATCH, MAX_SEEDS, MAX_STEPS, check_count, check_rate

    for flag, v, hi in (("--seeds", args.seeds, MAX_SEEDS), ("--steps", args.steps, MAX_STEPS),
                        ("--batch-size", args.batch_size, MAX_BATCH)):
        if v is not None:
            check_count(flag, v, hi, UsageError)
    for flag, v in (("--lr", args.lr), ("--readout-lr", getattr(args, "readout_lr", None))):
        if v is not None:
            check_rate(flag, v, UsageError)


def _check_network(args, task) -> None:
    """Layer widths bounded, and the evaluation (all seeds at once) within the machine's memory."""
    from .limits import check_widths
    from .rate.mlp import default_network, parse_network_spec
    from .search.config import ConfigError, check_memory, evaluation_bytes

    net = parse_network_spec(args.network, task.n_in, task.n_out, default_network(task.objective))
    check_widths("--network", net.hidden, UsageError)
    steps = args.steps or task.default_steps
    try:
        check_memory(*evaluation_bytes(task.n_in, task.n_out, net.hidden, net.bias, 1, args.seeds, steps,
                                       task.n_eval), "--network", "--steps")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _evaluate_one(spec: str, task, args) -> dict:
    from .models import MODELS, model_name
    from .runs import resolve_rule_spec
    from .search.config import BP_BASELINE
    from .search.panels import curve_x

    feedback = args.feedback
    if spec == BP_BASELINE and model_name(task) == "rate":
        spec, feedback = "fa", "bp"
    rule = resolve_rule_spec(spec)
    name = model_name(task)
    if rule.model != name:
        raise UsageError(f"rule '{rule.name}' is a {rule.model} rule; task '{task.name}' is a {name} task")
    if name != "rate" and (args.network or args.batch_size is not None):
        raise UsageError(f"{'--network' if args.network else '--batch-size'}: spiking tasks bring their own network")
    options = ({"network": args.network, "lr": args.lr,
                "batch_size": 1 if args.batch_size is None else args.batch_size} if name == "rate"
               else {"lr": args.lr})
    readout = {"readout_rule": getattr(args, "readout_rule", None), "readout_lr": getattr(args, "readout_lr", None)}
    if any(v is not None for v in readout.values()):       # per-layer rules (rate networks)
        if name != "rate":
            raise UsageError("--readout-rule: spiking tasks bring their own network")
        options.update(readout)
    summary, curve = MODELS[name].evaluate_rule(rule, task, seeds=args.seeds, steps=args.steps, split=args.split,
                                                feedback=feedback, **options)
    metrics = {k: {s: ([_f(x) for x in v[s]] if s == "values" else _f(x)) for s, x in v.items()}
               for k, v in summary.items()}
    out = {"rule": rule.name, "formula": rule.formula, "task": task.name, "kind": task.kind, "feedback": feedback}
    if name == "rate":
        out.update(network=curve["network"], lr=curve["lr"],
                   **{k: curve[k] for k in ("readout_rule", "readout_lr") if k in curve})
    else:       # spiking: the rule's simulation settings (a run's rule carries the run's), --lr replacing its lr
        from .spiking.plasticity import hyper_dict
        out["settings"] = hyper_dict(rule.defaults, **({} if args.lr is None else {"lr": args.lr}))
        out["lr"] = out["settings"]["lr"]
    steps = args.steps or task.default_steps
    out.update(steps=steps, seeds=args.seeds, split=args.split, metrics=metrics)
    out["curve"] = {k: curve[k] for k in ("metric", "unit", "mean", "std") if k in curve}
    out["curve"]["x"] = curve_x(steps, len(curve["mean"]))
    if feedback == "bp" and args.feedback != "bp":
        out["rule"] = BP_BASELINE
    return out


def compare(results: list[dict], metric: str, sign: float) -> list[dict]:
    """Paired difference of ``sign * metric`` of every result against the first (same seeds and inits)."""
    import numpy as np

    from .search.stats import paired_difference, verdict

    ref = np.array([np.nan if v is None else v for v in results[0]["metrics"][metric]["values"]]) * sign
    out = []
    for r in results:
        a = np.array([np.nan if v is None else v for v in r["metrics"][metric]["values"]]) * sign
        p = paired_difference(a, ref)
        out.append({"rule": r["rule"], "vs": results[0]["rule"], "metric": metric, "verdict": verdict(p), **p})
    return out


def cmd_evaluate(args) -> int:
    from .rules.formula import rule_equation

    _check_flags(args)
    task = make_task(args.task, parse_task_args(args.task_arg))
    if task.kind != "spiking" and args.network:
        _check_network(args, task)
    specs = [r.strip() if isinstance(r, str) else r for r in args.rule]
    results = [_evaluate_one(specs[0], task, args)]
    if args.metric is not None and args.metric not in results[0]["metrics"]:     # checked with one rule too
        raise UsageError(f"--metric: task '{task.name}' reports {', '.join(results[0]['metrics'])}, "
                         f"not '{args.metric}'")
    results += [_evaluate_one(spec, task, args) for spec in specs[1:]]
    if len(results) > 1:
        return _print_comparison(results, task, args)
    out = results[0]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"rule     {out['rule']}   {rule_equation(out['formula'])}")
    print(f"task     {out['task']} ({out['kind']}, split {out['split']}, {out['seeds']} seeds)   "
          f"feedback {out['feedback']}" + (f"   network {out['network']}" if "network" in out else "")
          + (f"   lr {out['lr']}" if "lr" in out else "")
          + (f"   readout rule {out['readout_rule']} (lr {out['readout_lr']})" if "readout_rule" in out else ""))
    for k, v in out["metrics"].items():
        m, s = v["mean"], v["std"]
        print(f"  {k:<18} {'nan' if m is None else f'{m:.4f}'} ± {'nan' if s is None else f'{s:.4f}'}")
    c = out.get("curve") or {}
    if c.get("mean"):       # the learning curve, mean over seeds, one value per window (--json: x, std)
        step = c["x"][0] if c.get("x") else "?"
        print(f"curve    {c.get('metric', 'score')} per {step} {c.get('unit', 'steps')}, mean over seeds: "
              + " ".join("nan" if v is None else f"{v:.3g}" for v in c["mean"]))
    return 0


def _print_comparison(results: list[dict], task, args) -> int:
    from .rate.online import METRIC_SIGN
    from .rules.formula import rule_equation
    from .search.config import default_metric, setting_text
    from .search.stats import format_delta, format_delta_verdict

    metric = args.metric or default_metric(task)
    if metric not in results[0]["metrics"]:
        raise UsageError(f"--metric: task '{task.name}' reports {', '.join(results[0]['metrics'])}, not '{metric}'")
    direction = METRIC_SIGN.get(metric, 1)      # 0: a metric with no better direction (weight_norm, rate_hz)
    sign = float(direction) or 1.0
    paired = compare(results, metric, sign)
    if args.json:
        print(json.dumps({"task": task.name, "kind": task.kind, "split": args.split, "seeds": args.seeds,
                          "metric": metric, "reference": results[0]["rule"], "rules": results, "paired": paired},
                         indent=2))
        return 0
    first = results[0]
    print(f"task     {task.name} ({task.kind}, split {args.split}, {args.seeds} seeds; every rule on the same "
          f"data and initial weights)" + (f"   network {first['network']}" if "network" in first else "")
          + (f"   readout rule {first['readout_rule']} (lr {first['readout_lr']})" if "readout_rule" in first else ""))
    better = "no better direction" if direction == 0 else f"{'higher' if sign > 0 else 'lower'} is better"
    print(f"metric   {metric} ({better}); Δ = paired difference vs "
          f"{first['rule']}" + (f" of -{metric}, so that + is better" if sign < 0 else "")
          + " (95% interval over seeds)")
    lrs = [r.get("lr") for r in results]
    mixed_lr = len({repr(x) for x in lrs}) > 1
    if mixed_lr:        # a run's rule carries the run's learning rate, a named rule its own default
        print("lr       each rule's own (they differ; --lr sets one for all)")
    elif lrs[0] is not None:
        print(f"lr       {lrs[0]:g} for every rule")
    # spiking: a run's rule also carries the run's trace time constants and weight bounds, a formula the defaults
    mixed = [k for k in (first.get("settings") or {}) if k != "lr"
             and len({repr((r.get("settings") or {}).get(k)) for r in results}) > 1]
    if mixed:
        print(f"settings each rule's own {', '.join(mixed)} (they differ: not the same simulation; a run's rule "
              "carries its run's settings, a formula the defaults)")
    w = max(len(r["rule"]) for r in results)
    for r, p in zip(results, paired):
        v = r["metrics"][metric]
        m, s = v["mean"], v["std"]
        fb = f"  [{r['feedback']} feedback]" if r.get("feedback") else ""
        if mixed_lr and r.get("lr") is not None:
            fb += f"  [lr {r['lr']:g}]"
        if mixed:
            fb += "  [" + ", ".join(f"{k} {setting_text(r['settings'][k])}" for k in mixed) + "]"
        d = ("reference" if r is first else f"Δ {format_delta(p)}" if direction == 0
             else f"Δ {format_delta_verdict(p)}")
        print(f"  {r['rule']:<{w}}  {'nan' if m is None else f'{m:.4f}'} ± {'nan' if s is None else f'{s:.4f}'}"
              f"   {d:<40} {rule_equation(r['formula'])}{fb}")
    return 0


def cmd_generalize(args) -> int:
    """``generalize RULE``: the rule, FA and BP on held-out conditions, with paired differences."""
    import os
    import sys

    from .rules.formula import rule_equation
    from .rules.resolve import is_run_rank
    from .runs import configs, resolve_rule_spec
    from .runs.rundir import CONFIG_FILE
    from .limits import MAX_SEEDS, check_count
    from .search.generalize import (auto_conditions, condition_name, conditions_of, format_report,
                                    generalization_report)

    spec = args.rule.strip()
    rule = resolve_rule_spec(spec)
    cfg_path = args.config
    if cfg_path is not None:
        cfg = configs.load(cfg_path)
    elif is_run_rank(spec):
        run_dir = spec.rsplit(":", 1)[0]
        cfg_path = os.path.join(run_dir, CONFIG_FILE)
        cfg = configs.load_run_config(run_dir)      # the config it ran with (the comparison is labelled with it)
    else:
        raise UsageError("--config CONFIG.yaml is needed (the network and task of the comparison) unless RULE is "
                         "RUN_DIR:RANK")
    if rule.model != "rate" or cfg.model != "rate":
        raise UsageError("generalize compares rate rules on rate tasks")
    if args.seeds is not None:
        check_count("--seeds", args.seeds, MAX_SEEDS, UsageError)
    mine = conditions_of(cfg)
    named = {condition_name(c) for c in mine}
    conds = {"config": mine, "auto": auto_conditions(cfg),
             "all": mine + [c for c in auto_conditions(cfg) if condition_name(c) not in named]}[args.conditions]
    if not conds:
        raise UsageError(f"config '{cfg_path}' has no held-out conditions (set generalization.conditions)")
    log = (lambda r: print(f"  {r['condition']}: done", file=sys.stderr)) if not args.json else None
    doc = generalization_report(rule.program, rule.space, cfg, conds, seeds=args.seeds, log=log)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"rule     {rule.name}   {rule_equation(rule.formula)}")
        print(format_report(doc))
    return 0


def add_commands(sub) -> None:
    s = sub.add_parser("evaluate", help="train networks with one or more rules; several rules are compared on the "
                                        "same seeds by paired differences",
                       description="Train networks with RULE (and more rules: each compared with the first by the "
                                   "paired difference of the task's metric over the same seeds, data and initial "
                                   "weights, with a 95% interval). 'bp' names rule fa under backpropagated errors.")
    s.add_argument("rule", nargs="+", help="known rule name, formula in quotes, RUN_DIR:RANK, a rule .json file, "
                                           "or bp")
    s.add_argument("--metric", help="metric of the comparison (default: the task's fitness metric)")
    s.add_argument("--task", required=True, help="task name (see `plasticity-search tasks`), idx:PATH, or a task of "
                                                 "yours as module:function (see README, custom tasks)")
    s.add_argument("--task-arg", action="append", metavar="FIELD=VALUE",
                   help="set a field of the task, e.g. --task-arg n_in=20 (repeatable; checked like args: of a "
                        "config's task entry)")
    s.add_argument("--network", help="layer sizes, e.g. 64-100-10 or 100 (hidden only), optional ':relu'")
    s.add_argument("--feedback", default="fa", choices=FEEDBACK_NAMES, help="pathway that delivers errors (default fa)")
    s.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    s.add_argument("--steps", type=int, help="online updates (default: the task's)")
    s.add_argument("--lr", type=float, help="learning rate (default: the rule's)")
    s.add_argument("--batch-size", type=int, help="samples per update (default 1: online; rate tasks)")
    s.add_argument("--readout-rule", metavar="RULE", help="a fixed rule for the readout layer (known name or formula, "
                                                          "e.g. fa); RULE then trains the hidden layers")
    s.add_argument("--readout-lr", type=float, help="learning rate of --readout-rule (default: that rule's)")
    s.add_argument("--split", default="final", choices=("search", "select", "final"), help="task split (default final)")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_evaluate)

    g = sub.add_parser("generalize", help="a rule, FA and BP on held-out conditions (other task families, depths, "
                                          "widths, activations) with paired differences",
                       description="Score RULE, plain FA and BP on the held-out conditions of a config "
                                   "(generalization.conditions, or automatic ones), on the final split, each with "
                                   "the paired difference to FA and BP over the same seeds (95% interval).")
    g.add_argument("rule", help="known rule name, formula in quotes, RUN_DIR:RANK, or a rule .json file")
    g.add_argument("--config", help="search config giving the network and conditions (default: RUN_DIR's)")
    g.add_argument("--seeds", type=int, help="seeds per condition (default: the config's generalization.seeds)")
    g.add_argument("--conditions", choices=("config", "auto", "all"), default="config",
                   help="the config's conditions (default), the automatic ones (other families, one layer deeper, "
                        "twice as wide, another activation), or both")
    g.add_argument("--json", action="store_true", help="print one JSON document")
    g.set_defaults(func=cmd_generalize)
