"""``plasticity-search evaluate``: train networks with one rule and report its metrics (mean and std over seeds)."""
from __future__ import annotations

import json

import numpy as np

from .networks.rate import FEEDBACKS, default_network, parse_network_spec


def evaluate_rule(rule, task, network: str | None = None, feedback: str = "fa", seeds: int = 5,
                  steps: int | None = None, lr: float | None = None, split: str = "final", batch_size: int = 1):
    """Evaluate a resolved rule on a rate task. Returns a JSON-ready dict."""
    from .inner import InnerConfig, evaluate_population
    from .rules.program import stack

    net = default_network(task.objective)
    if network:
        net = parse_network_spec(network, task.n_in, task.n_out, net)
    lr = lr if lr is not None else float(rule.defaults.get("lr", net.lr))
    net = net.with_(feedback=feedback, lr=lr, batch_size=batch_size,
                    tau_mean=float(rule.defaults.get("tau_mean", net.tau_mean)),
                    tau_theta=float(rule.defaults.get("tau_theta", net.tau_theta)))
    cfg = InnerConfig(network=net, steps=steps)
    metrics, curves = evaluate_population(stack([rule.program]), rule.space, task, cfg, range(seeds), split)
    out = {k: {"mean": _f(np.mean(v[0], dtype=np.float64)), "std": _f(np.std(v[0], dtype=np.float64))}
           for k, v in sorted(metrics.items())}
    return {
        "rule": rule.name, "formula": rule.formula, "task": task.name, "kind": task.kind, "feedback": feedback,
        "network": "-".join(str(s) for s in (task.n_in, *net.hidden, task.n_out)) + f":{net.activation}",
        "lr": lr, "steps": steps or task.default_steps, "seeds": seeds, "split": split, "metrics": out,
        "curve": {"mean": [_f(x) for x in np.mean(curves[0], 0)], "std": [_f(x) for x in np.std(curves[0], 0)]},
    }


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def cmd_evaluate(args) -> int:
    from .rules.formula import rule_equation
    from .cli import UsageError
    from .rules.resolve import resolve_rule
    from .tasks import make

    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    task = make(args.task)
    rule = resolve_rule(args.rule)
    if task.kind == "spiking":
        try:
            from .spiking import evaluate_rule as spiking_evaluate
        except ImportError:
            raise UsageError(f"task '{task.name}' needs the spiking simulator, which is not available") from None
        metrics = spiking_evaluate(rule, task.name, seeds=args.seeds, steps=args.steps, split=args.split,
                                   feedback=args.feedback)
        metrics = {k: {s: _f(x) for s, x in v.items()} for k, v in metrics.items()}
        out = {"rule": rule.name, "formula": rule.formula, "task": task.name, "kind": "spiking",
               "feedback": args.feedback, "steps": args.steps, "seeds": args.seeds, "split": args.split,
               "metrics": metrics}
    else:
        if rule.model != "rate":
            raise UsageError(f"rule '{rule.name}' is a spiking rule; task '{task.name}' is a rate task")
        out = evaluate_rule(rule, task, args.network, args.feedback, args.seeds, args.steps, args.lr, args.split,
                            args.batch_size)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"rule     {out['rule']}   {rule_equation(out['formula'])}")
    print(f"task     {out['task']} ({out['kind']}, split {out['split']}, {out['seeds']} seeds)   "
          f"feedback {out['feedback']}" + (f"   network {out['network']}   lr {out['lr']}" if "network" in out else ""))
    for k, v in out["metrics"].items():
        m, s = v["mean"], v["std"]
        print(f"  {k:<18} {'nan' if m is None else f'{m:.4f}'} ± {'nan' if s is None else f'{s:.4f}'}")
    return 0


def add_commands(sub) -> None:
    s = sub.add_parser("evaluate", help="train networks with one rule and report its metrics over seeds")
    s.add_argument("rule", help="known rule name, formula in quotes, RUN_DIR:RANK, or a rule .json file")
    s.add_argument("--task", required=True, help="task name (see `plasticity-search tasks`) or idx:PATH")
    s.add_argument("--network", help="layer sizes, e.g. 64-100-10 or 100 (hidden only), optional ':relu'")
    s.add_argument("--feedback", default="fa", choices=FEEDBACKS, help="pathway that delivers errors (default fa)")
    s.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    s.add_argument("--steps", type=int, help="online updates (default: the task's)")
    s.add_argument("--lr", type=float, help="learning rate (default: the rule's)")
    s.add_argument("--batch-size", type=int, default=1, help="samples per update (default 1: online)")
    s.add_argument("--split", default="final", choices=("search", "select", "final"), help="task split (default final)")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_evaluate)
