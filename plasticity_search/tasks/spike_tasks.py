"""Spiking tasks (kind 'spiking'), registered with the other built-in tasks by :mod:`plasticity_search.tasks`.

Each task is a frozen ``Task`` dataclass: its fields hold the task's data protocol *and* the network it is scored
with (sizes, neuron and encoder settings), so ``make("spiking_digits", n_hidden=200)`` is a different experiment.
``sample(seed, split, steps)`` returns a ``TaskData`` of float32 arrays like every task; what a row means is task
specific (below). The simulation (:mod:`plasticity_search.spiking.simulate`) adds the randomness that is cheaper to draw
inside JAX (Poisson spikes of the classification tasks) from a key derived from the same (seed, split):
:func:`plasticity_search.spiking.spiking_model.instance_key`. So one (seed, split, steps) always gives the same numbers.

==================  ====================================================================================  ==============
task                TaskData                                                                              ``steps`` =
==================  ====================================================================================  ==============
spiking_digits      x: 8x8 digits in [0, 1] (the ``digits`` task's samples), y: one-hot of 10 classes       presentations
spiking_yinyang     x: (x, y, 1-x, 1-y) (the ``yinyang`` task's samples), y: one-hot of 3 classes          presentations
stdp_pattern        x: one row per 100 ms segment, the step (0..99, dt = 1 ms) at which each afferent        segments
                    spikes in it, -1 none; y: 1 in the segments that carry the frozen pattern; x_eval /
                    y_eval: a fresh test stream with the same pattern
spiking_teacher     x: input spikes per 1 ms step (0/1), y: the teacher neuron's membrane; x_eval/y_eval:     ms steps
                    a test stream
spiking_reward      x: the frozen spike pattern of each trial (spike step per afferent, -1 none), y: one-hot  trials
                    of its class; x_eval/y_eval: the 30 patterns and their classes
==================  ====================================================================================  ==============
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Task, TaskData, TaskError, epoch_indices, one_hot, split_rngs
from .registry import make

__all__ = ["SpikingTask", "SpikingClassificationTask", "PatternTask", "TeacherTask", "RewardTask", "SPIKING_TASKS"]


@dataclass(frozen=True)
class SpikingTask(Task):
    """Common fields of the spiking tasks (neuron model; dt = 1 ms)."""

    dt: float = 1.0
    tau_mem: float = 20.0
    t_ref: float = 0.0
    reset: str = "subtract"
    tau_adapt: float = 0.0      # adaptive threshold (0: none)
    beta_adapt: float = 0.0

    @property
    def metrics(self) -> tuple[str, ...]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpikingClassificationTask(SpikingTask):
    """Online classification of encoded samples by one or two LIF hidden layers and a readout (e-prop style network).

    Each sample of the base task is presented for ``t_pres_ms`` (neuron membranes reset at the start; traces and
    eligibilities run on). Encoders: 'poisson' (rate ``max_rate_hz * x``, or Gaussian receptive fields with
    ``population`` > 1 inputs per dimension) or 'latency' (one spike per input, large values early; values <= 0
    silent). Readout 'membrane': leaky readout neurons, prediction = argmax of their mean membrane, output error
    ``softmax(v_out) - onehot`` every step; 'spikes': LIF outputs, prediction = argmax spike count (ties by
    membrane), output error ``(rate_est / target_rate - onehot)`` with a 20 ms rate filter. The error the rule
    sees at the output is divided by the presentation length T (the gradient of the presentation's time-averaged
    loss), hidden neurons get it through the feedback pathway (with ``n_hidden2`` > 0 there are two hidden layers:
    'fa' sends the error down layer by layer through fixed random matrices, 'dfa' straight from the output). Metrics: online_accuracy (each stream sample is
    first classified by a plasticity-free pass with the weights it finds, then learned), final_accuracy and
    final_loss (cross-entropy of softmax(mean readout)) on the eval set with the final weights frozen.
    """

    name: str = "spiking_digits"
    kind: str = field(default="spiking", init=False)
    description: str = "digits as Poisson spike trains (50 ms each), 64-100-10 LIF net with leaky readout"
    n_in: int = 64
    n_out: int = 10
    objective: str = field(default="classification", init=False)
    default_steps: int = 1000
    n_eval: int = 250
    t_ref: float = 2.0
    dataset: str = "digits"
    encoder: str = "poisson"
    population: int = 1
    max_rate_hz: float = 200.0
    t_pres_ms: float = 50.0
    n_hidden: int = 100
    n_hidden2: int = 0          # a second hidden LIF layer of this width (0: none), e.g. 64-100-100-10
    readout: str = "membrane"
    target_rate_hz: float = 100.0
    w_in: float = 1.0           # input weights ~ N(0, w_in^2 / n_inputs) ...
    w_out: float = 1.0          # ... output weights ~ N(0, w_out^2 / n_hidden)
    gain_in: float = 1.5        # membrane jump per unit weight and input spike
    gain_out: float = 0.5
    w_hid: float = 1.0          # second hidden layer (n_hidden2 > 0): weights ~ N(0, w_hid^2 / n_hidden) ...
    gain_hid: float = 1.5       # ... and its membrane jump per unit weight and spike

    def __post_init__(self):
        if not (isinstance(self.n_hidden, int) and self.n_hidden >= 1):
            raise TaskError(f"task {self.name!r}: n_hidden must be an integer >= 1, got {self.n_hidden!r}")
        if not (isinstance(self.n_hidden2, int) and self.n_hidden2 >= 0):
            raise TaskError(f"task {self.name!r}: n_hidden2 must be an integer >= 0 (0: one hidden layer), "
                            f"got {self.n_hidden2!r}")

    @property
    def steps_unit(self) -> str:
        return "presentations"

    @property
    def hidden(self) -> tuple[int, ...]:
        """Widths of the hidden LIF layers."""
        return (self.n_hidden,) + ((self.n_hidden2,) if self.n_hidden2 > 0 else ())

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("online_accuracy", "final_accuracy", "final_loss")

    @property
    def n_inputs(self) -> int:
        """Input neurons after encoding."""
        return self.n_in * self.population

    @property
    def n_pres(self) -> int:
        return int(round(self.t_pres_ms / self.dt))

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        base = make(self.dataset, n_eval=self.n_eval)
        return base.sample(seed, split, steps)


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatternTask(SpikingTask):
    """Detect a frozen spike pattern embedded in equal-rate noise (Masquelier, Guyonneau & Thorpe 2008).

    Time is cut into segments of ``pattern_ms`` (100 ms); one in every ``period`` segments (every 400 ms; the
    segments k with k % period == 1, so that training ends on background, not on a pattern) carries the frozen
    pattern. A random ``pattern_frac`` (half, as in Masquelier et al.) of the ``n_in`` afferents take part in
    it: each of them fires exactly once in *every* segment, at its frozen step (plus a jitter of up to
    ``jitter_ms``, fresh per presentation) in pattern segments and at a uniform random step elsewhere. The other
    afferents fire once per segment with probability ``rate_hz * pattern_ms / 1000`` at a uniform step, in pattern
    segments too. With the default ``rate_hz`` of 10 Hz every afferent fires once in every segment, so every
    afferent has the same rate, inside and outside the pattern: the pattern is in the spike *times* only (the
    pattern is cut from the same statistics as the rest, and no rate, count or population rate gives it away;
    Masquelier et al. made the rates equal for the same reason, with an at-least-once-per-50-ms constraint).
    Below 10 Hz the distractors fire less often than the pattern afferents, but each afferent's own rate is still
    the same inside and outside the pattern.

    One LIF neuron (tau_m 18 ms, reset to 0, 2 ms refractory) receives ``gain * w @ s``, w in [0, 1] initially
    uniform in [w0_lo, w0_hi]; input spikes reach the membrane one step (1 ms) after emission. After training on
    the stream, a test stream (x_eval: fresh noise, the same pattern) is replayed with frozen weights and the
    neuron's *free* membrane ``u`` (no threshold, no reset) is recorded. Detection SNR (a d' of the window peak):
    with ``m_k = max u`` in test segment k (100 ms), ``snr = (mean m_k over pattern segments - mean m_k over
    background segments) / std(m_k over background segments)`` (the first test segment is skipped);
    ``snr_before`` is the same for the initial weights, ``rate_hz`` the neuron's mean firing rate during training.
    The snr admits silent solutions (a higher peak membrane in pattern windows that never reaches threshold), so the
    test stream is also replayed through the spiking neuron itself (threshold, reset, refractory period, from
    rest): ``hit_rate`` is the fraction of pattern segments in which it fires at least once, ``false_alarm_rate``
    that of background segments, and ``detection = hit_rate - false_alarm_rate`` (Youden's J, in [-1, 1]: 0 for a
    silent neuron and for one that fires in every segment; 1 for a detector in Masquelier et al.'s sense);
    ``detection_before`` is the same for the initial weights.
    With equal rates, weights that ignore timing give a pattern peak that is one more draw from the background's
    distribution: snr is about 0 on average over seeds (about +-1 per seed). The peak, not the mean, of the
    membrane is what decides a detection: pair STDP makes the neuron respond at one time in the pattern and
    depresses the afferents that follow its spike, so the window-mean response hardly changes.
    """

    name: str = "stdp_pattern"
    kind: str = field(default="spiking", init=False)
    description: str = ("frozen 100 ms spike pattern every 400 ms, 1000 afferents at 10 Hz, equal rates in and out "
                        "of the pattern, one LIF; snr")
    n_in: int = 1000
    n_out: int = 1
    objective: str = field(default="detection", init=False)
    default_steps: int = 600          # 100 ms segments: 60 s of training, 150 pattern presentations
    n_eval: int = 200                 # test segments: 20 s
    tau_mem: float = 18.0
    t_ref: float = 2.0
    reset: str = "zero"
    rate_hz: float = 10.0             # distractor rate (pattern afferents: once per segment, 1000 / pattern_ms Hz)
    pattern_ms: float = 100.0
    period: int = 4
    pattern_frac: float = 0.5
    jitter_ms: float = 1.0
    gain: float = 0.01
    w0_lo: float = 0.3
    w0_hi: float = 0.7

    def __post_init__(self):
        if not 0.0 < self.rate_hz * self.pattern_ms / 1000.0 <= 1.0:
            raise TaskError(f"stdp_pattern: rate_hz * pattern_ms / 1000 must be in (0, 1] (at most one spike per "
                            f"afferent and segment), got {self.rate_hz * self.pattern_ms / 1000.0:g}")
        if not 0.0 < self.pattern_frac <= 1.0 or self.jitter_ms < 0 or self.period < 2:
            raise TaskError("stdp_pattern: need 0 < pattern_frac <= 1, jitter_ms >= 0 and period >= 2")

    @property
    def steps_unit(self) -> str:
        return "segments"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("snr", "snr_before", "rate_hz", "detection", "detection_before", "hit_rate", "false_alarm_rate")

    @property
    def seg_steps(self) -> int:
        return int(round(self.pattern_ms / self.dt))

    def pattern(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(frozen spike step of each afferent [n_in] (-1: not in the pattern), members [n_in] bool) of one
        (seed, split)."""
        rng = split_rngs(seed, split, 3)[0]
        members = np.zeros(self.n_in, bool)
        members[rng.permutation(self.n_in)[:max(1, int(round(self.pattern_frac * self.n_in)))]] = True
        t = rng.integers(0, self.seg_steps, size=self.n_in)
        return np.where(members, t, -1).astype(np.float32), members

    def _stream(self, rng, pattern, members, n):
        T = self.seg_steps
        p = self.rate_hz * self.pattern_ms / 1000.0
        fire = members[None, :] | (rng.random((n, self.n_in)) < p)
        x = np.where(fire, rng.integers(0, T, size=(n, self.n_in)), -1)
        is_pat = (np.arange(n) % self.period) == 1       # a stream of whole periods ends on background
        j = int(round(self.jitter_ms / self.dt))
        jit = rng.integers(-j, j + 1, size=(int(is_pat.sum()), self.n_in))
        x[is_pat] = np.where(members[None, :], np.clip(pattern[None, :] + jit, 0, T - 1), x[is_pat])
        return x.astype(np.float32), is_pat.astype(np.float32)[:, None]

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        pattern, members = self.pattern(seed, split)
        _, stream_rng, eval_rng = split_rngs(seed, split, 3)
        x, y = self._stream(stream_rng, pattern, members, steps)
        xe, ye = self._stream(eval_rng, pattern, members, self.n_eval)
        return TaskData(x, y, xe, ye, np.zeros(self.n_in, np.float32))


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TeacherTask(SpikingTask):
    """Error-driven learning: a student neuron learns to match a teacher neuron's membrane (Jordan et al. 2021).

    ``n_in`` Poisson inputs (rates drawn per seed uniformly in [rate_lo, rate_hi] Hz) drive a teacher and a
    student leaky membrane (tau_mem 20 ms, no threshold): ``u <- alpha u + gain * w_teacher @ s`` and the same for
    the student's ``v`` with its plastic weights. Teacher weights ~ U(-1, 1) per seed; the student starts from
    independent U(-1, 1). The rule sees ``e = v - u`` (post), ``v`` and ``psi = 1``. After the stream, the student
    is replayed with frozen weights on the test stream: ``neg_rmse = -sqrt(mean (v - u)^2)``, and
    ``neg_rmse_before`` with the initial weights.
    """

    name: str = "spiking_teacher"
    kind: str = field(default="spiking", init=False)
    description: str = "student neuron matches a teacher's membrane, 5 Poisson inputs; -rmse"
    n_in: int = 5
    n_out: int = 1
    objective: str = field(default="regression", init=False)
    default_steps: int = 10000       # 1 ms steps: 10 s
    n_eval: int = 2000
    rate_lo: float = 10.0
    rate_hi: float = 50.0
    gain: float = 1.0

    @property
    def steps_unit(self) -> str:
        return "time steps (ms)"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("neg_rmse", "neg_rmse_before")

    def teacher(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(rates_hz [n_in], teacher weights [n_in]) of one (seed, split)."""
        rng = split_rngs(seed, split, 3)[0]
        rates = rng.uniform(self.rate_lo, self.rate_hi, self.n_in)
        w = rng.uniform(-1.0, 1.0, self.n_in)
        return rates, w

    def membrane(self, spikes: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter
        alpha = np.exp(-self.dt / self.tau_mem)
        drive = self.gain * spikes.astype(np.float64) @ np.asarray(w, np.float64)
        return lfilter([1.0], [1.0, -alpha], drive).astype(np.float32)[:, None]

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        rates, w = self.teacher(seed, split)
        _, stream_rng, eval_rng = split_rngs(seed, split, 3)
        p = rates * self.dt / 1000.0

        def draw(rng, n):
            s = (rng.random((n, self.n_in)) < p).astype(np.float32)
            return s, self.membrane(s, w)

        x, y = draw(stream_rng, steps)
        xe, ye = draw(eval_rng, self.n_eval)
        return TaskData(x, y, xe, ye, np.zeros(self.n_in, np.float32))


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RewardTask(SpikingTask):
    """Reward-driven classification of frozen spike patterns with a global reward of +-1 (after Jordan et al.).

    ``n_patterns`` (30) frozen spike patterns over ``n_in`` afferents: in each pattern an afferent fires once with
    probability ``p_active``, at a step drawn uniformly in the first ``t_stim_ms`` of the trial (-1: silent);
    half the patterns are labelled 0, half 1. Each trial (``t_trial_ms``) shows one pattern (epochs of shuffles);
    two LIF output neurons (one per class) receive ``gain * W @ s`` (W initially uniform in [w0_lo, w0_hi]) and
    inhibit each other (``lateral_inh``: a spike of one lowers the other's membrane by that much one step later, a
    winner-take-all readout, so that the eligibility mostly belongs to the neuron that made the decision); the
    decision is the neuron with more spikes (ties: the higher summed membrane). Reward ``R = +1`` if right, ``-1``
    if wrong, delivered in the trial's last step as the global ``r = R`` together with ``rbar`` = the running mean
    of past rewards (time constant ``baseline_trials`` trials); at every other step ``r = rbar = 0``. Trials are
    taken to be separated by pauses long compared with every time constant, so membranes, spike traces and
    eligibilities start from 0 in each trial (``reset_traces``; the 1 s eligibility of r_stdp would otherwise
    carry ~20 earlier trials into each reward). Metrics: ``total_reward`` = sum of R over
    the trials (a policy that ignores the pattern earns 0 in expectation; with a fixed random network the sum
    over 500 trials spreads by about +-90 around 0 between seeds), ``late_accuracy`` = fraction of right
    decisions in the last quarter of the trials, ``rate_hz`` = mean output firing rate.
    Patterns are frozen spike timings (not rates): with dense Poisson rate patterns, pair STDP with
    ``A_minus > A_plus`` builds an eligibility that is anti-correlated with the output's spike count, and
    reward-modulated STDP then learns the wrong way.
    """

    name: str = "spiking_reward"
    kind: str = field(default="spiking", init=False)
    description: str = "30 frozen spike patterns, 2 LIF outputs, reward +-1 per trial; total_reward over 500 trials"
    n_in: int = 50
    n_out: int = 2
    objective: str = field(default="reward", init=False)
    default_steps: int = 500
    n_eval: int = 30
    n_patterns: int = 30
    p_active: float = 0.5
    t_stim_ms: float = 20.0
    t_trial_ms: float = 50.0
    baseline_trials: float = 10.0
    reset_traces: bool = True
    lateral_inh: float = 1.0
    gain: float = 3.0
    w0_lo: float = 0.0
    w0_hi: float = 0.05

    @property
    def steps_unit(self) -> str:
        return "trials"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("total_reward", "late_accuracy", "rate_hz")

    @property
    def n_trial(self) -> int:
        return int(round(self.t_trial_ms / self.dt))

    def patterns(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(spike steps [n_patterns, n_in] with -1 = silent, labels [n_patterns]) of one (seed, split)."""
        rng = split_rngs(seed, split, 2)[0]
        active = rng.random((self.n_patterns, self.n_in)) < self.p_active
        t = rng.integers(0, max(1, int(round(self.t_stim_ms / self.dt))), size=(self.n_patterns, self.n_in))
        labels = rng.permutation(np.arange(self.n_patterns) % self.n_out)
        return np.where(active, t, -1).astype(np.float32), labels

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        pats, labels = self.patterns(seed, split)
        order = epoch_indices(split_rngs(seed, split, 2)[1], self.n_patterns, steps)
        return TaskData(pats[order], one_hot(labels[order], self.n_out), pats, one_hot(labels, self.n_out),
                        np.zeros(self.n_in, np.float32))


SPIKING_TASKS = (
    SpikingClassificationTask(),
    SpikingClassificationTask(
        name="spiking_yinyang", n_in=4, n_out=3, dataset="yinyang", default_steps=1000, n_eval=500,
        population=10, max_rate_hz=200.0,
        description="Yin-Yang, 4 values x 10 Gaussian receptive fields as Poisson trains (50 ms), 40-100-3 net"),
    PatternTask(),
    TeacherTask(),
    RewardTask(),
)
