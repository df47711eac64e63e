"""The spiking model's side of the evaluator contract (:mod:`plasticity_search.models`): a population evaluator
for the search, and one known rule for the CLI. The rate model (:mod:`plasticity_search.rate.rate_model`) has the
same three functions with the same arguments.

Population evaluator (one compile per population shape)::

    from plasticity_search.spiking import make_evaluator, make_instances
    evaluate = make_evaluator(space, task, cfg)          # cfg: dict / EvalConfig / None (see EvalConfig)
    inst = make_instances(task, seeds=range(4), split="search", steps=None)
    metrics, curves = evaluate(pop, inst)                # or evaluate(pop, inst, hyper)
    # metrics: dict name -> jax.Array [P, S]; names = task.metrics + ("finite",)
    # curves: jax.Array [P, S, C], what the network did while it learned, in C windows (spiking/online_curves.py)

* ``pop``: a :class:`~plasticity_search.rules.program.Program` of ``space`` with a leading population axis P on
  every field (e.g. ``random_population(key, space, P)``, or ``stack([pad(p, src, space), ...])``).
* ``inst``: :class:`Instances` ``(data, keys)``: the task's ``TaskData`` stacked over S seeds (JAX arrays with a
  leading axis S) and the S instance keys (:func:`instance_key`).
* ``hyper``: optional :class:`~plasticity_search.spiking.plasticity.RuleHyper` whose fields are scalars or [P]
  arrays (per-candidate learning rates / time constants / bounds); default: from ``cfg``.
The call is ``jit(vmap_P(vmap_S(simulate)))`` with ``lax.scan`` over time inside; candidates never interact, a
candidate whose weights or metrics are not finite gets NaN metrics and ``finite = 0``; nothing raises.

Known rule (the ``evaluate`` CLI calls this for tasks of kind 'spiking')::

    evaluate_rule(rule, "stdp_pattern", seeds=5, steps=None, split="final", feedback="fa")
    -> ({"snr": {"mean": ..., "std": ..., "values": [...]}, "snr_before": {...}, "rate_hz": {...},
         "finite": {...}}, {"mean": [...], "std": [...], "metric": ..., "unit": ...})     # the learning curve
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import jit_options
from ..rules.program import Program, RuleError, Space
from ..tasks import Instances, TaskData, make
from ..tasks.base import SPLIT_OFFSETS, check_seed, check_split
from ..tasks.spike_tasks import SpikingTask
from .simulate import metric_names, simulate, train
from .network import FEEDBACKS
from .plasticity import RuleHyper, rule_hyper

__all__ = ["EvalConfig", "Instances", "make_instances", "make_evaluator", "evaluate_rule", "model_config",
           "spiking_task", "instance_key", "trained_weights"]


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluator settings. ``rule_defaults`` are a rule's simulation defaults (lr, tau_plus, tau_minus, tau_x,
    tau_y, tau_elig, w_bounds), as in the registry; for a search they apply to every candidate."""

    rule_defaults: tuple = ()          # sorted (key, value) pairs; built from a dict by :meth:`from_any`
    feedback: str = "fa"

    @classmethod
    def from_any(cls, cfg) -> "EvalConfig":
        if cfg is None:
            return cls()
        if isinstance(cfg, EvalConfig):
            return cfg
        d = dict(cfg)
        feedback = d.pop("feedback", "fa")
        rd = dict(d.pop("rule_defaults", {}) or {})
        rd.update(d)
        return cls(_freeze(rd), feedback)

    @property
    def defaults(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.rule_defaults}


def _freeze(d: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items()))


def model_config(settings, steps: int | None = None) -> EvalConfig:
    """The model's settings from a run's: ``settings`` is the run's spiking settings (dict / EvalConfig / None);
    the number of steps is the instances' (:func:`make_instances`)."""
    return EvalConfig.from_any(settings)


def instance_key(seed: int, split: str):
    """The JAX key of one task instance: a function of (seed, split) only (disjoint per split)."""
    return jax.random.key(check_seed(seed) + SPLIT_OFFSETS[check_split(split)])


def spiking_task(task) -> SpikingTask:
    t = make(task) if isinstance(task, str) else task
    if not isinstance(t, SpikingTask):
        raise RuleError(f"task '{getattr(t, 'name', t)}' is not a spiking task")
    return t


def make_instances(task, seeds: Sequence[int] = (0,), split: str = "search", steps: int | None = None) -> Instances:
    """Sample the task for every seed (numpy, deterministic) and stack it with the instance keys."""
    task = spiking_task(task)
    seeds = list(seeds)
    data = task.sample_batch(seeds, split, steps)
    keys = jnp.stack([instance_key(s, split) for s in seeds])
    return Instances(TaskData(*(jnp.asarray(a) for a in data)), keys)


@functools.lru_cache(maxsize=32)
def _compiled(space: Space, task: SpikingTask, feedback: str, one_shot: bool = False):
    def one(prog, hyper, data, key):
        return simulate(task, space, prog, hyper, data, key, feedback)

    per_seed = jax.vmap(one, in_axes=(None, None, 0, 0))
    return jax.jit(jax.vmap(per_seed, in_axes=(0, 0, None, None)), compiler_options=jit_options.one_shot(one_shot))


