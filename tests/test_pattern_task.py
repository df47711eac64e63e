"""stdp_pattern as a test of spike timing (issue 15): every afferent's rate is the same inside and outside the
pattern (Masquelier, Guyonneau & Thorpe 2008), the pattern is in the spike times only, and spiking runs report their
known-rule baselines with paired differences."""
import os

import numpy as np
import pytest

from plasticity_search.search import load_config, run_search
from plasticity_search.search.config import SPIKING_BASELINES, default_baselines
from plasticity_search.tasks import TaskError, make

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rates_in_out(task, data):
    """Per-afferent rate (Hz) inside and outside the pattern segments of one stream."""
    x, pat = data.x_stream, data.y_stream[:, 0] > 0.5
    spikes = (x >= 0).astype(np.float64)                                  # at most one spike per segment
    seg_s = task.pattern_ms / 1000.0
    return spikes[pat].mean(0) / seg_s, spikes[~pat].mean(0) / seg_s


@pytest.mark.parametrize("kw,steps", [({}, 800), ({"rate_hz": 5.0, "n_in": 20}, 40000)],
                         ids=["default_10hz", "distractors_5hz"])
def test_pattern_afferent_rates_equal_inside_and_outside(kw, steps):
    """The rate-balance test of issue 15: per afferent, inside vs outside the pattern windows, within 5%."""
    task = make("stdp_pattern", **kw)
    d = task.sample(0, "search", steps)
    r_in, r_out = _rates_in_out(task, d)
    assert np.all(r_out > 0)
    rel = np.abs(r_in / r_out - 1.0)
    assert rel.max() < 0.05, (rel.max(), np.argmax(rel))
    _, members = task.pattern(0, "search")
    np.testing.assert_array_equal(r_in[members], 1000.0 / task.pattern_ms)   # once in every segment
    np.testing.assert_array_equal(r_out[members], 1000.0 / task.pattern_ms)
    if kw:                                                                   # distractors at their own rate
        assert abs(r_out[~members].mean() - kw["rate_hz"]) < 0.05 * kw["rate_hz"]
    # the population rate is the same in pattern and background segments too
    counts = (d.x_stream >= 0).sum(1)
    pat = d.y_stream[:, 0] > 0.5
    assert abs(counts[pat].mean() / counts[~pat].mean() - 1.0) < 0.05


def test_pattern_is_in_the_timing_only():
    task = make("stdp_pattern")
    d = task.sample(1, "final", 40)
    frozen, members = task.pattern(1, "final")
    pat = d.y_stream[:, 0] > 0.5
    np.testing.assert_array_equal(np.flatnonzero(pat), np.arange(1, 40, 4))       # k % 4 == 1: ends on background
    assert members.sum() == 500 and np.all(frozen[~members] == -1)
    for x in (d.x_stream[pat], d.x_eval[d.y_eval[:, 0] > 0.5]):                   # jittered copies, +-1 ms
        assert np.all(np.abs(x[:, members] - frozen[members]) <= 1)
    assert np.mean(np.abs(d.x_stream[~pat][:, members] - frozen[members]) <= 1) < 0.1   # elsewhere: random times
    assert not np.array_equal(d.x_stream[1], d.x_stream[5])                        # fresh jitter and distractors
    assert (d.x_stream >= 0).all() and d.x_stream.max() <= task.seg_steps - 1      # 10 Hz: once per segment


