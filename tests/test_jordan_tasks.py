"""The protocols of Jordan et al. 2021 (issue 15, section 2): jordan_correlation (their correlation-driven task and
SNR) and jordan_reward (their reward-driven task). Data structure, rate balance, the SNR definition on constructed
traces, the reward on constructed cases, disjoint splits; the learning checks are marked slow."""
import numpy as np
import pytest

from plasticity_search.search.config import SPIKING_BASELINES
from plasticity_search.tasks import SPLITS, TaskError, list_tasks, make
from plasticity_search.tasks.jordan_tasks import JORDAN_TASKS, pack_events, unpack_events


def _counts(task, x):
    """Spike counts [rows, n_afferents] of event rows."""
    r, _, aff = unpack_events(x, task.n_afferents)
    out = np.zeros((x.shape[0], task.n_afferents))
    np.add.at(out, (r, aff), 1)
    return out


def test_registered_with_their_objectives():
    names = {t.name for t in list_tasks()}
    assert {"jordan_correlation", "jordan_reward"} <= names
    corr, rew = make("jordan_correlation"), make("jordan_reward")
    assert corr.kind == rew.kind == "spiking" and corr in JORDAN_TASKS and rew in JORDAN_TASKS
    assert (corr.objective, rew.objective) == ("detection", "reward")
    assert SPIKING_BASELINES[corr.objective] == ("stdp_add", "stdp_mult")
    assert SPIKING_BASELINES[rew.objective] == ("r_stdp",)
    assert corr.metrics[0] == "snr" and rew.metrics[0] == "total_reward"


def test_pack_unpack_round_trip_and_overflow():
    rng = np.random.default_rng(0)
    row, step, aff = rng.integers(0, 5, 40), rng.integers(0, 100, 40), rng.integers(0, 7, 40)
    x = pack_events(row, step, aff, 5, 7, 16, "t")
    got = set(zip(*unpack_events(x, 7)))
    assert got == set(zip(row.tolist(), step.tolist(), aff.tolist()))           # duplicates merged
    for r in x:                                        # sorted codes first, then the -1 padding
        k = int((r >= 0).sum())
        assert (r[k:] == -1).all() and (np.diff(r[:k]) > 0).all()
    with pytest.raises(TaskError, match="event slots"):
        pack_events(np.zeros(20, int), np.arange(20), np.zeros(20, int), 1, 7, 16, "t")
    with pytest.raises(TaskError, match="n_in"):
        make("jordan_correlation", rate_hz=10.0)                                   # 1000 spikes per segment


def test_correlation_stream_structure():
    task = make("jordan_correlation")
    d = task.sample(0, "search", 60)
    assert d.x_stream.shape == (60, task.n_in) and task.n_afferents == 1000
    schedule = np.tile([0, 0, 0, 0, 1], 12)                                         # 100 ms pattern after 400 ms
    np.testing.assert_array_equal(d.y_stream[:, 0], np.r_[schedule[:-5], 0, 0, 0, 0, 0])   # ends on background
    theirs = make("jordan_correlation", end_background_ms=0.0).sample(0, "search", 60)
    np.testing.assert_array_equal(theirs.y_stream[:, 0], schedule)                  # theirs ends on a pattern
    np.testing.assert_array_equal(theirs.x_stream[:-1], d.x_stream[:-1])
    np.testing.assert_array_equal(d.y_eval[:, 0], np.tile([0, 0, 0, 0, 1], 22))     # the test: 22 presentations
    step, aff = task.pattern(0, "search")
    assert np.unique(aff).size == aff.size                                          # at most one pattern spike each
    assert 200 < aff.size < 320                                                     # 1 - exp(-0.3): about 26%
    pat = d.y_stream[:, 0] > 0.5
    frozen = pack_events(np.zeros_like(aff), step, aff, 1, task.n_afferents, task.n_in, "t")[0]
    assert all(np.array_equal(row, frozen) for row in d.x_stream[pat])             # exactly the frozen pattern
    c = _counts(task, d.x_stream)
    members = task.members(0, "search")
    assert c[pat][:, ~members].sum() == 0                                           # background cut out
    longer = task.sample(0, "search", 200)
    np.testing.assert_array_equal(d.x_eval, longer.x_stream[:task.n_eval])     # their replay of the stream's start
    np.testing.assert_array_equal(d.x_stream[:56], longer.x_stream[:56])       # a short stream is a prefix
    fresh = make("jordan_correlation", eval_replay=False).sample(0, "search", 60)
    assert not np.array_equal(fresh.x_eval[:60], d.x_stream)
    assert all(np.array_equal(row, frozen) for row in fresh.x_eval[fresh.y_eval[:, 0] > 0.5])


