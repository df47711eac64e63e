"""Discoveries that hold up: paired statistics, baselines beside every result, the final choice on enough select
seeds, multi-rule ``evaluate`` and early stopping."""
import contextlib
import io
import json
import re

import numpy as np
import pytest
from scipy import stats as sps

from plasticity_search import cli
from plasticity_search.search import Search, load_config, state_from_tree, state_to_tree
from plasticity_search.search.baselines import resolve_baselines
from plasticity_search.search.config import ConfigError, default_baselines
from plasticity_search.search.stats import (format_delta, format_delta_verdict, left_out, mean_and_se,
                                            paired_difference, ref_all_diverged, verdict)

PCA = {"task": "pca", "seeds": 2, "steps": 100}
TINY = {
    "name": "tiny",
    "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 2, "n_pre": 1, "n_terms": 3},
    "search": {"population": 8, "tournament": 2, "children": 4},
    "tasks": {"search": [PCA], "select": [PCA], "final": [PCA]},
    "hall_of_fame": {"select_seeds": 3},
    "budget": {"generations": 40},
}


# --- statistics: known answers ------------------------------------------------------------------------------------
def test_paired_difference_matches_a_t_interval():
    rng = np.random.default_rng(0)
    b = rng.normal(0.5, 0.1, 20)
    a = b + rng.normal(0.05, 0.02, 20)
    p = paired_difference(a, b)
    d = a - b
    lo, hi = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert p["delta"] == pytest.approx(d.mean()) and p["n"] == 20
    assert p["lo"] == pytest.approx(lo) and p["hi"] == pytest.approx(hi)
    assert p["wins"] == pytest.approx(np.mean(d > 0)) and verdict(p) == "better"
    assert verdict(paired_difference(b, a)) == "worse"
    assert verdict(paired_difference(a, a)) == "tie"          # zero difference: interval [0, 0] is not above 0


def test_a_diverged_rule_has_no_difference():
    p = paired_difference([0.5, np.nan, 0.7], [0.4, 0.4, 0.4])
    assert p["delta"] is None and p["diverged"] == 1 and verdict(p) == "diverged"
    assert format_delta(p) == "diverged"
    with pytest.raises(ValueError):
        paired_difference([1, 2], [1, 2, 3])


def test_a_reference_that_diverged_everywhere_leaves_no_comparison():
    """Pairs where only the reference diverged are left out; with none left the comparison reads diverged, not
    a tie (it did: n == 0 gave delta None and verdict 'tie')."""
    p = paired_difference([0.5, 0.6, 0.7], [0.4, np.inf, 0.3])
    assert p["n"] == 2 and p["delta"] == pytest.approx(0.25) and p["ref_diverged"] == 1 and p["diverged"] == 0
    assert format_delta_verdict(p) == "+0.250 [-1.656, +2.156] tie (1 where the reference diverged left out)"
    assert left_out(p) == 1 and not ref_all_diverged(p)
    p = paired_difference([0.5, 0.6, 0.7], [np.nan, np.nan, np.inf])
    assert p["delta"] is None and p["diverged"] == 0 and p["ref_diverged"] == 3 and p["n"] == 0
    assert verdict(p) == "diverged" and format_delta(p) == "reference diverged" and ref_all_diverged(p)
    # a hall of fame written before ref_diverged existed: no difference, instances, no divergence of the rule
    old = {"delta": None, "lo": None, "hi": None, "se": None, "n": 3, "wins": None, "diverged": 0}
    assert ref_all_diverged(old) and verdict(old) == "diverged" and format_delta(old) == "reference diverged"
    assert not ref_all_diverged({"delta": None, "n": 3, "diverged": 2}) and left_out({"delta": None}) == 0


def test_evaluate_with_a_diverged_reference_says_so():
    code, out, err = _main(["evaluate", "1e30*x*y", "oja", "--task", "pca", "--seeds", "2", "--steps", "50",
                            "--json"])
    assert code == 0, err
    ref, oja = json.loads(out)["paired"]
    assert ref["diverged"] == 2 and oja["diverged"] == 0 and oja["ref_diverged"] == 2
    assert oja["verdict"] == "diverged" and oja["delta"] is None
    code, out, err = _main(["evaluate", "1e30*x*y", "oja", "--task", "pca", "--seeds", "2", "--steps", "50"])
    assert code == 0 and "Δ reference diverged" in out and "tie" not in out


