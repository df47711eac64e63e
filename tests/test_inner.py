"""The rate inner loop: known answers, one compile per population, NaN containment, network shapes."""
import json
import subprocess
import sys
from dataclasses import dataclass

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from plasticity_search.rate import InnerConfig, InnerLoop, evaluate_population, task_batch, \
    instance_keys
from plasticity_search.rate.online import compiled_population
from plasticity_search.rate import NetworkConfig, RateNet, default_network, parse_network_spec
from plasticity_search.rate.mlp import NetworkError
from plasticity_search.rules import RATE_SPACE, RULES, Space, compile_formula, pad, random_population, stack
from plasticity_search.tasks import TaskData, make

SPACE = RATE_SPACE.resized(n_post=3, n_pre=3, n_terms=4)


def _pop(*names_or_formulas):
    progs = []
    for n in names_or_formulas:
        if n in RULES:
            p, s = RULES[n].compile()
        else:
            p, s = compile_formula(n, RATE_SPACE)
        progs.append(pad(p, s, SPACE))
    return stack(progs)


def test_fa_learns_digits_bp_at_least_fa_hebb_worse():
    """Known answer: FA online on digits (64-100-10, T=1000, 5 seeds) reaches >= 0.85 held-out accuracy."""
    task = make("digits")
    pop = _pop("fa", "hebb")
    res = {}
    for fb in ("fa", "bp"):
        cfg = InnerConfig(network=NetworkConfig(hidden=(100,), feedback=fb, lr=0.05), steps=1000)
        m, curves = evaluate_population(pop, SPACE, task, cfg, range(5), "final")
        res[fb] = m
        assert curves.shape == (2, 5, 20)
    fa_acc = res["fa"]["final_accuracy"][0].mean()
    assert fa_acc >= 0.85, fa_acc
    assert res["bp"]["final_accuracy"][0].mean() >= fa_acc - 0.01
    hebb = res["fa"]["final_accuracy"][1]
    assert np.nan_to_num(hebb, nan=0.0).mean() < fa_acc - 0.3


def test_oja_finds_first_principal_component():
    task = make("pca")
    cfg = InnerConfig(network=default_network("pca"), steps=2000)
    m, curves = evaluate_population(_pop("oja", "hebb"), SPACE, task, cfg, range(5), "final")
    assert m["pc1_alignment"][0].min() >= 0.99
    np.testing.assert_allclose(m["weight_norm"][0], 1.0, atol=0.05)
    assert curves[0, :, -1].mean() > curves[0, :, 0].mean()      # the alignment curve rises
    assert m["weight_norm"][1].mean() > 10                       # plain Hebb is unstable


def test_delta_rule_regression():
    task = make("teacher_student")
    cfg = InnerConfig(network=default_network("regression"), steps=1000)
    m, _ = evaluate_population(_pop("-e*x", "e*x", "0*e*x"), SPACE, task, cfg, range(3), "final")
    good, bad, none = (np.nan_to_num(m["final_mse"][i], nan=np.inf).mean() for i in range(3))
    assert good < 0.5 * none
    assert bad > none


def test_one_compile_per_population_and_nan_contained():
    task = make("digits")
    cfg = InnerConfig(network=NetworkConfig(hidden=(16,)), steps=50, curve_points=5)
    compiled_population.cache_clear()
    fn = compiled_population(SPACE, task, cfg)
    data = task_batch(task, [0, 1], "search", 50)
    keys = instance_keys([0, 1], "search")
    out = []
    for seed in range(3):
        pop = random_population(jax.random.key(seed), SPACE, 8, 3)
        out.append(fn(pop, data, keys))
    assert fn._cache_size() == 1                                  # three populations, one compile
    # an exploding rule next to FA: FA's metrics are the same as when it runs alone
    explode = _pop("fa", "1e6*x*y*w**2")
    alone = _pop("fa", "fa")
    m1, _ = fn(explode, data, keys)
    m2, _ = fn(alone, data, keys)
    assert np.isnan(np.asarray(m1["final_accuracy"][1])).all()
    assert np.asarray(m1["finite"][1]).max() == 0
    # every metric of candidate 0 (FA) is unaffected by its exploding neighbour
    chex.assert_trees_all_close({k: v[0] for k, v in m1.items()}, {k: v[0] for k, v in m2.items()})
    chex.assert_tree_shape_prefix(m1, (2,))


@dataclass(frozen=True)
class _BigTask:
    """A 784-input, 47-class task shape (EMNIST-balanced-like) with random data, for shape tests only."""
    name: str = "big"
    kind: str = "rate"
    objective: str = "classification"
    n_in: int = 784
    n_out: int = 47
    default_steps: int = 5