def test_detection_is_hits_minus_false_alarms_of_the_spiking_neuron():
    """The spike-based metric replays the test stream through the LIF neuron (threshold, reset): weights of 0 never
    fire (hits = false alarms = 0), weights of 1 fire in every segment (both 1): detection 0 either way. A rate
    rule that drives the neuron to fire everywhere scores exactly 0 though its snr is finite."""
    import jax.numpy as jnp

    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.spiking.network import NetSpec
    from plasticity_search.spiking.simulate import _fired_per_segment, _lif
    from plasticity_search.spiking.spiking_model import evaluate_rule

    task = make("stdp_pattern")
    data = task.sample(3, "search", 8)
    spec = NetSpec((task.n_in, 1), lif=_lif(task), readout="spikes", gains=(task.gain,))
    ws = jnp.stack([jnp.zeros(task.n_in), jnp.ones(task.n_in)])
    fired = np.asarray(_fired_per_segment(spec, ws, jnp.asarray(data.x_eval), task.seg_steps))
    assert fired.shape == (task.n_eval, 2)
    assert (fired[:, 0] == 0).all() and (fired[:, 1] == 1).all()
    res, _ = evaluate_rule(resolve_rule("0.01*sx"), "stdp_pattern", seeds=2, split="search", steps=100)
    assert res["hit_rate"]["values"] == [1.0, 1.0] and res["false_alarm_rate"]["values"] == [1.0, 1.0]
    assert res["detection"]["values"] == [0.0, 0.0] and np.isfinite(res["snr"]["values"]).all()
    for k in ("detection", "detection_before"):
        assert all(-1.0 <= v <= 1.0 for v in res[k]["values"])


def test_pattern_task_rejects_bad_settings():
    for kw in ({"rate_hz": 20.0}, {"rate_hz": 0.0}, {"pattern_frac": 0.0}, {"period": 1}, {"jitter_ms": -1.0}):
        with pytest.raises(TaskError):
            make("stdp_pattern", **kw)


def test_spiking_runs_default_to_their_known_rule_baselines():
    path = os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml")
    assert default_baselines(load_config(path)) == ("stdp_add", "stdp_mult")
    assert default_baselines(load_config(path, {"baselines": ["stdp_triplet"]})) == ("stdp_triplet",)
    teacher = load_config(os.path.join(ROOT, "search_spaces", "spiking_teacher.yaml"))
    assert default_baselines(teacher) == SPIKING_BASELINES["regression"] == ("bp_stdp",)
    assert default_baselines(teacher, "reward") == ("r_stdp",)
    assert default_baselines(teacher, "classification") == ("eprop", "bp_stdp")


def test_tiny_spiking_run_reports_baselines_with_paired_differences():
    """One generation on a small stdp_pattern: stdp_add and stdp_mult rows on the final instances, and every
    hall-of-fame entry carries its paired difference to each over the same instances."""
    small = {"task": "stdp_pattern", "seeds": 2, "steps": 8, "args": {"n_in": 100, "gain": 0.1, "n_eval": 12}}
    cfg = load_config(os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml"),
                      {"budget.generations": 1, "search.population": 4, "search.children": 2,
                       "search.tournament": 2, "tasks.search": [dict(small, seeds=1)], "tasks.select": [],
                       "tasks.final": [small], "hall_of_fame.snap": False})
    hof = run_search(cfg)
    assert [b["name"] for b in hof.baselines] == ["stdp_add", "stdp_mult"]
    for b in hof.baselines:
        assert len(b["instances"]) == 2 and "snr" in b["metrics"]
    for e in hof.entries:
        for name in ("stdp_add", "stdp_mult"):
            p = e.paired[name]
            assert p["n"] == 2
            if p["delta"] is not None:
                mine = np.array(e.instances, float)
                theirs = np.array([b for b in hof.baselines if b["name"] == name][0]["instances"], float)
                assert p["delta"] == pytest.approx(np.mean(mine - theirs))
    assert "baseline stdp_add" in hof.table()
    # learning curves of the top rules and the baselines on the final instances, as for rate runs: online
    # detection per window of training segments (8 segments: 2 windows of a pattern period, 4 segments, each)
    (title, panel), = hof.info["curves"].items()
    assert title == "stdp_pattern [final]" and panel["xlabel"] == "segments"
    assert panel["metric"] == "online detection (hits - false alarms)" and panel["x"] == [4, 8]
    assert all(v is not None for v in panel["series"]["baseline stdp_add"]["mean"])
    assert {"baseline stdp_add", "baseline stdp_mult"} < set(panel["series"]) and "rank 0: " in " ".join(panel["series"])
    # the run's STDP windows: its top rules next to stdp_add under the run's settings (lr 3, bounds [0, 1])
    from plasticity_search.runs.curves import stdp_windows
    win = stdp_windows("tiny", hof.to_json(), top=1)
    assert list(win)[-1] == "stdp_add (reference)" and len(win) == 2
    ref = win["stdp_add (reference)"]
    assert ref["w0"] == 0.5 and ref["w_bounds"] == [0.0, 1.0] and not any(ref["clipped"])   # 3 * 0.01 < 0.5


