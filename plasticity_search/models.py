"""The evaluator contract shared by the two models, and the registry of models (name -> implementation).

A model is a package with these functions (``rate`` and ``spiking`` implement them; tests/test_models.py checks
that their signatures agree)::

    inst = model.make_instances(task, seeds, split="search", steps=None)   # tasks.Instances(data [S, ...], keys [S])
    cfg = model.model_config(settings, steps)     # the model's own settings from a run's (network / spiking)
    evaluate = model.make_evaluator(space, task, cfg)
    metrics, curves = evaluate(pop, inst)         # {metric: [P, S]}, learning curves [P, S, C]
    summary, curve = model.evaluate_rule(rule, task, seeds=5, steps=None, split="final", feedback="fa")
                                                  # one resolved rule: {metric: {mean, std, values}},
                                                  # curve {mean, std, metric, unit} (rate: also network, lr)

``evaluate`` is one compiled call per population shape (vmap over the population and the instances, scan over
time); a candidate that diverges gets NaN metrics and ``finite = 0``, nothing raises.
"""
from __future__ import annotations

from . import rate, spiking

MODELS = {"rate": rate, "spiking": spiking}


def model_name(task) -> str:
    """The model that runs ``task``: ``spiking`` for spiking tasks, ``rate`` for every other."""
    return "spiking" if getattr(task, "kind", None) == "spiking" else "rate"


def model_of(task):
    """The package implementing the contract for ``task``."""
    return MODELS[model_name(task)]
