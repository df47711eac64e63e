"""Learning curves of the spiking tasks (spiking/online_curves.py): what the network did while it learned, per
window of the training stream, as the rate tasks' online curves. Known answers: each task's curve against the
metric it already reports, or against a replay of the same stream with the weights frozen."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search.rules.resolve import resolve_rule
from plasticity_search.spiking.online_curves import CURVE_POINTS, window_detection, window_means
from plasticity_search.spiking.plasticity import rule_hyper
from plasticity_search.spiking.spiking_model import evaluate_rule, instance_key
from plasticity_search.spiking.simulate import simulate
from plasticity_search.tasks import TaskData, make
from plasticity_search.tasks.base import CURVE_METRIC


def test_window_helpers_known_answers():
    np.testing.assert_allclose(window_means(jnp.arange(10.0), 5), [0.5, 2.5, 4.5, 6.5, 8.5])
    np.testing.assert_allclose(window_means(jnp.arange(11.0), 5), [0.5, 2.5, 4.5, 6.5, 8.5])   # the 11th dropped
    np.testing.assert_allclose(window_means(jnp.arange(3.0), 5), [0.0, 1.0, 2.0])             # fewer items: 1 each
    assert window_means(jnp.ones(100)).shape == (CURVE_POINTS,)
    fired = jnp.array([1, 0, 0, 1, 1, 1, 0, 0], bool)
    pattern = jnp.array([1, 0, 0, 0, 1, 0, 0, 0], bool)
    # window 1: hit 1/1, false alarms 1/3; window 2: hit 1/1, false alarms 1/3
    np.testing.assert_allclose(window_detection(fired, pattern, 4, 2), [2 / 3, 2 / 3], rtol=1e-6)
    # windows of 2 segments, below the pattern period: the 2nd and 4th would hold no pattern segment
    d = np.asarray(window_detection(fired, pattern, 1, 4))
    np.testing.assert_allclose(d[[0, 2]], [1.0, 0.0])          # (hit 1, false alarm 0), (hit 1, false alarm 1)
    assert np.isnan(d[[1, 3]]).all()
    # with the task's period (4) the windows hold a period each: 2 windows, whatever points asks for
    np.testing.assert_allclose(window_detection(fired, pattern, 4, 20), [2 / 3, 2 / 3], rtol=1e-6)


def test_classification_curve_is_the_online_accuracy_in_windows():
    """spiking_digits: the curve is the prediction before learning on each presentation, in 20 windows; 40
    presentations make windows of 2, so the curve's mean is the online accuracy."""
    res, curve = evaluate_rule(resolve_rule("eprop"), "spiking_digits", seeds=2, steps=40, split="select")
    assert len(curve["mean"]) == CURVE_POINTS and curve["metric"] == "online accuracy"
    assert curve["unit"] == "presentations"
    assert np.mean(curve["mean"]) == pytest.approx(res["online_accuracy"]["mean"], abs=1e-6)
    assert all(4 * v == int(4 * v) for v in curve["mean"] + curve["std"])   # 2 seeds x windows of 2: quarters


@pytest.mark.parametrize("task", ["spiking_reward", "jordan_reward"])
def test_reward_curve_is_the_fraction_of_rewarded_trials(task):
    """Reward tasks: R = +1 or -1 per trial, so the curve's mean over windows of equal size is
    (total_reward / trials + 1) / 2."""
    res, curve = evaluate_rule(resolve_rule("r_stdp"), task, seeds=2, steps=40, split="select")
    assert curve["metric"] == CURVE_METRIC["reward"] == "rewarded trials (fraction)" and curve["unit"] == "trials"
    for s in range(2):
        total = res["total_reward"]["values"][s]
        per_seed = np.mean(_seed_curve(task, "r_stdp", s, 40))
        assert per_seed == pytest.approx((total / 40 + 1) / 2, abs=1e-6)


def _seed_curve(task_name, rule_name, seed, steps, lr=None, split="select"):
    task = make(task_name)
    rule = resolve_rule(rule_name)
    data = TaskData(*(jnp.asarray(a) for a in task.sample(seed, split, steps)))
    d = dict(rule.defaults or {})
    if lr is not None:
        d["lr"] = lr
    metrics, curve = jax.jit(lambda: simulate(task, rule.space, rule.program, rule_hyper(d, dt=task.dt), data,
                                               instance_key(seed, split)))()
    return np.asarray(curve)


