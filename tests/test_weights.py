"""Weights (issue 16, item 16): the weight trajectory of one rule on one task is the rate inner loop's own
(first snapshot = the evaluator's initial weights, last = the weights training ends with, metrics of those = the
evaluator's), and a run's report carries the weight histograms of the chosen rule and FA."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from plasticity_search import rate
from plasticity_search.rules.program import RuleError, stack
from plasticity_search.rules.resolve import resolve_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_trajectory_is_the_inner_loop_and_the_evaluator():
    """Oja's rule on PCA (one neuron): snapshots at 0, 40, 80, 120 and the last update (150)."""
    traj = rate.weight_trajectory("oja", "pca", seed=3, steps=150, every=40)
    assert traj["update"].tolist() == [0, 40, 80, 120, 150] and set(traj) == {"update", "W0"}
    assert traj["W0"].shape == (5, 1, 10)

    rule, task = resolve_rule("oja"), rate.rate_task("pca")
    net = rate.trajectory.trajectory_network(rule, task)
    cfg = rate.InnerConfig(network=net, steps=150)
    loop = rate.InnerLoop(rule.space, task, cfg)
    data = rate.task_batch(task, [3], "final", 150)
    st0 = loop.init(rate.instance_keys([3], "final")[0])
    prog = jax.tree.map(jnp.asarray, rule.program)
    run = jax.jit(loop.run)
    st, _ = run(prog, st0, data.x_stream[0], data.y_stream[0])
    np.testing.assert_array_equal(traj["W0"][0], np.asarray(st0.net.W[0]))          # the initial weights
    np.testing.assert_allclose(traj["W0"][-1], np.asarray(st.net.W[0]), rtol=1e-6, atol=1e-7)   # the final ones
    st40, _ = run(prog, st0, data.x_stream[0, :40], data.y_stream[0, :40])
    np.testing.assert_allclose(traj["W0"][1], np.asarray(st40.net.W[0]), rtol=1e-6, atol=1e-7)
    assert not np.allclose(traj["W0"][0], traj["W0"][-1])                             # it learned

    # the evaluator's metrics for that seed are the metrics of the trajectory's last weights
    metrics, _ = rate.evaluate_population(stack([rule.program]), rule.space, task, cfg, [3], "final")
    w = traj["W0"][-1][0]
    pc1 = np.asarray(data.pc1[0])
    assert float(metrics["weight_norm"][0, 0]) == pytest.approx(np.linalg.norm(w), rel=1e-5)
    assert float(metrics["pc1_alignment"][0, 0]) == pytest.approx(
        abs(w @ pc1) / (np.linalg.norm(w) * np.linalg.norm(pc1)), rel=1e-5)
    align = [abs(w[0] @ pc1) / (np.linalg.norm(w[0]) * np.linalg.norm(pc1)) for w in traj["W0"]]
    assert align[-1] > align[0] + 0.2                                                 # Oja turns towards PC1


def test_trajectory_snapshots_in_batches():
    traj = rate.weight_trajectory("oja", "pca", seed=1, steps=91, batch_size=2, snapshots=4)
    # 45 updates of 2 samples (the odd sample is dropped, as the inner loop does), every ceil(45/4) = 12
    assert traj["update"].tolist() == [0, 12, 24, 36, 45]
    assert traj["W0"].shape == (5, 1, 10) and np.isfinite(traj["W0"]).all()
    assert all(not np.array_equal(a, b) for a, b in zip(traj["W0"][:-1], traj["W0"][1:]))


@pytest.mark.parametrize("kw,needle", [
    ({"every": 0}, r"every must be in \[1, 10000000\]"),
    ({"snapshots": -1}, r"snapshots must be in \[1, 10000000\]"),
    ({"every": 2.5}, "every must be an integer"),
    ({"split": "train"}, "split must be"),
    ({"seed": -1}, "seed must be an integer"),
    ({"seed": "0"}, "seed must be an integer"),
])
def test_trajectory_refuses_bad_arguments(kw, needle):
    with pytest.raises(RuleError, match=needle):
        rate.weight_trajectory("oja", "pca", steps=10, **kw)
    with pytest.raises(RuleError, match="spiking rule"):
        rate.weight_trajectory("stdp_add", "pca", steps=10)