def test_mean_and_se():
    m, se, n = mean_and_se([1.0, 2.0, 3.0, np.nan])
    assert (m, n) == (2.0, 3) and se == pytest.approx(1.0 / np.sqrt(3))


# --- baselines --------------------------------------------------------------------------------------------------
class _Fit:
    @staticmethod
    def per_instance(m):
        return m["f"]


def _choice(instances, front, eps=0.02, chosen=0):
    from types import SimpleNamespace

    from plasticity_search.search.finalize import choice_line
    search = SimpleNamespace(fit=_Fit(), cfg=SimpleNamespace(hall_of_fame=SimpleNamespace(eps=eps, choose="eps")))
    return choice_line(search, "select", [{"f": np.asarray(instances, np.float64)}], chosen, front)


def _warns(line):
    return "select seeds may choose otherwise" in line or "SE > eps/2" in line


def test_choice_line_measures_its_comparisons_in_paired_standard_errors():
    """The eps rule compares rules on the same instances: a spread every rule shares (harder seeds) cancels in their
    paired differences, so the line measures each comparison's distance from the eps threshold in the SE of the
    paired differences, not the chosen rule's own SE."""
    from plasticity_search.search.finalize import CHOICE_Z

    rng = np.random.default_rng(0)
    seeds = rng.normal(0.5, 0.1, 8)                       # shared spread: SE of a rule's mean about 0.035
    simple, best = seeds + 0.002 * rng.normal(size=8), seeds + 0.03 + 0.002 * rng.normal(size=8)
    front = [(0, 2, float(best.mean())), (1, 1, float(simple.mean()))]
    line = _choice([best, simple], front)                 # the simpler rule is 0.03 below: rejected at eps 0.02
    _, se, _ = mean_and_se(best)
    p = paired_difference(simple, best)
    z = (-0.02 - p["delta"]) / p["se"]
    assert se > 0.01 and z > CHOICE_Z
    assert f"SE of the chosen rule {se:.4f}" in line and f"at least {z:.1f} paired SE" in line
    assert not _warns(line)
    # the same means with differences as noisy as the seeds: within 2 SE of the threshold
    noisy = seeds + 0.03 + 0.05 * rng.normal(size=8)
    line = _choice([noisy, simple], [(0, 2, float(noisy.mean())), (1, 1, float(simple.mean()))])
    assert "paired SE of the threshold: other select seeds may choose otherwise" in line
    # a simpler rule chosen within eps of the best: its own distance to the threshold counts
    jitter = 0.003 * rng.normal(size=8)
    jitter -= jitter.mean()                               # paired SE about 0.001, the mean difference exact
    close = best - 0.019 + jitter                         # 0.001 inside eps 0.02
    line = _choice([best, close], [(0, 2, float(best.mean())), (1, 1, float(close.mean()))], chosen=1)
    assert _warns(line)                                # 0.001 from the threshold is within 2 paired SE
    far = best - 0.005 + jitter
    line = _choice([best, far], [(0, 2, float(best.mean())), (1, 1, float(far.mean()))], chosen=1)
    assert not _warns(line) and "paired SE from the eps threshold" in line
    same = best - 0.005                                   # a constant difference: no spread, not noise
    line = _choice([best, same], [(0, 2, float(best.mean())), (1, 1, float(same.mean()))], chosen=1)
    assert "no spread over the instances" in line and not _warns(line)
    # one rule on the front: no comparison, so no warning however spread its instances
    only = _choice([seeds], [(0, 1, float(seeds.mean()))])
    assert "the only rule of the Pareto front" in only and not _warns(only)
    # no front given, or no usable pair (the rival diverged everywhere): the chosen rule's own SE against eps/2
    assert "SE > eps/2: raise" in _choice([seeds], [])
    assert "SE > eps/2: raise" in _choice([seeds, np.full(8, np.nan)], [(0, 1, 0.5), (1, 0, -np.inf)])


def test_default_baselines_by_objective_and_config():
    cfg = load_config("search_spaces/quickstart.yaml")
    assert default_baselines(cfg) == ("fa", "bp")
    assert default_baselines(load_config(TINY)) == ("oja",)
    assert default_baselines(load_config(TINY, {"baselines": ["hebb", "y*x"]})) == ("hebb", "y*x")
    for bad, msg in ((["stdp_add"], "spiking rule"), (["no_such_rule(x"], "baselines[0]"), ([""], "baselines[0]")):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            load_config("search_spaces/quickstart.yaml", {"baselines": bad})