def test_correlation_every_afferent_keeps_the_same_mean_rate():
    """Their rate balance: the pattern afferents' background is thinned by 1 - nu_stim/nu_inter so that every
    afferent fires at 2.4 Hz over the stream (within 5%, per afferent). Inside vs outside the pattern windows the
    rates differ by design (pattern afferents 10 Hz / 0.5 Hz, the others 0 / 3 Hz)."""
    task = make("jordan_correlation", n_afferents=50)
    n = 40000                                                                       # 4000 s
    d = task.sample(0, "search", n)
    c = _counts(task, d.x_stream)
    seg_s = task.t_stim_ms / 1000.0
    rate = c.sum(0) / (n * seg_s)
    assert np.abs(rate / 2.4 - 1.0).max() < 0.05, rate
    members, pat = task.members(0, "search"), d.y_stream[:, 0] > 0.5
    assert 5 <= members.sum() <= 25
    np.testing.assert_array_equal(c[pat][:, members], 1.0)                          # 10 Hz inside
    out = c[~pat].sum(0) / ((~pat).sum() * seg_s)
    assert np.abs(out[members] / (3.0 * task.alpha) - 1.0).max() < 0.08             # 0.5 Hz outside
    assert np.abs(out[~members] / 3.0 - 1.0).max() < 0.05                           # 3 Hz outside
    assert abs(task.alpha - 1.0 / 6.0) < 1e-12


def test_snr_is_their_definition_on_constructed_traces():
    from plasticity_search.spiking.jordan import jordan_snr

    # inter samples 0, 2, 0, 2 (mean 1, std 1); presentations peak at 5 and 3: ((5-1) + (3-1)) / 2 / 1 = 3
    v = np.array([[0, 2, 0, 2], [0, 5, 1, 1], [2, 0, 2, 0], [3, 1, 1, -4]], np.float32)[:, :, None]
    pat = np.array([False, True, False, True])
    np.testing.assert_allclose(np.asarray(jordan_snr(v, pat)), [3.0], rtol=1e-6)
    # against their compute_SNR on a random trace: labels per sample, max per presentation, numpy mean and std
    rng = np.random.default_rng(1)
    v = rng.normal(size=(15, 100, 2)).astype(np.float32)
    pat = (np.arange(15) % 5) == 4
    stim = np.repeat(np.where(pat, np.cumsum(pat), 0), 100)
    for k in range(2):
        trace = v[:, :, k].ravel()
        inter = trace[stim == 0]
        vmax = np.array([trace[stim == s].max() for s in range(1, stim.max() + 1)])
        want = np.mean((vmax - inter.mean()) / inter.std())
        np.testing.assert_allclose(float(jordan_snr(v, pat)[k]), want, rtol=1e-5)


def test_events_to_raster_matches_the_rows():
    from plasticity_search.spiking.jordan import events_to_raster

    task = make("jordan_correlation")
    row = task.sample(2, "select", 5).x_stream[4]
    raster = np.asarray(events_to_raster(row, task.n_afferents, task.seg_steps))
    _, step, aff = unpack_events(row[None], task.n_afferents)
    assert raster.shape == (100, 1000) and raster.sum() == step.size
    assert (raster[step, aff] == 1).all()


def test_reward_task_stimuli_targets_and_trials():
    task = make("jordan_reward")
    d = task.sample(0, "final")
    x, targets = task.stimuli(0, "final")
    assert d.x_stream.shape == (500, task.n_in) and d.x_eval.shape == (30, task.n_in) and task.n_afferents == 50
    np.testing.assert_array_equal(d.x_eval, x)
    np.testing.assert_array_equal(d.y_eval[:, 0], targets)
    assert set(np.unique(targets)) <= {-1.0, 1.0}
    idx = np.array([np.flatnonzero((x == row).all(1))[0] for row in d.x_stream])  # each trial shows a stimulus ...
    np.testing.assert_array_equal(d.y_stream[:, 0], targets[idx])                   # ... with its own target
    assert len(set(idx.tolist())) == 30 and np.bincount(idx).max() > 500 / 30       # uniform with replacement
    rates = _counts(task, x).sum(1) / (task.n_afferents * task.t_stim_ms / 1000.0)
    assert abs(rates.mean() - 6.0) < 0.3                                            # 6 Hz per input
    steps = unpack_events(x, task.n_afferents)[1]
    assert steps.min() >= 0 and steps.max() <= task.trial_steps - 1


