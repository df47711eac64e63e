"""Spiking networks: LIF layers, encoders, traces, the rule application order and evaluators.

The spiking tasks (spiking_digits, spiking_yinyang, stdp_pattern, spiking_teacher, spiking_reward) live with the
other tasks (:mod:`plasticity_search.tasks.spiking`), which registers them; ``SPIKING_TASKS`` is re-exported here.

Public API:
* :func:`pairing_dw`, :func:`pairing_run`, :func:`analytic_window` -- the STDP pairing protocol (pairing.py);
* :func:`evaluate_rule` -- one known rule on a spiking task, {metric: {mean, std}} (evaluate.py);
* :func:`make_evaluator`, :func:`make_instances`, :class:`EvalConfig`, :class:`Instances` -- the population
  evaluator for the search (evaluate.py; its docstring documents the exact signature);
* building blocks: :mod:`.lif`, :mod:`.encoders`, :mod:`.plasticity`, :mod:`.network`, :mod:`.inner`.
"""
from .evaluate import EvalConfig, Instances, evaluate_rule, make_evaluator, make_instances, spiking_task
from .lif import LIFParams, LIFState, lif_init, lif_step
from .pairing import analytic_window, pairing_dw, pairing_run
from .plasticity import RuleHyper, rule_hyper
from .tasks import SPIKING_TASKS, instance_key

__all__ = ["pairing_dw", "pairing_run", "analytic_window", "evaluate_rule", "make_evaluator", "make_instances",
           "EvalConfig", "Instances", "spiking_task", "LIFParams", "LIFState", "lif_init", "lif_step", "RuleHyper",
           "rule_hyper", "SPIKING_TASKS", "instance_key"]
