"""Per-layer rules (issue 16 item 14): a fixed readout rule (``network.readout_rule``) or one rule per layer
(``network.layer_rules``) next to the searched/evaluated rule.

Known answers: a readout rule equal to the main rule gives exactly the single-rule results; one update by hand (Oja
in the hidden layer, FA at the readout, each at its own learning rate); a frozen hidden layer stays at its initial
weights; Oja alone is at chance on digits while Oja in the hidden layer with FA at the readout learns. Config
validation: one-line errors naming the key."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search import cli
from plasticity_search.rate import InnerConfig, InnerLoop, NetworkConfig, NetworkError, evaluate_population
from plasticity_search.rate.rate_model import make_instances
from plasticity_search.rules.program import stack
from plasticity_search.rules.resolve import resolve_rule
from plasticity_search.search import ConfigError, load_config
from plasticity_search.tasks import make

DIGITS = make("digits")


def _pop(name):
    r = resolve_rule(name)
    return stack([r.program]), r.space


def test_readout_rule_equal_to_main_rule_is_bit_identical():
    pop, space = _pop("fa")
    results = []
    for net in (NetworkConfig(hidden=(16,)), NetworkConfig(hidden=(16,), readout_rule="fa")):
        m, c = evaluate_population(pop, space, DIGITS, InnerConfig(network=net, steps=120), range(2), "final")
        results.append((m, c))
    (m0, c0) = results[0]
    assert m0["final_accuracy"].mean() > 0.2           # above chance (0.1): the comparison is not vacuous
    for m, c in results[1:]:
        for k in m0:
            np.testing.assert_array_equal(m[k], m0[k])
        np.testing.assert_array_equal(c, c0)


def _one_step(net, rule):
    r = resolve_rule(rule)
    loop = InnerLoop(r.space, DIGITS, InnerConfig(network=net, steps=10))
    inst = make_instances(DIGITS, [0], "search", 10)
    x, y = inst.data.x_stream[0, :1], inst.data.y_stream[0, :1]
    st = loop.init(inst.keys[0])
    st2, _ = jax.jit(loop.step)(jax.tree.map(jnp.asarray, r.program), st, x, y)
    return loop, st, st2, x[0], y[0]


def test_one_update_by_hand_oja_hidden_fa_readout():
    net = NetworkConfig(hidden=(8,), lr=0.003, readout_rule="fa", readout_lr=0.07)
    loop, st, st2, x, y = _one_step(net, "oja")
    W0, W1 = (np.asarray(w, np.float64) for w in st.net.W)
    fwd = loop.net.forward(st.net.W, x)
    e = np.asarray(loop.net.errors(st.net, fwd, y)[-1], np.float64)
    x0 = np.asarray(fwd.acts[0], np.float64)          # input with the bias neuron
    h = np.asarray(fwd.posts[0], np.float64)
    h1 = np.asarray(fwd.acts[1], np.float64)          # hidden activity with the bias neuron
    want0 = W0 + 0.003 * (h[:, None] * x0[None, :] - (h ** 2)[:, None] * W0)     # Oja: y (x - y w)
    want1 = W1 + 0.07 * (-e[:, None] * h1[None, :])                                 # FA: -e x
    np.testing.assert_allclose(np.asarray(st2.net.W[0]), want0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(st2.net.W[1]), want1, rtol=1e-5, atol=1e-6)
    assert not np.allclose(want0, W0) and not np.allclose(want1, W1)


def test_layer_rules_equal_to_main_rule_give_the_same_update():
    """Equal up to float32 rounding: the fixed rule's program is a compile-time constant and XLA may fuse its
    multiply-adds differently (1 ulp); for ``fa`` (one product) the results are bit-identical (test above)."""
    _, st, plain, _, _ = _one_step(NetworkConfig(hidden=(8, 6)), "oja")
    _, _, mixed, _, _ = _one_step(NetworkConfig(hidden=(8, 6), layer_rules=("oja", None, "oja")), "oja")
    for a, b in zip(plain.net.W, mixed.net.W):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert not np.array_equal(np.asarray(plain.net.W[1]), np.asarray(st.net.W[1]))


def test_layer_rules_freeze_a_layer():
    """``layer_rules: ["0*x", null]``: the hidden layer keeps its initial weights, the readout learns by FA."""
    net = NetworkConfig(hidden=(8,), layer_rules=("0*x", None))
    _, st, st2, _, _ = _one_step(net, "fa")
    np.testing.assert_array_equal(np.asarray(st2.net.W[0]), np.asarray(st.net.W[0]))
    assert not np.array_equal(np.asarray(st2.net.W[1]), np.asarray(st.net.W[1]))


def test_oja_hidden_fa_readout_beats_chance_where_oja_alone_does_not():
    pop, space = _pop("oja")
    net = NetworkConfig(hidden=(32,), lr=1e-4)
    seeds = range(3)
    alone, _ = evaluate_population(pop, space, DIGITS, InnerConfig(network=net, steps=300), seeds, "final")
    mixed, _ = evaluate_population(pop, space, DIGITS, InnerConfig(network=net.with_(readout_rule="fa",
                                                                                     readout_lr=0.05), steps=300),
                                   seeds, "final")
    a, b = alone["final_accuracy"][0], mixed["final_accuracy"][0]
    print("oja alone", a, "oja + fa readout", b)
    assert a.max() < 0.2                 # 10 classes: chance is 0.1
    assert b.mean() > 0.45 and (b - a).min() > 0.25


def test_network_config_errors():
    for kw, needle in [(dict(hidden=(), readout_rule="fa"), "at least one hidden layer"),
                       (dict(readout_lr=0.1), "readout_lr needs readout_rule"),
                       (dict(readout_rule="fa", layer_rules=(None, "fa")), "not both"),
                       (dict(hidden=(10, 10), layer_rules=(None, "fa")), "one entry per layer (3"),
                       (dict(layer_rules=("fa", "fa")), "at least one entry null"),
                       (dict(readout_rule="  "), "readout_rule must be a rule")]:
        with pytest.raises(NetworkError, match=None) as exc:
            NetworkConfig(**kw)
        assert needle in str(exc.value) and "\n" not in str(exc.value)
    # a list is made a tuple: the config stays hashable (a jit static argument)
    assert hash(NetworkConfig(layer_rules=[None, "fa"])) == hash(NetworkConfig(layer_rules=(None, "fa")))


BASE = {"tasks": {"search": [{"task": "digits", "seeds": 1, "steps": 50}]},
        "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "mul"], "syn": ["1", "w"],
                  "n_post": 1, "n_pre": 0, "n_terms": 2},
        "network": {"hidden": [20]}}


def _cfg(network, **more):
    return load_config({**BASE, "network": {**BASE["network"], **network}, **more})


def test_config_records_the_readout_rule():
    cfg = _cfg({"readout_rule": "fa", "readout_lr": 0.05})
    d = cfg.to_dict()
    assert d["network"]["readout_rule"] == "fa" and d["network"]["readout_lr"] == 0.05
    assert d["network"]["layer_rules"] is None
    assert load_config(json.loads(json.dumps(d))) == cfg
    net = cfg.network_config()
    assert net.layer_rule_specs() == (None, ("fa", 0.05))
    cfg = _cfg({"layer_rules": [None, "-e*x"]})
    assert cfg.network_config().layer_rules == (None, "-e*x")
    plain = _cfg({}).to_dict()["network"]       # unset: written out as null, nothing else changes
    assert plain["readout_rule"] is None and plain["readout_lr"] is None and plain["layer_rules"] is None


@pytest.mark.parametrize("network, key, needle", [
    ({"readout_rule": "nonsense"}, "network.readout_rule", "unknown rule 'nonsense'"),
    ({"readout_rule": "stdp_add"}, "network.readout_rule", "spiking rule"),
    ({"readout_rule": "runs/x:0"}, "network.readout_rule", "RUN_DIR:RANK"),
    ({"readout_rule": "e*("}, "network.readout_rule", ""),
    ({"readout_rule": 3}, "network.readout_rule", "expected str or null"),
    ({"readout_rule": "fa", "hidden": []}, "network.readout_rule", "at least one hidden layer"),
    ({"readout_rule": "fa", "layer_rules": [None, "fa"]}, "network.readout_rule", "not both"),
    ({"readout_lr": 0.1}, "network.readout_lr", "needs readout_rule"),
    ({"readout_rule": "fa", "readout_lr": -1}, "network.readout_lr", "> 0"),
    ({"layer_rules": [None]}, "network.layer_rules", "one entry per layer"),
    ({"layer_rules": ["fa", "fa"]}, "network.layer_rules", "at least one entry null"),
    ({"layer_rules": [None, 1]}, "network.layer_rules", "expected list of str | None or null"),
    ({"layer_rules": [None, "tx*sy"]}, "network.layer_rules[1]", "spiking"),
    ({"feedback_rule": "nonsense", "feedback": "fa"}, "network.feedback_rule", "unknown rule"),
])
def test_config_errors_are_one_line_and_name_the_key(network, key, needle):
    with pytest.raises(ConfigError) as exc:
        _cfg(network)
    msg = str(exc.value)
    assert msg.startswith(key + ":") and needle in msg and "\n" not in msg, msg


def test_generalization_conditions_with_layer_rules():
    from plasticity_search.search.generalize import auto_conditions
    cfg = _cfg({"layer_rules": ["0*x", None]})
    deeper = next(c for c in auto_conditions(cfg) if c.get("name") == "one layer deeper")
    assert deeper["network"] == {"hidden": [20, 20], "layer_rules": ["0*x", "0*x", None]}
    cfg.network_config().with_(hidden=(20, 20), layer_rules=tuple(deeper["network"]["layer_rules"]))
    with pytest.raises(ConfigError, match=r"^generalization.conditions\[0\].network: layer_rules needs one entry"):
        _cfg({"layer_rules": ["0*x", None]},
             generalization={"conditions": [{"task": "digits", "network": {"hidden": [10, 10]}}]})


def test_evaluate_cli_readout_rule(capsys):
    rc = cli.main(["evaluate", "oja", "--task", "digits", "--network", "8", "--readout-rule", "fa", "--steps", "20",
                   "--seeds", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["readout_rule"] == "fa" and out["readout_lr"] == 0.05 and out["lr"] == 0.005
    for argv, needle in [(["--readout-rule", "nonsense"], "readout rule: unknown rule 'nonsense'"),
                         (["--readout-lr", "0.1"], "readout_lr needs readout_rule"),
                         (["--readout-rule", "fa", "--readout-lr", "-1"], "--readout-lr must be"),
                         (["--readout-rule", "fa", "--network", "-"], "at least one hidden layer")]:
        rc = cli.main(["evaluate", "oja", "--task", "digits", "--steps", "5", "--seeds", "1", *argv])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and needle in err and "\n" not in err, err
