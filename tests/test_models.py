"""The evaluator contract (plasticity_search/models.py): the rate and the spiking model have the same functions
with the same leading arguments, and the search evaluates both through it."""
import inspect

import numpy as np
import pytest

from plasticity_search.models import MODELS, model_name, model_of
from plasticity_search.rules.resolve import resolve_rule
from plasticity_search.rules.program import stack
from plasticity_search.tasks import Instances, make

CONTRACT = {
    "make_instances": ["task", "seeds", "split", "steps"],
    "model_config": ["settings", "steps"],
    "make_evaluator": ["space", "task", "cfg"],
    "evaluate_rule": ["rule", "task", "seeds", "steps", "split", "feedback"],
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_implements_the_contract(name):
    model = MODELS[name]
    for fn, params in CONTRACT.items():
        sig = list(inspect.signature(getattr(model, fn)).parameters)
        assert sig[:len(params)] == params, f"{name}.{fn}{sig}"


def test_model_of_task():
    assert model_name(make("digits")) == "rate" and model_name(make("stdp_pattern")) == "spiking"
    assert model_of(make("spiking_teacher")) is MODELS["spiking"]


@pytest.mark.parametrize("task_name,rule,settings", [
    ("teacher_student", "fa", None),
    ("spiking_teacher", "bp_stdp", {"lr": 0.01}),
])
def test_both_models_evaluate_through_the_contract(task_name, rule, settings):
    """make_instances -> make_evaluator -> (metrics [P, S], curves) agrees with evaluate_rule on the same seeds."""
    task = make(task_name)
    model = model_of(task)
    r = resolve_rule(rule)
    if settings is None:
        from plasticity_search.rate import default_network
        net = default_network(task.objective)
        settings = net.with_(lr=float(r.defaults.get("lr", net.lr)))
    else:
        settings = dict(r.defaults or {})
    inst = model.make_instances(task, [0, 1], "select", 200)
    assert isinstance(inst, Instances) and np.shape(inst.keys)[0] == 2
    evaluate = model.make_evaluator(r.space, task, model.model_config(settings, 200))
    metrics, curves = evaluate(stack([r.program, r.program]), inst)
    assert all(np.shape(v) == (2, 2) for v in metrics.values())
    assert np.shape(curves)[:2] == (2, 2) and np.shape(curves)[2] >= 1
    summary, curve = model.evaluate_rule(r, task, seeds=2, steps=200, split="select")
    np.testing.assert_allclose(curve["mean"], np.mean(np.asarray(curves, np.float64)[0], 0), rtol=1e-5)
    assert curve["metric"] and curve["unit"]
    metric = task.metrics[0] if model_name(task) == "spiking" else "final_mse"
    np.testing.assert_allclose(summary[metric]["values"], np.asarray(metrics[metric])[0], rtol=1e-5)
