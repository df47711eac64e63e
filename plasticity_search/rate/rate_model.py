"""The rate model's side of the evaluator contract (:mod:`plasticity_search.models`)::

    from plasticity_search import rate
    inst = rate.make_instances(task, seeds=range(4), split="search", steps=None)
    evaluate = rate.make_evaluator(space, task, rate.InnerConfig(network=net))
    metrics, curves = evaluate(pop, inst)          # {metric: [P, S]}, learning curves [P, S, C]
    summary, curve = rate.evaluate_rule(rule, task, seeds=5)   # one resolved rule: {metric: {mean, std, values}}

The spiking model (:mod:`plasticity_search.spiking.spiking_model`) has the same three functions with the same
arguments; each model's settings (``cfg``) are its own: :class:`~.online.InnerConfig` (network, steps) here.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import distributed as dist
from ..limits import check_run_args, check_widths
from ..rules.program import Program, RuleError, Space, stack
from ..rules.resolve import as_rule, resolve_rule
from ..tasks import Instances, Task, TaskData, make
from .mlp import default_network, parse_network_spec
from .online import InnerConfig, compiled_population

__all__ = ["make_instances", "make_evaluator", "evaluate_rule", "model_config", "evaluate_population",
           "instance_keys", "task_batch", "rate_task"]


def rate_task(task) -> Task:
    t = make(task) if isinstance(task, str) else task
    if not isinstance(t, Task):
        raise RuleError(f"task must be a task name or a Task, got {type(task).__name__}")
    if t.kind == "spiking":
        raise RuleError(f"task '{t.name}' is a spiking task, not a rate task")
    return t


def instance_keys(seeds: Sequence[int], split: str) -> jax.Array:
    """Weight-init keys per instance: the same for every candidate (common random numbers)."""
    off = {"search": 0, "select": 1, "final": 2}[split]
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), off))(jnp.asarray(list(seeds), jnp.uint32))


def task_batch(task: Task, seeds: Sequence[int], split: str, steps: int | None) -> TaskData:
    data = task.sample_batch(list(seeds), split, steps)
    return TaskData(*[jnp.asarray(a) for a in data])


def make_instances(task, seeds: Sequence[int] = (0,), split: str = "search", steps: int | None = None) -> Instances:
    """Sample the task for every seed (numpy, deterministic) and stack it with the instance keys."""
    task = rate_task(task)
    seeds = list(seeds)
    return Instances(task_batch(task, seeds, split, steps), instance_keys(seeds, split))


def model_config(settings, steps: int | None = None) -> InnerConfig:
    """The model's settings from a run's: ``settings`` is the run's NetworkConfig."""
    return InnerConfig(network=settings, steps=steps)


def make_evaluator(space: Space, task, cfg: InnerConfig, one_shot: bool = False):
    """``evaluate(pop, instances) -> ({metric: [P, S]}, curves [P, S, C])``: one compiled call per population
    shape (``jit(vmap_pop(vmap_instance(train + score)))``); instances must have been sampled with ``cfg.steps``.
    ``one_shot``: compiled for one or two calls (:func:`..jit_options.one_shot`; the same results)."""
    fn = compiled_population(space, rate_task(task), cfg, one_shot)

    def evaluate(pop: Program, instances: Instances):
        return fn(pop, instances.data, instances.keys)

    evaluate.compiled = fn
    return evaluate


def evaluate_population(pop: Program, space: Space, task: Task, cfg: InnerConfig, seeds: Sequence[int],
                        split: str = "search", devices: int | None = None, one_shot: bool = False):
    """Metrics {name: np.ndarray [P, S]} and learning curves [P, S, C] for a population of programs.

    ``devices``: shard the population axis over that many devices (None: do not shard; see distributed.py).
    The population is padded to a multiple of the device count and the padding is removed from the results.
    """
    inst = make_instances(task, seeds, split, cfg.steps)
    evaluate = make_evaluator(space, task, cfg, one_shot)
    n = int(np.asarray(pop.term_on).shape[0])
    if devices is None:
        metrics, curves = evaluate(jax.tree.map(jnp.asarray, pop), inst)
        return {k: np.asarray(v) for k, v in metrics.items()}, np.asarray(curves)
    mesh = dist.population_mesh(devices)
    padded = dist.pad_population(pop, dist.padded_size(n, mesh))
    metrics, curves = evaluate(dist.shard_population(padded, mesh), dist.replicate(inst, mesh))
    metrics, curves = dist.gather((metrics, curves))
    return {k: v[:n] for k, v in metrics.items()}, curves[:n]