def test_splits_give_disjoint_patterns_and_stimuli():
    corr, rew = make("jordan_correlation"), make("jordan_reward")
    pats = {s: corr.sample(1, s, 10).x_stream[4].tobytes() for s in SPLITS}
    stims = {s: {r.tobytes() for r in rew.sample(1, s, 10).x_eval} for s in SPLITS}
    assert len(set(pats.values())) == 3
    for a in SPLITS:
        for b in SPLITS:
            if a != b:
                assert not stims[a] & stims[b]


def _run_reward(task, formula, seeds=(0,)):
    import jax

    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.spiking.jordan import run_reward
    from plasticity_search.spiking.plasticity import rule_hyper
    from plasticity_search.spiking.spiking_model import instance_key

    rule = resolve_rule(formula)
    hyper = rule_hyper(rule.defaults, dt=task.dt)
    out = []
    for s in seeds:
        data = task.sample(s, "search")
        ws, m, _ = jax.jit(lambda d, k: run_reward(task, rule.space, rule.program, hyper, d, k))(
            jax.tree.map(np.asarray, data), instance_key(s, "search"))
        out.append((data, np.asarray(ws[0]), {k: float(v) for k, v in m.items()}))
    return out


def test_reward_is_plus_one_for_the_right_answer():
    """A neuron that never spikes answers -1 in every trial: R = +1 exactly for the stimuli whose target is -1.
    The rule dw = 1e-6 * r sees r = R once per trial (the last step): the weights move by 1e-6 * sum R, and absent
    synapses (20%) stay 0."""
    task = make("jordan_reward", n_afferents=10, n_stimuli=4, n_eval=4, t_stim_ms=20.0, default_steps=40,
                w0_sd=0.0, n_in=64)
    (data, w, m), = _run_reward(task, "1e-6*r")
    R = -data.y_stream[:, 0]
    assert m["total_reward"] == R.sum() and m["rate_hz"] == 0.0
    assert m["late_accuracy"] == pytest.approx(np.mean(R[-10:] > 0))
    assert m["final_accuracy"] == pytest.approx(np.mean(data.y_eval[:, 0] < 0))
    on = w != 0
    assert 0 < on.sum() < w.size
    np.testing.assert_allclose(w[on], 1e-6 * R.sum(), rtol=1e-4)


def test_update_after_trial_applies_the_weight_change_once_per_trial():
    """Their protocol (w += lr * f(R, E) after each trial): with ``update_after_trial`` the rule E*(R - 1) is
    ``(r - 1)*elig`` and learns exactly what ``(r - r*r)*elig`` learns without the gate (r - r*r is R - 1 in the
    trial's last step, 0 elsewhere); ungated, ``(r - 1)*elig`` depresses at every step instead."""
    small = dict(n_afferents=10, n_stimuli=4, n_eval=4, t_stim_ms=40.0, default_steps=30, n_in=64, w0_sd=3.0)
    e = "delig = sy*tx - 0.01*v*v*tx"
    (_, w_ref, m_ref), = _run_reward(make("jordan_reward", **small), f"dw = 0.2*(r - r*r)*elig; {e}")
    (_, w_gate, m_gate), = _run_reward(make("jordan_reward", update_after_trial=True, **small),
                                       f"dw = 0.2*(r - 1)*elig; {e}")
    (_, w_every, _), = _run_reward(make("jordan_reward", **small), f"dw = 0.2*(r - 1)*elig; {e}")
    (_, w0, _), = _run_reward(make("jordan_reward", **small), "0*sy")
    assert not np.allclose(w_ref, w0)                          # the rule did change weights
    np.testing.assert_allclose(w_gate, w_ref, rtol=1e-5, atol=1e-6)
    assert m_gate["total_reward"] == m_ref["total_reward"]
    assert not np.allclose(w_every, w_ref, rtol=1e-3)
    with pytest.raises(TaskError, match="update_after_trial"):
        make("jordan_reward", update_after_trial="yes")


def test_search_configs_load():
    import os

    from plasticity_search.search import load_config

    root = os.path.join(os.path.dirname(__file__), "..", "search_spaces")
    for name, metric in (("jordan_correlation", "snr"), ("jordan_reward", "total_reward")):
        cfg = load_config(os.path.join(root, f"{name}.yaml"))
        assert cfg.model == "spiking" and cfg.fitness.metric == metric
        assert {e.task for split in ("search", "select", "final") for e in getattr(cfg.tasks, split)} == {name}
        assert len(cfg.tasks.final[0].seed_list) >= 8 and cfg.baselines


