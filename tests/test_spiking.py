"""Spiking simulation: pairing protocol vs analytic windows, LIF, encoders, network step order, population
evaluator (per-candidate results, NaN contained, one compile), spiking tasks, stdp_pattern learning."""
import dataclasses
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search.rules import SPIKING_SPACE, RuleError, compile_formula, pad, stack
from plasticity_search.rules.resolve import resolve_rule
from plasticity_search.spiking import (analytic_window, evaluate_rule, make_evaluator, make_instances, pairing_dw,
                                       pairing_run)
from plasticity_search.spiking.encoders import (latency_spikes, latency_steps, poisson_spikes, population_rates,
                                                times_to_spikes)
from plasticity_search.spiking.lif import LIFParams, lif_init, lif_rate_theory, lif_step
from plasticity_search.spiking.network import NetSpec, forward, init_state, learn
from plasticity_search.spiking.plasticity import rule_hyper
from plasticity_search.tasks import TaskData, list_tasks, make

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------- pairing protocol
def test_stdp_window_script_stdp_add(tmp_path, capsys):
    """The script runs the protocol through the simulator; stdp_add within 5 % of the analytic window, PNG written."""
    png = tmp_path / "w.png"
    assert _script("stdp_window").main(["stdp_add", "--json", "--plot", str(png)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["offsets_ms"]) == 201 and res["offsets_ms"][0] == -100 and res["offsets_ms"][-1] == 100
    assert res["max_rel_error"] <= 0.05 and res["max_abs_error_at_zero"] == 0.0
    assert png.exists() and png.stat().st_size > 5000
    assert _script("stdp_window").main(["no_such_rule"]) == 2


def test_bench_spiking_space_of_a_config(tmp_path, capsys):
    """--space CONFIG adds the config's rule space as a variant (random programs of that space by the interpreter's
    path); a bad config is one line and exit 2."""
    bench = _script("bench_spiking")
    cfg = os.path.join(ROOT, "search_spaces", "spiking_digits.yaml")
    assert bench.main(["--json", "--pop", "2", "--steps", "20", "--repeats", "1", "--variants", "interpreted_stdp",
                       "--space", cfg]) == 0
    res = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in res["rows"]}
    assert set(rows) == {"interpreted_stdp", "handwritten_stdp", "space:spiking_digits"}
    assert rows["space:spiking_digits"]["candidate_steps_per_s"] > 0
    assert rows["handwritten_stdp"]["ratio_to_handwritten"] == 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: [1,\n")
    assert bench.main(["--space", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench_spiking: error: --space:") and err.count("\n") == 1 and "Traceback" not in err
    assert bench.main(["--space", os.path.join(ROOT, "search_spaces", "quickstart.yaml")]) == 2   # a rate space
    assert "is a rate config" in capsys.readouterr().err


def test_pairing_stdp_mult_matches_analytic():
    rule = resolve_rule("stdp_mult")
    off = np.arange(-100, 101, 4.0)
    for w0 in (0.2, 0.7):
        sim = pairing_dw(rule, off, dt=0.1, w0=w0)
        ana = analytic_window("stdp_mult", off, w0=w0)
        nz = ana != 0
        assert np.max(np.abs(sim[nz] - ana[nz]) / np.abs(ana[nz])) <= 0.05
        assert sim[~nz] == pytest.approx(0.0, abs=1e-12)
        assert sim[off > 0].min() > 0 and sim[off < 0].max() < 0


def test_pairing_conventions_order_and_overrides():
    """Delta = 0 gives 0 for pair STDP (traces read before this step's spikes); overrides reach the simulation."""
    rule = resolve_rule("stdp_add")
    dw = pairing_dw(rule, [-20.0, 0.0, 20.0], dt=1.0)
    assert dw[1] == 0.0
    assert dw[2] == pytest.approx(0.01 * np.exp(-1.0), rel=1e-5)
    assert dw[0] == pytest.approx(-0.0105 * np.exp(-1.0), rel=1e-5)
    dw2 = pairing_dw(rule, [20.0], dt=1.0, lr=2.0, tau_plus=10.0)
    assert dw2[0] == pytest.approx(2 * 0.01 * np.exp(-2.0), rel=1e-5)
    # weight bounds are applied: a tiny upper bound caps the potentiation
    assert pairing_dw(rule, [5.0], dt=1.0, w0=0.999)[0] == pytest.approx(0.001, rel=1e-3)
    # r_stdp: no reward -> no weight change, but the eligibility window is the STDP window
    out = pairing_run(resolve_rule("r_stdp"), [-10.0, 10.0], dt=0.5)
    assert np.all(out["dw"] == 0.0)
    np.testing.assert_allclose(out["delig"], analytic_window("r_stdp", [-10.0, 10.0]), rtol=1e-4)
    # vogels: symmetric window minus the pre-spike depression
    off = np.array([-30.0, -5.0, 0.0, 5.0, 30.0])
    np.testing.assert_allclose(pairing_dw(resolve_rule("vogels"), off, dt=0.5), analytic_window("vogels", off),
                               rtol=1e-3, atol=1e-9)
    with pytest.raises(RuleError):
        analytic_window("eprop", off)


# ---------------------------------------------------------------------------------------------------------- LIF
def _run_lif(p: LIFParams, current: float, steps: int = 2000):
    def step(st, _):
        st, s, v, psi = lif_step(st, 0.0, p, current)
        return st, (s, v, psi)
    _, (s, v, psi) = jax.lax.scan(step, lif_init((1,), p), None, length=steps)
    return np.asarray(s[:, 0]), np.asarray(v[:, 0]), np.asarray(psi[:, 0])


@pytest.mark.parametrize("t_ref", [0.0, 3.0])
def test_lif_rate_vs_current(t_ref):
    p = LIFParams(dt=0.1, tau_mem=20.0, reset="zero", t_ref=t_ref)
    rates = []
    for i_ext in (0.9, 1.0, 1.2, 1.5, 2.0, 4.0):
        s, _, _ = _run_lif(p, i_ext, steps=20000)                      # 2 s
        spikes = np.nonzero(s)[0]
        rate = 0.0 if len(spikes) < 2 else 1000.0 / (np.mean(np.diff(spikes)) * p.dt)
        assert rate == pytest.approx(lif_rate_theory(i_ext, p), rel=1e-3, abs=1e-9)
        rates.append(rate)
        if len(spikes) >= 2:   # close to the continuous-time LIF: 1 / (t_ref + tau ln(I / (I - 1)))
            cont = 1000.0 / (t_ref + 20.0 * np.log(i_ext / (i_ext - 1.0)))
            assert rate == pytest.approx(cont, rel=0.05)
    assert rates[0] == rates[1] == 0.0 and np.all(np.diff(rates[1:]) > 0)
    if t_ref:
        assert rates[-1] < 1000.0 / t_ref
        isi = np.diff(np.nonzero(_run_lif(p, 1e4, 200)[0])[0])   # crosses in one step
        assert isi.min() == round(t_ref / p.dt) + 1                   # held for n_ref steps, spikes on the next


def test_lif_reset_modes_and_rule_membrane():
    th = 1.0
    for reset, after in (("subtract", 0.3), ("zero", 0.0), ("none", 1.3)):
        p = LIFParams(dt=1.0, tau_mem=20.0, reset=reset)
        st, s, v, psi = lif_step(lif_init((1,), p), jnp.array([1.3]), p)
        assert float(s[0]) == 1.0 and float(v[0]) == pytest.approx(1.3)   # the rule sees v before the reset
        assert float(st.v[0]) == pytest.approx(after, abs=1e-6)
        assert float(psi[0]) == pytest.approx(0.3 * (1 - 0.3 / th))
    p = LIFParams(dt=1.0, tau_mem=20.0, reset="subtract", t_ref=2.0)
    st, *_ = lif_step(lif_init((1,), p), jnp.array([1.3]), p)
    st, s, v, psi = lif_step(st, jnp.array([5.0]), p)                  # refractory: no integration, no spike
    assert float(s[0]) == 0.0 and float(psi[0]) == 0.0 and float(st.v[0]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        LIFParams(reset="bogus")


def test_adaptive_threshold_lowers_rate():
    base = LIFParams(dt=1.0, tau_mem=20.0, reset="subtract")
    alif = dataclasses.replace(base, tau_adapt=200.0, beta_adapt=0.2)
    n0 = _run_lif(base, 2.0, 1000)[0].sum()
    n1 = _run_lif(alif, 2.0, 1000)[0].sum()
    assert 0 < n1 < 0.7 * n0


# ----------------------------------------------------------------------------------------------------- encoders
def test_encoders():
    rates = jnp.array([0.0, 20.0, 100.0, 500.0])
    s = np.asarray(poisson_spikes(jax.random.key(0), rates, 20000, dt=1.0))
    assert s.shape == (20000, 4) and set(np.unique(s)) <= {0.0, 1.0}
    np.testing.assert_allclose(s.mean(0) * 1000.0, rates, rtol=0.06, atol=0.01)
    x = jnp.array([0.0, 0.25, 1.0])
    np.testing.assert_array_equal(np.asarray(latency_steps(x, t_max=20.0)), [-1.0, 15.0, 0.0])
    lat = np.asarray(latency_spikes(x, 30, t_max=20.0))
    assert lat.sum(0).tolist() == [0.0, 1.0, 1.0] and lat[15, 1] == 1.0 and lat[0, 2] == 1.0
    pr = np.asarray(population_rates(jnp.array([[0.0, 1.0]]), 5, 100.0))
    assert pr.shape == (1, 10) and pr[0, 0] == pytest.approx(100.0) and pr[0, 9] == pytest.approx(100.0)
    assert pr[0, 4] < 1.0
    np.testing.assert_array_equal(np.asarray(times_to_spikes(jnp.array([3.0, -1.0, 3.0, 0.0]), 3)), [1, 0, 1, 0])


# ------------------------------------------------------------------------------------------------------ network
def test_network_delay_concatenation_and_rule_order():
    """Spikes reach the next layer one step later; the rule sees per-layer slices of the concatenated vectors
    and the traces before this step's spikes; ``sy*tx`` on two layers equals the hand-computed outer products."""
    prog, space = compile_formula("sy*tx + 0.5*v*sx", SPIKING_SPACE)
    spec = NetSpec((3, 2, 2), lif=LIFParams(dt=1.0, tau_mem=20.0), readout="spikes")
    w1 = jnp.full((2, 3), 2.0)          # any input spike makes both hidden neurons fire one step later
    w2 = jnp.full((2, 2), 0.0)
    h = rule_hyper({"lr": 1.0, "tau_plus": 10.0})
    st = init_state(spec, (w1, w2))
    e0 = jnp.zeros(2)
    st, fw = forward(spec, st, jnp.array([1.0, 0.0, 0.0]))
    assert np.asarray(fw.s[1]).sum() == 0                              # the input spike is still in transit
    st = learn(space, prog, h, spec, st, fw, e0)
    # dW1 = 0.5 * v_hidden (x) sx: v = 0 (nothing arrived) -> no change yet
    np.testing.assert_allclose(np.asarray(st.ws[0]), 2.0)
    st, fw = forward(spec, st, jnp.zeros(3))
    assert np.asarray(fw.s[1]).tolist() == [1.0, 1.0]
    v_hidden = np.asarray(fw.v[0])
    tx_in = np.asarray(st.tr.tx[:3]) * np.exp(-0.1)                    # decayed by one step, before adding spikes
    st2 = learn(space, prog, h, spec, st, fw, e0)
    dw1 = np.asarray(st2.ws[0]) - np.asarray(st.ws[0])
    np.testing.assert_allclose(dw1, np.outer(np.asarray(fw.s[1]), tx_in), rtol=1e-5)
    # layer 2: post = outputs (no spike yet, v = 0), pre = hidden spikes this step -> 0.5 * v_out * 1 = 0
    np.testing.assert_allclose(np.asarray(st2.ws[1]), 0.0, atol=1e-7)
    assert v_hidden.min() >= 1.0


# ---------------------------------------------------------------------------------------------- population eval
def test_population_evaluator_per_candidate_nan_contained_one_compile():
    task = make("spiking_teacher", default_steps=400, n_eval=200)
    space = SPIKING_SPACE.resized(n_post=2, n_pre=1, n_terms=3)
    rules = ["bp_stdp", "stdp_add", "eprop"]
    progs = [pad(resolve_rule(r).program, resolve_rule(r).space, space) for r in rules]
    boom, bspace = compile_formula("1e30*sx*tx + 1e30*sy", SPIKING_SPACE)
    progs.append(pad(boom, bspace, space))
    pop = stack(progs)
    inst = make_instances(task, [0, 1], "search")
    ev = make_evaluator(space, task, {"lr": 0.01, "tau_plus": 20.0})
    out = {k: np.asarray(v) for k, v in ev(pop, inst)[0].items()}
    assert set(out) == {"neg_rmse", "neg_rmse_before", "finite"}
    assert all(v.shape == (4, 2) for v in out.values())
    np.testing.assert_array_equal(out["finite"], [[1, 1], [1, 1], [1, 1], [0, 0]])
    assert np.isnan(out["neg_rmse"][3]).all() and np.isfinite(out["neg_rmse"][:3]).all()
    assert (out["neg_rmse"][0] > out["neg_rmse_before"][0] + 0.5).all()     # bp_stdp = -e*tx learns
    # a candidate's result does not depend on its neighbours
    solo = {k: np.asarray(v) for k, v in ev(stack([progs[0]]), inst)[0].items()}
    np.testing.assert_allclose(solo["neg_rmse"][0], out["neg_rmse"][0], rtol=1e-5)
    # per-candidate hyper-parameters; another population of the same shape reuses the compiled function
    n0 = ev.compiled._cache_size()
    h = rule_hyper({"lr": 0.01})
    lrs = jnp.array([0.0, 0.01, 0.01, 0.01])
    out2, _ = ev(stack([progs[1], progs[0], progs[2], progs[0]]), inst, h._replace(lr=lrs))
    assert ev.compiled._cache_size() == n0
    np.testing.assert_allclose(np.asarray(out2["neg_rmse"][0]), out["neg_rmse_before"][0], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out2["neg_rmse"][1]), out["neg_rmse"][0], rtol=1e-5)


def test_evaluate_rule_api_and_errors():
    res, _ = evaluate_rule(resolve_rule("bp_stdp"), "spiking_teacher", seeds=2, steps=300, split="select")
    assert set(res) == {"neg_rmse", "neg_rmse_before", "finite"}
    assert all(set(v) == {"mean", "std", "values"} for v in res.values()) and res["finite"]["mean"] == 1.0
    assert all(len(v["values"]) == 2 for v in res.values())          # per seed, for paired comparisons
    frozen, _ = evaluate_rule(resolve_rule("bp_stdp"), "spiking_teacher", seeds=2, steps=300, split="select", lr=0.0)
    np.testing.assert_allclose(frozen["neg_rmse"]["values"], frozen["neg_rmse_before"]["values"], rtol=1e-5)
    np.testing.assert_allclose(frozen["neg_rmse_before"]["values"], res["neg_rmse_before"]["values"], rtol=1e-6)
    assert res["neg_rmse"]["mean"] > frozen["neg_rmse"]["mean"]       # the rule's own lr learns; lr 0 does not
    with pytest.raises(RuleError):
        evaluate_rule(resolve_rule("oja"), "spiking_teacher")
    with pytest.raises(RuleError):
        evaluate_rule(resolve_rule("bp_stdp"), "digits")
    with pytest.raises(RuleError):
        evaluate_rule(resolve_rule("bp_stdp"), "spiking_teacher", feedback="nope")


def test_evaluate_cli_lr_reaches_spiking_rules(capsys):
    """``evaluate --lr`` replaces a spiking rule's learning rate (it used to be ignored) and is shown."""
    from plasticity_search import cli
    args = ["evaluate", "bp_stdp", "--task", "spiking_teacher", "--seeds", "2", "--steps", "300", "--split",
            "select", "--json"]
    assert cli.main(args + ["--lr", "0"]) == 2                           # bad flag: one line, exit 2
    capsys.readouterr()
    assert cli.main(args + ["--lr", "1e-9"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lr"] == 1e-9
    m = out["metrics"]
    np.testing.assert_allclose(m["neg_rmse"]["values"], m["neg_rmse_before"]["values"], rtol=1e-4)
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lr"] == resolve_rule("bp_stdp").defaults["lr"]
    assert out["metrics"]["neg_rmse"]["mean"] > out["metrics"]["neg_rmse_before"]["mean"]
    # the learning curve: the readout's squared error per window of 15 ms steps, falling as bp_stdp learns
    c = out["curve"]
    assert c["metric"] == "online MSE" and c["unit"] == "time steps (ms)" and len(c["mean"]) == 20
    assert c["mean"][-1] < c["mean"][0]


# ------------------------------------------------------------------------------------------------------- tasks
SPIKING = ["spiking_digits", "spiking_yinyang", "stdp_pattern", "spiking_teacher", "spiking_reward"]


def test_spiking_tasks_registered_and_deterministic():
    kinds = {t.name: t.kind for t in list_tasks()}
    for name in SPIKING:
        assert kinds[name] == "spiking"
        task = make(name)
        a, b = task.sample(3, "search", 40), task.sample(3, "search", 40)
        assert isinstance(a, TaskData) and a.x_stream.shape == (40, task.n_in)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        assert not np.array_equal(a.x_stream, task.sample(4, "search", 40).x_stream)
        assert set(task.metrics) and make(name) == task
    pat = make("stdp_pattern").sample(0, "search", 12)
    np.testing.assert_array_equal(pat.y_stream[:, 0], np.tile([0, 1, 0, 0], 3))
    same = np.abs(pat.x_stream[1] - pat.x_stream[5]) <= 2                           # the frozen pattern, +-1 ms
    assert 0.5 <= same.mean() < 0.56                # half the afferents, and ~5% of the rest by chance
    assert (pat.x_stream >= 0).all() and pat.x_stream.max() <= 99                    # 10 Hz: once per segment
    teach = make("spiking_teacher")
    d = teach.sample(1, "final", 500)
    _, w = teach.teacher(1, "final")
    np.testing.assert_allclose(d.y_stream[:, 0], teach.membrane(d.x_stream, w)[:, 0])


# ------------------------------------------------------------------------------------------ known answer (short)
def test_stdp_pattern_snr_improves_under_stdp_add():
    res, _ = evaluate_rule(resolve_rule("stdp_add"), "stdp_pattern", seeds=3, split="search")
    assert res["finite"]["mean"] == 1.0
    assert res["snr"]["mean"] > res["snr_before"]["mean"] + 1.0
    assert res["snr"]["mean"] > 1.5