def test_bp_baseline_is_fa_under_backprop():
    cfg = load_config("search_spaces/quickstart.yaml")
    bls = resolve_baselines(("fa", "bp"), cfg.rule_space(), "rate", cfg.network_config())
    assert [b.formula for b in bls] == ["-e*x", "-e*x"]
    assert [b.feedback for b in bls] == ["fa", "bp"]
    assert bls[0].space is bls[1].space            # both fit the run's space: no extra compile for fa
    # a plastic feedback rule trains FA's matrices: BP drops it (it was kept, and a run with feedback_rule failed
    # when it came to score BP; found by a config audit), FA keeps it
    kp = load_config("search_spaces/quickstart.yaml", {"network.feedback_rule": "kolen_pollack"})
    fa, bp = resolve_baselines(("fa", "bp"), kp.rule_space(), "rate", kp.network_config())
    assert (fa.network.feedback, fa.network.feedback_rule) == ("fa", "kolen_pollack")
    assert (bp.network.feedback, bp.network.feedback_rule, bp.network.feedback_lr) == ("bp", None, None)


def test_finalize_scores_baselines_on_the_same_instances():
    s = Search(load_config(TINY, {"budget.generations": 2, "baselines": ["oja", "hebb"]}))
    st = s.init()
    for _ in range(2):
        st, _ = s.step(st)
    hof = s.finalize(st)
    d = hof.to_json()
    assert [b["name"] for b in d["baselines"]] == ["oja", "hebb"]
    assert d["info"]["compared_on"] == "final"
    assert "3 select instances" in d["info"]["choice"]           # hall_of_fame.select_seeds: 3
    for e in d["entries"]:
        assert len(e["instances"]) == 2 and set(e["paired"]) == {"oja", "hebb"}
        mine = np.array([np.nan if v is None else v for v in e["instances"]])
        oja = np.array(d["baselines"][0]["instances"], float)
        if e["paired"]["oja"]["delta"] is not None:
            assert e["paired"]["oja"]["delta"] == pytest.approx(np.mean(mine - oja))
    # Oja on the same instances as a hall-of-fame entry that *is* Oja gives a zero difference
    oja_entry = [e for e in d["entries"] if e["paired"]["oja"]["delta"] == 0.0]
    assert all(verdict(e["paired"]["oja"]) == "tie" for e in oja_entry)
    assert "baseline oja" in hof.table() and "chosen:" in hof.table()


# --- early stop -------------------------------------------------------------------------------------------------
def test_patience_stops_and_resumes_exactly():
    s = Search(load_config(TINY, {"budget.patience": 3}))
    st = s.init()
    n = 0
    while not s.done(st):
        st, _ = s.step(st)
        n += 1
        if n == 2:                 # a restored state continues exactly, the early-stop counters included
            arrays, meta = state_to_tree(st)
            st = state_from_tree(arrays, meta)
    assert n < 40 and s.stop_reason(st) == "patience"
    assert st.generation - st.counters["stop_best_gen"] >= 3