# ---- STDP windows that show the rule, not the bounds (issue 15, section 5) ----------------------------------------
def test_pairing_window_is_computed_before_clipping_and_marks_the_clipped_offsets(tmp_path):
    """Pair STDP with lr 3 and A = 1: |dw| = 3 exp(-|d|/20) exceeds the 0.5 of room on either side of the mid-range
    start for |d| < 20 ln 6 = 35.8 ms. The window is the rule's (unclipped) change there, and exactly those offsets
    are marked; with the weight bounds applied the change would be flat at +-0.5."""
    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.runs.curves import pairing_window
    from plasticity_search.runs.plots import plot_stdp

    rule = resolve_rule("sy*tx - ty*sx")
    rule.defaults = {"lr": 3.0, "tau_plus": 20.0, "tau_minus": 20.0, "w_bounds": [0.0, 1.0]}
    offs = np.array([-60.0, -40.0, -30.0, -10.0, -2.0, 2.0, 10.0, 30.0, 40.0, 60.0])
    w = pairing_window(rule, offs)
    expect = np.sign(offs) * 3.0 * np.exp(-np.abs(offs) / 20.0)
    np.testing.assert_allclose(w["dw"], expect, rtol=2e-3)
    np.testing.assert_array_equal(w["clipped"], np.abs(offs) < 20.0 * np.log(6.0))
    np.testing.assert_allclose(np.array(w["dw_clipped"])[w["clipped"]], 0.5 * np.sign(offs[w["clipped"]]),
                               rtol=1e-5)
    assert w["w0"] == 0.5
    png = plot_stdp({"rule": w, "stdp_add": pairing_window(resolve_rule("stdp_add"), offs)}, str(tmp_path / "w.png"))
    assert os.path.getsize(png) > 1000