# --- the report --------------------------------------------------------------------------------------------------
def _tiny_run(tmp_path):
    from plasticity_search.rules import complexity, to_latex, to_text
    from plasticity_search.runs import rundir
    from plasticity_search.search.config import load_config, rule_in_space

    with open(os.path.join(ROOT, "search_spaces", "quickstart.yaml")) as f:
        cfg = yaml.safe_load(f)
    cfg.update(name="tiny", network={**cfg["network"], "hidden": [8]},
               tasks={s: [{"task": "digits", "seeds": 2, "steps": 60}] for s in ("search", "select", "final")})
    space = load_config(cfg).rule_space()
    d = str(tmp_path / "run")
    rec = rundir.new_run_record("tiny", seed=0, generations=1)
    rec["status"] = "finished"
    rundir.create_run_dir(d, {rundir.CONFIG_FILE: yaml.safe_dump(cfg), rundir.RUN_FILE: json.dumps(rec)})
    es = []
    for i, f in enumerate(["e*(e_pre - x)", "-e*x"]):
        p = rule_in_space(f, space)
        es.append({"rank": i, "formula": to_text(p, space), "latex": to_latex(p, space),
                   "complexity": complexity(p, space), "fitness": 0.5 - 0.1 * i,
                   "metrics": {"search": {"fitness": 0.5}}, "model": "rate",
                   "program": {k: np.asarray(v).tolist() for k, v in p._asdict().items()}, "space": space.to_dict()})
    curves = {"digits [final]": {"metric": "online accuracy", "x": [30, 60], "split": "final",
                                 "series": {"baseline FA": {"mean": [0.1, 0.2], "std": [0.0, 0.0]}}}}
    hof = {"schema": "plasticity-search/hall-of-fame/v1", "entries": es, "best": 0, "info": {"curves": curves}}
    rundir.atomic_write_json(os.path.join(d, rundir.HOF_JSON), hof)
    return d, hof