def make_evaluator(space: Space, task, cfg=None, one_shot: bool = False):
    """``evaluate(pop, instances, hyper=None) -> ({metric: [P, S]}, curves [P, S, C])`` (see the module docstring).
    ``one_shot``: compiled for one or two calls (:func:`..jit_options.one_shot`; the same results)."""
    task = spiking_task(task)
    cfg = EvalConfig.from_any(cfg)
    if cfg.feedback not in FEEDBACKS:
        raise RuleError(f"feedback must be one of {', '.join(FEEDBACKS)}, got '{cfg.feedback}'")
    base = rule_hyper(cfg.defaults, dt=task.dt)
    fn = _compiled(space, task, cfg.feedback, one_shot)

    def evaluate(pop: Program, instances: Instances, hyper: RuleHyper | None = None) -> tuple:
        P = int(np.shape(pop.term_on)[0])
        h = base if hyper is None else hyper
        h = RuleHyper(*[jnp.broadcast_to(jnp.asarray(x, jnp.float32), (P,)) for x in h])
        return fn(Program(*[jnp.asarray(x) for x in pop]), h, instances.data, instances.keys)

    evaluate.task = task
    evaluate.space = space
    evaluate.compiled = fn               # the jitted vmap(vmap(simulate)); ._cache_size() counts compiles
    evaluate.metric_names = metric_names(task)
    return evaluate


def evaluate_rule(rule, task, seeds: int = 5, steps: int | None = None, split: str = "final",
                  feedback: str = "fa", lr: float | None = None) -> tuple[dict[str, dict], dict]:
    """Score one rule (a ResolvedRule) on a spiking task (a name or a task): ``({metric: {"mean": m, "std": s,
    "values": [per seed]}}, curve)`` over ``seeds`` seeds; ``curve``: ``{"mean": [...], "std": [...]}`` over seeds
    at each window of the training stream (None where a seed is not finite, as the metrics, or where a window of
    a detection task holds no pattern segment), with its ``"metric"`` and the ``"unit"`` of the task's steps
    (:mod:`.online_curves`).

    The rule's simulation defaults (lr, trace time constants, w_bounds) come from ``rule.defaults`` (a run's
    rule carries the run's spiking settings; a formula has none); ``lr`` replaces the learning rate. Metrics:
    the task's (``task.metrics``) plus ``finite`` (fraction of seeds where everything stayed finite); a metric's
    mean and std are NaN if any seed was not finite. ``rule`` may also be a known rule name, a formula or a rule
    ``.json`` file.
    """
    from ..limits import check_run_args
    from ..rules.resolve import as_rule

    rule = as_rule(rule)
    if rule.model != "spiking":
        raise RuleError(f"rule '{rule.name}' is a rate rule; task '{getattr(task, 'name', task)}' is a spiking task")
    seeds, steps, lr, _, _ = check_run_args(RuleError, seeds=seeds, steps=steps, split=split, lr=lr)
    task = spiking_task(task)
    inst = make_instances(task, range(seeds), split, steps)
    defaults = dict(rule.defaults or {})
    if lr is not None:
        defaults["lr"] = float(lr)
    cfg = EvalConfig(_freeze(defaults), feedback)
    pop = Program(*[np.asarray(x)[None] for x in rule.program])
    out, curves = make_evaluator(rule.space, task, cfg)(pop, inst)
    res = {}
    for k, v in out.items():
        a = np.asarray(v, np.float64)[0]
        res[k] = {"mean": float(a.mean()), "std": float(a.std()), "values": [_f(x) for x in a]}
    c = np.asarray(curves, np.float64)[0]
    return res, {"mean": [_f(x) for x in c.mean(0)], "std": [_f(x) for x in c.std(0)],
                 "metric": task.curve_metric, "unit": task.steps_unit}


def trained_weights(rule, task, seed: int = 0, steps: int | None = None, split: str = "final",
                    feedback: str = "fa") -> list[np.ndarray]:
    """Every layer's weights [n_post, n_pre] after ``rule`` learned one instance of the spiking ``task`` (the
    instance ``seed`` of ``split``: the data, spikes and initial weights the evaluator uses), under the rule's
    simulation defaults (a run's rule: the run's settings)."""
    from ..limits import check_run_args
    from ..rules.resolve import as_rule

    rule = as_rule(rule)
    if rule.model != "spiking":
        raise RuleError(f"rule '{rule.name}' is a rate rule; task '{getattr(task, 'name', task)}' is a spiking task")
    check_run_args(RuleError, seeds=1, steps=steps, split=split)
    task = spiking_task(task)
    data = TaskData(*(jnp.asarray(a) for a in task.sample(seed, split, steps)))
    hyper = rule_hyper(rule.defaults or {}, dt=task.dt)
    ws = jax.jit(lambda d, k: train(task, rule.space, rule.program, hyper, d, k, feedback))(
        data, instance_key(seed, split))
    return [np.asarray(w) for w in ws]


def _f(x) -> float | None:
    return float(x) if np.isfinite(x) else None
