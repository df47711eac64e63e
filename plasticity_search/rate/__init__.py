"""The rate model: MLPs trained online by a plasticity rule, with feedback pathways that deliver errors.

Mirrors :mod:`plasticity_search.spiking`:
* :func:`make_instances`, :func:`make_evaluator`, :func:`evaluate_rule` -- the evaluator contract shared with the
  spiking model (:mod:`plasticity_search.models`; rate_model.py), plus :func:`evaluate_population`;
* :class:`InnerConfig`, :class:`InnerLoop`, :data:`METRIC_SIGN` -- the online inner loop (online.py);
* :class:`NetworkConfig`, :class:`RateNet`, feedback pathways, :func:`parse_network_spec` -- the network (mlp.py).
"""
from .mlp import ACTIVATIONS, FEEDBACKS, INITS, NetworkConfig, NetworkError, RateNet, default_network, parse_network_spec
from .online import METRIC_SIGN, METRICS, InnerConfig, InnerLoop
from .rate_model import (evaluate_population, evaluate_rule, instance_keys, make_evaluator, make_instances,
                         model_config, rate_task, task_batch)
from .trajectory import weight_trajectory

__all__ = ["NetworkConfig", "RateNet", "parse_network_spec", "default_network", "NetworkError", "ACTIVATIONS",
           "FEEDBACKS", "INITS", "InnerConfig", "InnerLoop", "METRIC_SIGN", "METRICS", "make_instances",
           "make_evaluator", "evaluate_rule", "model_config", "evaluate_population", "instance_keys", "task_batch",
           "rate_task", "weight_trajectory"]