def test_report_has_weight_histograms_of_the_chosen_rule_and_fa(tmp_path):
    from plasticity_search.runs import rundir
    from plasticity_search.runs.report import WEIGHTS_FILE, write_outputs

    d, hof = _tiny_run(tmp_path)
    logs = []
    out = write_outputs(d, hof, curves=True, log=logs.append)
    assert "weights" in out, logs
    with open(out["weights"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(d, rundir.PLOTS_DIR, WEIGHTS_FILE)) as f:
        data = json.load(f)
    assert (data["task"], data["split"], data["seed"], data["updates"]) == ("digits", "final", 0, 60)
    assert data["labels"] == ["before learning", "after: chosen rule (rank 0)", "after: FA"]
    assert [layer["name"] for layer in data["layers"]] == ["layer 1: 64 -> 8 (+ bias)", "layer 2: 8 -> 10 (+ bias)"]
    for layer, n in zip(data["layers"], (8 * 65, 10 * 9)):
        assert len(layer["edges"]) == 41
        assert all(sum(c) == n for c in layer["counts"].values())          # every weight counted once
        assert all(s["nonfinite"] == 0 for s in layer["stats"].values())

    # parity: the histograms are those of the trajectory API on the same instance
    net = __import__("plasticity_search.runs.configs", fromlist=["load"]).load(
        os.path.join(d, rundir.CONFIG_FILE)).network_config()
    fa = rate.weight_trajectory("fa", "digits", 0, 60, snapshots=1, split="final", network=net)
    edges = np.asarray(data["layers"][1]["edges"])
    for lab, w in (("before learning", fa["W1"][0]), ("after: FA", fa["W1"][-1])):
        expect = np.histogram(np.clip(w.ravel(), edges[0], edges[-1]), edges)[0]
        assert data["layers"][1]["counts"][lab] == expect.tolist()
    assert data["layers"][1]["counts"]["after: FA"] != data["layers"][1]["counts"]["before learning"]

    with open(os.path.join(d, rundir.REPORT_FILE)) as f:
        page = f.read()
    assert "Weights of every layer before learning" in page and "60 online updates" in page

    # a redraw without curves=True reuses plots/weights.json
    again = write_outputs(d, hof)
    assert "weights" in again


def test_weights_are_drawn_beside_the_runs_first_baseline():
    """A PCA run's weights.png showed FA (which does not learn without an error) instead of its baseline Oja."""
    from plasticity_search.rate import NetworkConfig
    from plasticity_search.runs.curves import _reference_rule

    net = NetworkConfig(hidden=(8,))
    rule, n, label = _reference_rule({"baselines": [{"name": "oja"}, {"name": "fa"}]}, net)
    assert (rule.name, label, n) == ("oja", "oja", net)
    rule, n, label = _reference_rule({"baselines": [{"name": "bp"}]}, net)
    assert (rule.name, label, n.feedback) == ("fa", "BP", "bp")
    for hof in ({"baselines": [{"name": "fa"}]}, {}, {"baselines": []}):
        rule, n, label = _reference_rule(hof, net.with_(feedback="dfa"))
        assert (rule.name, label, n.feedback) == ("fa", "FA", "fa")


def test_spiking_run_weight_histograms_show_stdp_add_spreading_the_weights(tmp_path):
    """A spiking run's weights.png: the chosen rule and the run's first baseline (stdp_add) under the run's
    settings (lr 3, bounds [0, 1]) on its first final instance. Known answers: a rule that changes nothing keeps
    the initial weights (uniform in [0.3, 0.7]); stdp_add's weights are those of trained_weights on the same
    instance, inside the bounds and spread towards them (Song et al. 2000: additive STDP drives weights to the
    bounds)."""
    import dataclasses

    from plasticity_search.rules import complexity, to_latex, to_text
    from plasticity_search.runs import rundir
    from plasticity_search.runs.curves import weight_histograms
    from plasticity_search.search.config import load_config, rule_in_space, rule_settings
    from plasticity_search.spiking import trained_weights

    with open(os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml")) as f:
        cfg = yaml.safe_load(f)
    cfg.update(name="tiny", tasks={s: [{"task": "stdp_pattern", "seeds": 1, "steps": 200}]
                                   for s in ("search", "select", "final")})
    loaded = load_config(cfg)
    space = loaded.rule_space()
    d = str(tmp_path / "run")
    rec = rundir.new_run_record("tiny", seed=0, generations=1)
    rec["status"] = "finished"
    rundir.create_run_dir(d, {rundir.CONFIG_FILE: yaml.safe_dump(cfg), rundir.RUN_FILE: json.dumps(rec)})
    p = rule_in_space("0*sy", space, "spiking")
    settings = rule_settings(loaded)
    e = {"rank": 0, "formula": to_text(p, space), "latex": to_latex(p, space), "complexity": complexity(p, space),
         "fitness": 0.0, "metrics": {"search": {"fitness": 0.0}}, "model": "spiking",
         "program": {k: np.asarray(v).tolist() for k, v in p._asdict().items()}, "space": space.to_dict()}
    hof = {"schema": "plasticity-search/hall-of-fame/v1", "entries": [e], "best": 0, "defaults": settings,
           "baselines": [{"name": "stdp_add"}, {"name": "stdp_mult"}]}
    data = weight_histograms(d, hof)
    assert (data["task"], data["split"], data["seed"], data["updates"], data["unit"]) == \
        ("stdp_pattern", "final", 0, 200, "segments")
    assert data["labels"] == ["before learning", "after: chosen rule (rank 0)", "after: stdp_add"]
    (layer,) = data["layers"]
    assert layer["name"] == "layer 1: 1000 -> 1" and all(sum(c) == 1000 for c in layer["counts"].values())
    before, chosen, add = (layer["stats"][k] for k in data["labels"])
    assert layer["counts"][data["labels"][0]] == layer["counts"][data["labels"][1]] and chosen == before
    assert 0.3 <= before["min"] and before["max"] <= 0.7
    assert 0.0 <= add["min"] and add["max"] <= 1.0 and add["std"] > 1.5 * before["std"]
    w = trained_weights(dataclasses.replace(resolve_rule("stdp_add"), defaults=settings), "stdp_pattern", 0, 200,
                        "final")[0].ravel()
    edges = np.asarray(layer["edges"])
    assert layer["counts"]["after: stdp_add"] == np.histogram(np.clip(w, edges[0], edges[-1]), edges)[0].tolist()