def test_pattern_curve_without_plasticity_is_the_frozen_neurons_detection():
    """stdp_pattern at lr 0: the weights stay at their initial values, so whether the neuron fired in each training
    segment is what a replay of the training stream through the frozen neuron gives (the replay of the detection
    metric); the curve is that replay's hits minus false alarms per window."""
    from plasticity_search.spiking.network import NetSpec
    from plasticity_search.spiking.simulate import _fired_per_segment, _lif

    task = make("stdp_pattern")
    steps, seed = 160, 2
    curve = _seed_curve("stdp_pattern", "stdp_add", seed, steps, lr=0.0, split="search")
    data = task.sample(seed, "search", steps)
    spec = NetSpec((task.n_in, 1), lif=_lif(task), readout="spikes", gains=(task.gain,))
    w0 = jax.random.uniform(instance_key(seed, "search"), (1, task.n_in), jnp.float32, task.w0_lo, task.w0_hi)
    fired = _fired_per_segment(spec, w0, jnp.asarray(data.x_stream), task.seg_steps)[:, 0]
    want = np.asarray(window_detection(fired > 0, jnp.asarray(data.y_stream[:, 0]) > 0.5, task.period))
    assert curve.shape == (CURVE_POINTS,) and np.isfinite(curve).all()
    np.testing.assert_allclose(curve, want, rtol=1e-6, atol=1e-6)      # the same segments fired
    assert 0 < np.asarray(fired).mean() < 1              # the frozen neuron fires in some segments, not all


def test_teacher_curve_is_the_online_squared_error():
    """spiking_teacher at lr 0: the curve is the squared error of the readout membrane against the teacher's at each
    step of the training stream, which a replay of that stream through the network's forward pass with the
    initial weights frozen gives; with the rule's own lr the error of the last window is below the first's."""
    from plasticity_search.spiking.network import NetSpec, forward, init_state
    from plasticity_search.spiking.simulate import _lif

    task = make("spiking_teacher")
    seed, steps = 1, 400
    curve = _seed_curve("spiking_teacher", "bp_stdp", seed, steps, lr=0.0)
    a = task.sample(seed, "select", steps)
    spec = NetSpec((task.n_in, 1), lif=_lif(task), readout="membrane", out_tau=task.tau_mem, gains=(task.gain,))
    w0 = jax.random.uniform(instance_key(seed, "select"), (1, task.n_in), jnp.float32, -1.0, 1.0)

    def step(st, xu):
        st, fw = forward(spec, st, xu[0])
        return st, (fw.v[-1][0] - xu[1][0]) ** 2

    _, sq = jax.lax.scan(step, init_state(spec, (w0,)), (jnp.asarray(a.x_stream), jnp.asarray(a.y_stream)))
    np.testing.assert_allclose(curve, np.asarray(window_means(sq)), rtol=1e-5)
    assert curve.shape == (CURVE_POINTS,) and (curve > 0).all()
    learned = _seed_curve("spiking_teacher", "bp_stdp", seed, 2000)
    assert learned[-1] < 0.5 * learned[0]


def test_a_spiking_curve_of_a_rule_that_exploded_is_nan():
    from plasticity_search.rules.formula import compile_formula
    from plasticity_search.rules.known import SPIKING_SPACE
    from plasticity_search.rules import pad, stack
    from plasticity_search.spiking import make_evaluator, make_instances

    space = SPIKING_SPACE.resized(n_post=2, n_pre=1, n_terms=3)
    progs = [pad(*compile_formula(f, SPIKING_SPACE), space) for f in ("1e30*sx*tx + 1e30*sy", "0.01*sy*tx")]
    task = make("spiking_teacher", default_steps=400, n_eval=200)
    m, c = make_evaluator(space, task, {"lr": 0.01})(stack(progs), make_instances(task, [0], "search"))
    c = np.asarray(c)
    assert np.asarray(m["finite"]).tolist() == [[0.0], [1.0]]
    assert np.isnan(c[0]).all() and np.isfinite(c[1]).all() and c.shape == (2, 1, CURVE_POINTS)


def test_evaluate_prints_the_learning_curve(capsys):
    from plasticity_search import cli

    assert cli.main(["evaluate", "bp_stdp", "--task", "spiking_teacher", "--seeds", "1", "--steps", "200"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("curve")]
    assert len(line) == 1 and "online MSE per 10 time steps (ms), mean over seeds:" in line[0]
    assert len(line[0].split(": ")[1].split()) == CURVE_POINTS