def test_target_fitness_stops_at_once():
    s = Search(load_config(TINY, {"budget.target_fitness": -1e6}))
    st = s.init()
    st, _ = s.step(st)
    assert s.done(st) and s.stop_reason(st) == "target_fitness"
    for bad in ({"budget.patience": 0}, {"budget.target_fitness": float("nan")}, {"hall_of_fame.select_seeds": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_config(TINY, bad)


# --- evaluate with several rules --------------------------------------------------------------------------------
def _main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_evaluate_compares_rules_on_the_same_seeds():
    argv = ["evaluate", "fa", "bp", "-2*e*x", "--task", "digits", "--steps", "40", "--seeds", "3",
            "--network", "8"]
    code, out, err = _main(argv + ["--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["reference"] == "fa" and doc["metric"] == "final_accuracy"
    assert [r["rule"] for r in doc["rules"]] == ["fa", "bp", "-2*e*x"]
    assert [r["feedback"] for r in doc["rules"]] == ["fa", "bp", "fa"]
    ref = np.array(doc["rules"][0]["metrics"]["final_accuracy"]["values"])
    assert doc["paired"][0]["delta"] == 0.0
    for r, p in zip(doc["rules"], doc["paired"]):
        v = np.array(r["metrics"]["final_accuracy"]["values"])
        assert len(v) == 3 and p["n"] == 3 and p["delta"] == pytest.approx(float(np.mean(v - ref)))
    # each rule alone gives the same numbers: same data and initial weights per seed
    code, out, _ = _main(["evaluate", "-2*e*x", "--task", "digits", "--steps", "40", "--seeds", "3", "--network", "8",
                          "--json"])
    alone = json.loads(out)["metrics"]["final_accuracy"]["values"]
    assert alone == doc["rules"][2]["metrics"]["final_accuracy"]["values"]
    code, out, _ = _main(argv)
    assert code == 0 and "reference" in out and "Δ" in out and out.count("\n") == 6
    assert "\nlr       " in out and "for every rule" in out      # one learning rate, said once


def test_evaluate_names_spiking_settings_that_differ_between_rules(tmp_path):
    """A run's spiking rule carries its run's weight bounds and time constants, a formula the defaults: comparing
    them said "lr 0.03 for every rule" and nothing else, while one rule ran with w in [0, 1] and the other unbounded
    (an audit's comparison of a searched rule with a rescaled stdp_add: 0.98 against 0.38, an artefact). The
    settings that differ are now named, per rule."""
    code, out, err = _main(["export", "sy*tx - 1.05*sx*ty", "--to", "json"])
    assert code == 0, err
    doc = json.loads(out)
    doc["defaults"] = {"w_bounds": [0.0, 1.0], "tau_plus": 20.0}
    path = tmp_path / "bounded.json"
    path.write_text(json.dumps(doc))
    argv = ["evaluate", str(path), "sy*tx - 1.05*sx*ty", "--task", "stdp_pattern", "--seeds", "2", "--steps", "8",
            "--lr", "0.03", "--metric", "detection"]
    code, out, err = _main(argv)
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("settings each rule's own w_bounds (they differ") for line in lines), out
    assert "tau_plus" not in out                                   # 20 is the default: the same in both
    assert sum("[w_bounds [0, 1]]" in line for line in lines) == 1 and sum("[w_bounds none]" in line
                                                                            for line in lines) == 1, out
    code, out, err = _main(["evaluate", str(path), str(path), "--task", "stdp_pattern", "--seeds", "2", "--steps", "8",
                            "--metric", "detection", "--json"])
    assert code == 0 and "settings each" not in out
    assert [r["settings"]["w_bounds"] for r in json.loads(out)["rules"]] == [[0.0, 1.0], [0.0, 1.0]]


# --- sparse checkpoints: a resume replays from an older checkpoint to the same result ----------------------------
def test_sparse_checkpoints_resume_exactly(tmp_path):
    import os
    import shutil

    import yaml

    cfg = dict(TINY, budget={"generations": 6, "checkpoint_every_s": 3600}, generalization={"at_end": False})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full = tmp_path / "full"
    code, _, err = _main(["run", str(path), "--out", str(full), "--wandb", "disabled", "--no-curves"])
    assert code == 0, err
    assert sorted(os.listdir(full / "checkpoints")) == ["ckpt-00000000.npz", "ckpt-00000006.npz"]
    # as if killed during generation 6: only the initial checkpoint, four metrics lines, no results yet
    part = tmp_path / "part"
    shutil.copytree(full, part)
    (part / "checkpoints" / "ckpt-00000006.npz").unlink()
    for name in ("hall_of_fame.json", "hall_of_fame.csv"):
        (part / name).unlink()
    rec = json.loads((part / "run.json").read_text())
    rec.update(status="running", generations_done=4)
    (part / "run.json").write_text(json.dumps(rec))
    lines = (part / "metrics.jsonl").read_text().splitlines()[:4]
    (part / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    code, _, err = _main(["run", str(part), "--resume", "--wandb", "disabled", "--no-curves"])
    assert code == 0, err

    def strip(d):
        h = json.loads((d / "hall_of_fame.json").read_text())
        h["info"].pop("wall_time_s", None)
        return h

    assert strip(part) == strip(full)
    drop = ("wall_time_s", "candidates_per_s")
    ms = [[{k: v for k, v in json.loads(x).items() if k not in drop} for x in (d / "metrics.jsonl").read_text().splitlines()]
          for d in (part, full)]
    assert ms[0] == ms[1] and len(ms[0]) == 6