@pytest.mark.slow
def test_homeostatic_stdp_detects_the_pattern():
    """Their reference rule (homeostatic STDP, Masquelier 2017) against no plasticity and additive STDP, on the same
    final seeds, at their protocol (100 s of training, 11 s of test)."""
    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.spiking import evaluate_rule

    task = make("jordan_correlation")
    homeo, _ = evaluate_rule(resolve_rule("0.01*sy*tx - 0.0015*sy"), task, seeds=3)
    none, _ = evaluate_rule(resolve_rule("0*sy"), task, seeds=3)
    add, _ = evaluate_rule(resolve_rule("stdp_add"), task, seeds=3)
    assert homeo["snr_before"]["values"] == none["snr_before"]["values"] == none["snr"]["values"]
    assert 1.0 < none["snr"]["mean"] < 6.0                       # a window's peak over the noise, no learning
    assert all(h > n + 5.0 for h, n in zip(homeo["snr"]["values"], none["snr"]["values"]))
    assert add["snr"]["mean"] < none["snr"]["mean"] + 1.0       # additive STDP at 25 Hz does not learn it


@pytest.mark.slow
def test_reward_rule_beats_chance():
    """E(R - 1) (their evolved rule, with an eligibility like theirs written by the rule) learns; no plasticity
    does not (same final seeds, stimuli and initial weights)."""
    import dataclasses

    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.spiking import evaluate_rule

    settings = {"lr": 1.0, "tau_plus": 10.0, "tau_minus": 10.0, "tau_elig": 500.0}
    rule = resolve_rule("dw = 0.2*(r - r*r)*elig; delig = sy*tx - 0.01*v*v*tx")
    learned, _ = evaluate_rule(dataclasses.replace(rule, defaults=settings), "jordan_reward", seeds=4)
    none, _ = evaluate_rule(resolve_rule("0*sy"), "jordan_reward", seeds=4)
    assert learned["total_reward"]["mean"] > 150 and min(learned["total_reward"]["values"]) > 50
    assert learned["final_accuracy"]["mean"] > 0.7
    assert none["total_reward"]["mean"] < 50 and none["final_accuracy"]["mean"] < 0.6


def test_protocol_table_rows_report_seeds_that_diverged():
    """scripts/jordan_protocols.py (BENCHMARKS' tables) crashed with a TypeError on a rule that diverged on some
    seeds (an audit passed a run's rule as a formula, so at lr 1); its rows now say how many seeds diverged, and the
    JSON has null, never NaN."""
    import importlib.util
    import json
    import os

    from plasticity_search.search.stats import paired_difference

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "jordan_protocols.py")
    spec = importlib.util.spec_from_file_location("jordan_protocols", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ref = np.array([10.0, 20.0, 30.0])
    first = script.row_record("r_stdp", "r_stdp", None, ref, {"rate_hz": 5.0}, paired_difference(ref, ref), 1.0)
    part = np.array([12.0, np.nan, 35.0])
    p_some = paired_difference(part, ref)
    some = script.row_record("rule", "x", None, part, {"rate_hz": float("nan")}, p_some, 1.0)
    gone = np.full(3, np.nan)
    p_none = paired_difference(gone, ref)
    none = script.row_record("bad", "y", None, gone, {"rate_hz": None}, p_none, 1.0)
    assert first["diverged"] == 0 and first["mean"] == 20.0 and first["min"] == 10.0
    assert some["diverged"] == 1 and some["mean"] == 23.5 and some["values"] == [12.0, None, 35.0]
    assert none["diverged"] == 3 and none["mean"] is None and none["std"] is None and none["min"] is None
    assert script.row_text(first, None).startswith("| r_stdp | `r_stdp` | 20.00 ± 8.16 | 10.00 | 10.0, 20.0, 30.0 |  |")
    assert "23.50 ± 11.50 (1 of 3 seeds diverged) | 12.00 | 12.0, nan, 35.0 | diverged | rate_hz nan |" in \
        script.row_text(some, p_some)
    assert "nan ± nan (3 of 3 seeds diverged) | nan | nan, nan, nan | diverged |" in script.row_text(none, p_none)
    for r in (first, some, none):
        json.loads(json.dumps(r),
                   parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