@pytest.mark.parametrize("shape,feedbacks", [
    ((784, (170, 130, 100, 70), 47), ("fa",)),
    ((64, (32, 24, 16), 10), ("bp", "fa", "dfa", "sign")),
])
def test_deep_networks_all_feedbacks(shape, feedbacks):
    n_in, hidden, n_out = shape
    task = _BigTask(n_in=n_in, n_out=n_out)
    rng = np.random.default_rng(0)
    y = np.eye(n_out, dtype=np.float32)[rng.integers(0, n_out, 5)]
    data = TaskData(rng.random((5, n_in), np.float32), y, rng.random((7, n_in), np.float32), y[:1].repeat(7, 0),
                    np.zeros(n_in, np.float32))
    data = jax.tree.map(lambda a: jnp.asarray(a)[None], data)
    for fb in feedbacks:
        net = NetworkConfig(hidden=hidden, activation="softplus", feedback=fb)
        loop = InnerLoop(SPACE, task, InnerConfig(network=net, steps=5, curve_points=5))
        assert RateNet(n_in, n_out, "classification", net).sizes == (n_in, *hidden, n_out)
        prog = jax.tree.map(lambda a: a[0], _pop("shervani_tabar"))
        m, c = jax.jit(jax.vmap(loop.evaluate_one, in_axes=(None, 0, 0)))(prog, data, instance_keys([0], "search"))
        assert float(m["finite"][0]) == 1.0


@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid", "softplus", "linear"])
def test_activations_and_batch(act):
    task = make("yinyang")
    cfg = InnerConfig(network=NetworkConfig(hidden=(20,), activation=act, batch_size=4), steps=64, curve_points=4)
    m, c = evaluate_population(_pop("fa"), SPACE, task, cfg, [0], "search")
    assert m["finite"][0, 0] == 1.0 and c.shape == (1, 1, 4)


def test_network_spec_parsing():
    assert parse_network_spec("64-100-10", 64, 10).hidden == (100,)
    assert parse_network_spec("170-130", 784, 47).hidden == (170, 130)
    assert parse_network_spec("64-10", 64, 10).hidden == ()
    assert parse_network_spec("100:relu", 64, 10).activation == "relu"
    for bad, msg in (("64-100-11", "does not match"), ("a-b", "malformed"), ("100:foo", "unknown activation"),
                     ("0", ">= 1")):
        with pytest.raises(NetworkError, match=msg):
            parse_network_spec(bad, 64, 10)


def test_quickstart_space_expresses_every_rate_rule():
    with open("search_spaces/digits_online.yaml") as f:
        space = Space.from_dict(yaml.safe_load(f)["space"])
    for name, rule in RULES.items():
        if rule.model != "rate":
            continue
        prog, small = rule.compile()
        pad(prog, small, space)                         # raises if it does not fit
    st = RULES["shervani_tabar"]
    prog, small = st.compile({"th0": 1.0, "th1": 0.3, "th2": 0.2})
    pad(prog, small, space)


def test_evaluate_cli_json():
    r = subprocess.run([sys.executable, "-m", "plasticity_search", "evaluate", "oja", "--task", "pca", "--seeds", "2",
                        "--steps", "500", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["rule"] == "oja" and d["task"] == "pca" and d["feedback"] == "fa"
    assert set(d["metrics"]["pc1_alignment"]) == {"mean", "std", "values"}
    assert len(d["metrics"]["pc1_alignment"]["values"]) == 2


@pytest.mark.parametrize("args,needle", [
    (["evaluate", "fa", "--task", "nope"], "unknown task"),
    (["evaluate", "fa", "--task", "digits", "--network", "3-4-5"], "does not match the task"),
    (["evaluate", "fa", "--task", "idx:/no/such/dir"], "not found"),
    (["evaluate", "fa", "--task", "digits", "--seeds", "0"], "--seeds"),
    (["evaluate", "fa", "--task", "digits", "--feedback", "xx"], "invalid choice"),
])
def test_evaluate_bad_input(args, needle):
    r = subprocess.run([sys.executable, "-m", "plasticity_search", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_plastic_feedback_rule_kolen_pollack_aligns_B_with_W():
    """A second rule for the feedback weights: Kolen-Pollack drives B towards W^T; plain FA leaves B fixed."""
    task = make("digits")
    data = jax.tree.map(lambda a: a[0], task_batch(task, [0], "final", 600))
    cos = {}
    for rule, fr in (("fa", None), ("kolen_pollack", "kolen_pollack")):
        p, s = RULES[rule].compile()
        loop = InnerLoop(s, task, InnerConfig(network=NetworkConfig(hidden=(30, 20), feedback_rule=fr), steps=600))
        st0 = loop.init(jax.random.key(0))
        st, _ = jax.jit(loop.run)(jax.tree.map(jnp.asarray, p), st0, data.x_stream, data.y_stream)
        if fr is None:
            for B0, B1 in zip(st0.net.B, st.net.B):
                np.testing.assert_array_equal(np.asarray(B0), np.asarray(B1))
        cos[rule] = [float(jnp.sum(B * W[:, :-1].T) / jnp.linalg.norm(B) / jnp.linalg.norm(W[:, :-1]))
                     for B, W in zip(st.net.B, st.net.W[1:])]
    assert all(k > f + 0.2 for k, f in zip(cos["kolen_pollack"], cos["fa"])), cos
    with pytest.raises(NetworkError, match="needs feedback 'fa'"):
        NetworkConfig(feedback="bp", feedback_rule="kolen_pollack")
