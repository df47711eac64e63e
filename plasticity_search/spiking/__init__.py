"""Spiking networks: LIF layers, encoders, traces, the rule application order and evaluators.

The spiking tasks (spiking_digits, spiking_yinyang, stdp_pattern, spiking_teacher, spiking_reward) live with the
other tasks (:mod:`plasticity_search.tasks.spike_tasks`), which registers them; ``SPIKING_TASKS`` is re-exported here.

Public API:
* :func:`pairing_dw`, :func:`pairing_run`, :func:`analytic_window` -- the STDP pairing protocol (pairing.py);
* :func:`make_instances`, :func:`make_evaluator`, :func:`evaluate_rule` -- the evaluator contract shared with the
  rate model (:mod:`plasticity_search.models`; spiking_model.py, whose docstring documents the exact signatures),
  with :class:`EvalConfig` (the model's settings) and :func:`instance_key`; :func:`trained_weights` (one rule's
  weights after one instance);
* building blocks: :mod:`.lif`, :mod:`.encoders`, :mod:`.plasticity`, :mod:`.network`, :mod:`.simulate`.
"""
from .spiking_model import (EvalConfig, Instances, evaluate_rule, instance_key, make_evaluator, make_instances,
                            model_config, spiking_task, trained_weights)
from .lif import LIFParams, LIFState, lif_init, lif_step
from .pairing import analytic_window, pairing_dw, pairing_run
from .plasticity import RuleHyper, rule_hyper
from ..tasks.spike_tasks import SPIKING_TASKS

__all__ = ["pairing_dw", "pairing_run", "analytic_window", "evaluate_rule", "make_evaluator", "make_instances",
           "EvalConfig", "Instances", "spiking_task", "LIFParams", "LIFState", "lif_init", "lif_step", "RuleHyper",
           "rule_hyper", "SPIKING_TASKS", "instance_key", "model_config", "trained_weights"]