def evaluate_rule(rule, task, seeds: int = 5, steps: int | None = None, split: str = "final", feedback: str = "fa",
                  network: str | None = None, lr: float | None = None, batch_size: int = 1,
                  readout_rule: str | None = None, readout_lr: float | None = None):
    """Score one resolved rule on a rate task over ``seeds`` seeds: ``({metric: {"mean", "std", "values"}},
    {"mean": [...], "std": [...]} learning curve over seeds, its "metric" and "unit", "network": spec, "lr": lr})``.

    The network is the task's default (or ``network``, e.g. ``64-100-10``) under ``feedback``; the learning rate
    and the running-mean time constants are the rule's defaults unless ``lr`` is given. ``readout_rule`` (a known
    rule name or formula, e.g. ``'fa'``) trains the readout layer instead, at ``readout_lr`` (default: that rule's
    default learning rate), and ``rule`` the hidden layers; the curve then also carries "readout_rule" and
    "readout_lr". ``rule`` may also be a known rule name, a formula or a rule ``.json`` file."""
    task = rate_task(task)
    rule = as_rule(rule)
    if rule.model != "rate":
        raise RuleError(f"rule '{rule.name}' is a spiking rule; task '{task.name}' is a rate task")
    seeds, steps, lr, readout_lr, batch_size = check_run_args(RuleError, seeds=seeds, steps=steps, split=split,
                                                              lr=lr, readout_lr=readout_lr, batch_size=batch_size)
    net = default_network(task.objective)
    if network:
        if not isinstance(network, str):
            raise RuleError(f"network must be a spec string such as '64-100-10', got {type(network).__name__}")
        net = parse_network_spec(network, task.n_in, task.n_out, net)
        check_widths("network", net.hidden, RuleError)
    lr = lr if lr is not None else float(rule.defaults.get("lr", net.lr))
    readout = {}
    if readout_rule is not None:
        try:
            ro = resolve_rule(readout_rule)
        except RuleError as exc:
            raise RuleError(f"readout rule: {str(exc).splitlines()[0]}") from None
        if ro.model != "rate":
            raise RuleError(f"readout rule '{ro.name}' is a {ro.model} rule; task '{task.name}' is a rate task")
        readout = {"readout_rule": readout_rule.strip(),
                   "readout_lr": float(readout_lr if readout_lr is not None else ro.defaults.get("lr", lr))}
    elif readout_lr is not None:
        raise RuleError("readout_lr needs readout_rule")
    net = net.with_(feedback=feedback, lr=lr, batch_size=batch_size,
                    tau_mean=float(rule.defaults.get("tau_mean", net.tau_mean)),
                    tau_theta=float(rule.defaults.get("tau_theta", net.tau_theta)), **readout)
    metrics, curves = evaluate_population(stack([rule.program]), rule.space, task, InnerConfig(network=net, steps=steps),
                                          range(seeds), split)
    summary = {k: _summary(v[0]) for k, v in sorted(metrics.items())}
    c = np.asarray(curves[0], np.float64)
    return summary, {"mean": [_f(x) for x in c.mean(0)], "std": [_f(x) for x in c.std(0)],
                     "metric": task.curve_metric, "unit": task.steps_unit,
                     "network": net.spec(task.n_in, task.n_out), "lr": lr, **readout}


def _summary(values) -> dict:
    a = np.asarray(values, np.float64)
    return {"mean": _f(a.mean()), "std": _f(a.std()), "values": [_f(x) for x in a]}


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