def _chance_script():
    """scripts/stdp_pattern_chance.py as a module (its table() scores rules under stdp_pattern.yaml's settings)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("stdp_pattern_chance",
                                                  os.path.join(ROOT, "scripts", "stdp_pattern_chance.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_rate_and_untimed_hebbian_rules_are_at_chance_and_stdp_is_not():
    """The table of BENCHMARKS.md "stdp_pattern: a task that needs timing" (5 final seeds, the settings of
    search_spaces/stdp_pattern.yaml): rules without a causal timing term do no better than no plasticity (95%
    interval of the paired difference to snr_before covers 0 or lies below), pair STDP does, and beats each of them."""
    out = _chance_script().table(seeds=5)
    rows = {r["rule"]: r for r in out["rows"]}
    add = rows["stdp_add"]
    assert add["vs_before"]["lo"] > 0 and add["snr_mean"] > 3.0, add
    for rule in ("0.01*sx", "-1.4*sy + 0.7*tx", "0.6429*sx - 1.366*sy*tx", "0.01*tx2*ty2", "0.01*(sy*tx + ty*sx)"):
        r = rows[rule]
        assert r["vs_before"]["lo"] < 0, r                     # not better than no plasticity
        assert r["vs_stdp_add"]["hi"] < 0, r                   # worse than pair STDP
        assert r["detection"] == [0.0] * 5, r                  # the spiking neuron: silent or firing everywhere
        assert r["detection_vs_stdp_add"]["hi"] < 0, r
    # spike-based detection: pair STDP fires in every pattern segment and in a quarter of the background ones
    assert min(add["detection"]) > 0.5 and add["hit_rate"] > 0.95 and add["false_alarm_rate"] < 0.35, add


@pytest.mark.slow
def test_more_depression_makes_pair_stdp_a_more_reliable_detector():
    """BENCHMARKS.md "A spike-based detection metric": the tuned ratio search_spaces/stdp_pattern_detection.yaml
    found (A-/A+ about 1.08 instead of stdp_add's 1.05) beats stdp_add on detection over 20 final seeds, with
    false alarms below 5%."""
    rows = {r["rule"]: r for r in _chance_script().table(["0.01*sy*tx - 0.01082*sx*ty"], seeds=20)["rows"]}
    tuned = rows["0.01*sy*tx - 0.01082*sx*ty"]
    assert tuned["detection_vs_stdp_add"]["lo"] > 0 and tuned["false_alarm_rate"] < 0.05, tuned


def test_the_detection_search_starts_from_stdp_add_at_its_learning_rate():
    """stdp_pattern_detection.yaml seeds stdp_add rescaled to its lr (lr x coefficient = stdp_add's 3 x 0.01) and
    scores the spike-based metric; its baselines are stdp_add and stdp_mult at the same step sizes."""
    from plasticity_search.rules import RULES
    from plasticity_search.rules.resolve import resolve_rule

    cfg = load_config(os.path.join(ROOT, "search_spaces", "stdp_pattern_detection.yaml"))
    base = load_config(os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml"))
    assert cfg.fitness.metric == "detection" and cfg.search.aging is False
    ref_lr = base.spiking_eval_config()["rule_defaults"]["lr"]
    assert cfg.spiking_eval_config()["rule_defaults"] == {**base.spiking_eval_config()["rule_defaults"], "lr": 0.03}

    def coefs(prog):
        return np.array(sorted(float(c) for c, on in zip(np.asarray(prog.term_coef), np.asarray(prog.term_on)) if on))

    for formula, name in zip(cfg.baselines, ("stdp_add", "stdp_mult")):
        a, b = resolve_rule(formula).program, RULES[name].compile()[0]
        np.testing.assert_allclose(coefs(a) * 0.03, coefs(b) * ref_lr, rtol=1e-6)
    assert cfg.search.seed_rules == (cfg.baselines[0],)


def test_a_seed_rule_file_must_have_run_with_the_searchs_spiking_settings(tmp_path):
    """A run's rule file records the settings it ran with; one from a run without weight bounds (w_bounds null
    in its file) is refused by a search with bounds [0, 1], as is one at another time constant, and the same rule
    recorded with the search's own settings is taken."""
    import json

    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.search.config import ConfigError
    from plasticity_search.spiking.plasticity import hyper_dict

    path = os.path.join(ROOT, "search_spaces", "stdp_pattern_detection.yaml")
    own = load_config(path).spiking_eval_config()["rule_defaults"]
    rule = resolve_rule("sy*tx - 1.05*sx*ty")

    def write(name, defaults):
        rule.defaults = hyper_dict(defaults)
        p = tmp_path / name
        p.write_text(json.dumps(rule.to_dict()))
        return str(p)

    ok = write("same.json", own)
    assert load_config(path, {"search.seed_rules": [ok]}).search.seed_rules == (ok,)
    unbounded = write("unbounded.json", {k: v for k, v in own.items() if k != "w_bounds"})
    with pytest.raises(ConfigError, match=r"search.seed_rules\[0\]: .*ran with w_bounds none, this search runs "
                                          r"with w_bounds \[0, 1\]"):
        load_config(path, {"search.seed_rules": [unbounded]})
    slow = write("slow.json", dict(own, tau_plus=40.0))
    with pytest.raises(ConfigError, match=r"search.seed_rules\[0\]: .*ran with tau_plus 40"):
        load_config(path, {"search.seed_rules": [slow]})
