"""The correlation- and reward-driven protocols of Jordan, Schmidt, Senn & Petrovici 2021 (eLife 10:e66273,
"Evolving interpretable plasticity for spiking networks"), as their code runs them (e2l-cgp-snn,
``experiments/correlation_based`` and ``experiments/reward_based``), on this package's 1 ms simulator.

Both tasks are registered with the other built-in tasks by :mod:`plasticity_search.tasks`; their simulation is
:mod:`plasticity_search.spiking.jordan`. Where the simulator or the CPU budget forces a difference from their code, it
is a field of the task (so ``make("jordan_correlation", n_eval=310)`` is their validation length) and is listed in
the class docstring under "Differences".

Spike trains are stored as *event rows*: one row per time window (a 100 ms segment, or one 500 ms stimulus), holding
the window's spikes as codes ``step * n_afferents + afferent`` (``step`` counted from the window's start in steps
of ``dt``), sorted, padded with -1. So a row's width ``n_in`` is the number of event slots, not the number of
inputs (``n_afferents``); :func:`pack_events` / :func:`unpack_events` convert. Two spikes of one afferent in the same
``dt`` step are one spike (at 1 ms and a few Hz this merges about one spike in 10^4).

==================  ======================================================================================  =========
task                TaskData                                                                                ``steps``
==================  ======================================================================================  =========
jordan_correlation  x: event row of each 100 ms segment; y: 1 in the segments that carry the frozen pattern;  segments
                    x_eval / y_eval: the first ``n_eval`` segments of the same stream (their replay), with
                    the pattern on the schedule (training ends on background, the replay need not)
jordan_reward       x: event row of the stimulus shown in each trial, y: its target activity (+1: spike, -1:  trials
                    stay silent); x_eval / y_eval: the ``n_stimuli`` stimuli and their targets
==================  ======================================================================================  =========
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .base import TaskData, TaskError, split_rngs
from .spike_tasks import SpikingTask

__all__ = ["JordanCorrelationTask", "JordanRewardTask", "JORDAN_TASKS", "pack_events", "unpack_events"]

STREAM_BLOCK = 100      # segments per block of background draws (jordan_correlation streams are prefix-consistent)


def pack_events(row: np.ndarray, step: np.ndarray, afferent: np.ndarray, n_rows: int, n_afferents: int,
                width: int, where: str) -> np.ndarray:
    """Event rows [n_rows, width] float32 from spikes (row index, step in the row's window, afferent): codes
    ``step * n_afferents + afferent``, sorted, duplicates merged, padded with -1. A row with more than ``width``
    spikes is a TaskError naming ``where`` (never a silently dropped spike)."""
    code = np.asarray(step, np.int64) * n_afferents + np.asarray(afferent, np.int64)
    base = int(code.max(initial=0)) + 1
    if base > 2 ** 24:
        raise TaskError(f"{where}: event codes up to {base - 1} are not exact in float32 (fewer steps per window "
                        "or afferents)")
    row, code = np.divmod(np.unique(np.asarray(row, np.int64) * base + code), base)   # sorted by row, then code
    counts = np.bincount(row, minlength=n_rows)
    if counts.max(initial=0) > width:
        raise TaskError(f"{where}: a window holds {counts.max()} spikes, more than the {width} event slots of a row "
                        f"(raise n_in)")
    pos = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.full((n_rows, width), -1.0, np.float32)
    out[row, pos] = code
    return out


def unpack_events(rows: np.ndarray, n_afferents: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row index, step, afferent) int arrays of every event in ``rows`` [n, width] (the inverse of
    :func:`pack_events`)."""
    rows = np.asarray(rows)
    r, slot = np.nonzero(rows >= 0)
    step, aff = np.divmod(rows[r, slot].astype(np.int64), n_afferents)
    return r, step, aff


def _poisson_events(rng: np.random.Generator, lam: np.ndarray, n_rows: int, window_ms: float, dt: float):
    """Poisson spikes in ``n_rows`` windows of ``window_ms``: afferent a fires Poisson(lam[a]) times per window at
    uniform times. Returns (row, step, afferent)."""
    counts = rng.poisson(np.broadcast_to(lam, (n_rows, lam.size)))
    idx = np.repeat(np.arange(counts.size), counts.ravel())
    row, aff = np.divmod(idx, lam.size)
    step = np.floor(rng.uniform(0.0, window_ms, size=idx.size) / dt).astype(np.int64)
    return row, np.minimum(step, int(round(window_ms / dt)) - 1), aff


def _check_width(name: str, width: int, mean_events: float) -> None:
    need = mean_events + 6.0 * math.sqrt(max(mean_events, 1.0)) + 10.0
    if width < need:
        raise TaskError(f"{name}: n_in (event slots per window) must be >= {math.ceil(need)} for "
                        f"{mean_events:.0f} spikes per window on average, got {width}")


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JordanCorrelationTask(SpikingTask):
    """Correlation-driven learning (Jordan et al. 2021, Fig. 5; after Masquelier 2017): a LIF neuron learns to
    respond to a frozen spike pattern hidden in Poisson noise.

    Protocol (their ``params.json`` and ``sim_utils.py``): ``n_afferents`` = 1000 inputs; background Poisson at
    ``rate_hz`` = 3 Hz; a frozen pattern of ``t_stim_ms`` = 100 ms (drawn once per instance; each afferent fires
    at most once in it, see :meth:`pattern`: about 26% of them) is shown after every ``t_inter_ms`` = 400 ms of
    background, i.e. in the last 100 ms segment of every 500 ms cycle (segments k with k % 5 == 4). In a pattern
    window every afferent's background is cut out and only the pattern's spikes remain; the background of the
    afferents that take part in the pattern is thinned outside the windows by ``alpha = 1 - nu_stim / nu_inter``
    (``nu_stim`` = one pattern spike per cycle, ``nu_inter = rate * t_inter / (t_inter + t_stim)``; 1/6 at the
    defaults), so that every afferent has the same mean rate over the stream, 2.4 Hz. Rates inside vs outside the
    windows are *not* equal in their protocol: pattern afferents fire at 10 Hz inside and 0.5 Hz outside, the
    others at 0 Hz inside and 3 Hz outside; the population rate is about 2.6 Hz in the windows vs 2.4 Hz outside.

    Neuron (NEST ``iaf_psc_delta``): ``tau_mem`` 18 ms, threshold ``v_th_mv`` 20 mV above rest, reset to rest,
    ``t_ref`` 2 ms refractory (NEST's default; input arriving then is lost), initial membrane N(0, ``v0_sd_mv``)
    mV; an input spike of weight w (mV) moves the membrane by w one step (1 ms, their synaptic delay) after it is
    emitted. Weights are in mV and clipped to [0, ``w_max``] = [0, 1] mV after every update (their synapse's
    bound, applied to every rule); all start at ``w0_mv`` (+ one N(0, ``w0_sd_mv``) draw per instance shared by
    all synapses). A rule's lr = 1 with coefficient 0.01 is their lambda = 0.01 (w / Wmax with Wmax = 1).

    Test (their ``simulate`` / ``compute_SNR``): the neuron is replayed with the final weights frozen and an
    unreachable threshold on the first ``n_eval`` segments of the training stream (``eval_replay``; fresh noise
    and the same pattern otherwise), its free membrane V sampled every step; ``snr`` = mean over the pattern
    presentations of (max V in the presentation - mean V over all inter-stimulus samples) / std of V over those
    samples. ``snr_before`` is the same with the initial weights (about 3: a window's maximum sits 2-3 sample
    standard deviations above the sample mean, and a window carries a little more input); ``rate_hz`` is the
    neuron's mean rate during training. Their fitness is the minimum of snr over 8 trials; a search here scores
    the mean over its seeds (report the minimum beside it).

    Training ends on ``end_background_ms`` = 400 ms of background (the last segments are background even where
    the schedule puts a pattern; ``y_stream`` marks the presentations actually shown). Their stream ends on a
    pattern presentation, and the test replays the same pattern with the final weights, so a rule that raises
    the weights of recently active afferents (no pre-post timing) scores well there: a search on their layout
    chose ``0.01*(3*tx + 2.667*tx*w - 2*ty*w)``: snr 11.4 with their ending, 0.1 with 400 ms of background after
    the last presentation (final seeds 0-7). ``end_background_ms=0`` gives their layout.

    Differences (each a field where it is a number):
    * time step ``dt`` 1 ms instead of 0.1 ms (spike times floored to 1 ms; two spikes of one afferent in one ms
      are one spike; the membrane is sampled every 1 ms);
    * training ``default_steps`` = 1000 segments (100 s, 200 presentations) as in their evolution (their
      homeostatic-STDP reference trained 200 s); test ``n_eval`` = 110 segments (11 s, 22 presentations) as in
      their evolution and homeostatic reference (their validation of the evolved rules used 310);
    * initial weight 0.5 mV for every synapse (their validation runs, which gave 18.4 and 23.6); their evolution
      drew one N(0.384, 0.1) mV weight per trial (``w0_mv=0.384, w0_sd_mv=0.1``);
    * thinning by independent Bernoulli(alpha) per spike instead of a random choice (with replacement) of
      int(alpha * n) spikes; the per-instance pattern and noise are fresh draws from (seed, split);
    * training ends on 400 ms of background (``end_background_ms``; see above): of 1000 segments the last
      scheduled presentation is replaced by background (199 presentations instead of 200);
    * the rule runs in this package's order (docs/SPIKING_CONVENTIONS.md: traces read before this step's spikes,
      all-to-all traces of ``tau_plus``/``tau_minus``), not NEST's event-driven order with a 1 ms dendritic delay.
    """

    name: str = "jordan_correlation"
    kind: str = field(default="spiking", init=False)
    description: str = ("Jordan et al. 2021 correlation task: 1000 afferents at 3 Hz, frozen 100 ms pattern after "
                        "every 400 ms, one LIF (18 ms, 20 mV); their snr")
    n_in: int = 512                  # event slots per 100 ms segment (see the module docstring)
    n_out: int = 1
    objective: str = field(default="detection", init=False)
    default_steps: int = 1000        # 100 ms segments: 100 s of training, as theirs
    n_eval: int = 110                # test segments: 11 s, 22 pattern presentations
    tau_mem: float = 18.0
    t_ref: float = 2.0
    reset: str = "zero"
    n_afferents: int = 1000
    rate_hz: float = 3.0
    t_stim_ms: float = 100.0
    t_inter_ms: float = 400.0
    v_th_mv: float = 20.0
    v0_sd_mv: float = 10.0
    w_max: float = 1.0
    w0_mv: float = 0.5
    w0_sd_mv: float = 0.0
    eval_replay: bool = True
    end_background_ms: float = 400.0

    def __post_init__(self):
        if not (isinstance(self.n_afferents, int) and self.n_afferents >= 1):
            raise TaskError(f"{self.name}: n_afferents must be an integer >= 1, got {self.n_afferents!r}")
        if not (self.rate_hz > 0 and self.t_stim_ms >= self.dt and self.t_inter_ms > 0 and self.v_th_mv > 0
                and self.w_max > 0 and self.w0_sd_mv >= 0 and self.v0_sd_mv >= 0 and self.end_background_ms >= 0):
            raise TaskError(f"{self.name}: need rate_hz, t_inter_ms, v_th_mv, w_max > 0, t_stim_ms >= dt and "
                            "w0_sd_mv, v0_sd_mv, end_background_ms >= 0")
        ratio = self.t_inter_ms / self.t_stim_ms
        if abs(ratio - round(ratio)) > 1e-9:
            raise TaskError(f"{self.name}: t_inter_ms must be a multiple of t_stim_ms (segments of t_stim_ms), "
                            f"got {self.t_inter_ms:g} and {self.t_stim_ms:g}")
        if not self.alpha > 0:
            raise TaskError(f"{self.name}: the thinning factor 1 - nu_stim/nu_inter must be > 0 (rate_hz * "
                            f"t_inter_ms / 1000 > 1), got {self.alpha:g}")
        _check_width(self.name, self.n_in, self.n_afferents * self.rate_hz * self.t_stim_ms / 1000.0)

    @property
    def steps_unit(self) -> str:
        return "segments"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("snr", "snr_before", "rate_hz")

    @property
    def seg_steps(self) -> int:
        """Steps of ``dt`` per segment (one pattern presentation)."""
        return int(round(self.t_stim_ms / self.dt))

    @property
    def period(self) -> int:
        """Segments per cycle (background segments + the pattern segment)."""
        return int(round(self.t_inter_ms / self.t_stim_ms)) + 1

    @property
    def alpha(self) -> float:
        """Their thinning factor of the pattern afferents' background: 1 - nu_stim / nu_inter."""
        cycle = self.t_inter_ms + self.t_stim_ms
        return 1.0 - (1000.0 / cycle) / (self.rate_hz * self.t_inter_ms / cycle)

    def is_pattern(self, n: int) -> np.ndarray:
        """Which of the first ``n`` segments carry the pattern (the last segment of every cycle)."""
        return (np.arange(n) % self.period) == self.period - 1

    def pattern(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The frozen pattern of one (seed, split): (step in the segment, afferent) of each of its spikes.

        As their ``create_frozen_noise(n, T_stim, rate)``, which draws one inter-spike interval per afferent
        (``max(1, int(1.25 * rate * T_stim))`` = 1): an afferent fires once, at ``0.1 ms + Exp(1 / rate)``, if that
        falls inside the segment (26% of the afferents at 3 Hz), else not at all."""
        rng = split_rngs(seed, split, 3)[0]
        t = 0.1 + rng.exponential(1000.0 / self.rate_hz, size=self.n_afferents)
        aff = np.flatnonzero(t < self.t_stim_ms)
        return np.floor(t[aff] / self.dt).astype(np.int64), aff

    def members(self, seed: int, split: str) -> np.ndarray:
        """[n_afferents] bool: the afferents with at least one spike in the pattern."""
        out = np.zeros(self.n_afferents, bool)
        out[self.pattern(seed, split)[1]] = True
        return out

    def training_pattern(self, steps: int) -> np.ndarray:
        """Which of the ``steps`` training segments carry the pattern: the schedule of :meth:`is_pattern`, except
        in the last ``end_background_ms``, which are background."""
        out = self.is_pattern(steps)
        out[max(0, steps - int(math.ceil(self.end_background_ms / self.t_stim_ms - 1e-9))):] = False
        return out

    def _background(self, rng, n, members):
        """Background spikes (row, step, afferent) of every one of ``n`` segments, drawn in blocks of
        ``STREAM_BLOCK`` segments, each from its own generator seeded from ``rng`` in order: a segment's background
        does not depend on the stream's length (a short stream is the beginning of a longer one)."""
        lam = self.rate_hz * self.t_stim_ms / 1000.0 * np.where(members, self.alpha, 1.0)
        out = []
        for start in range(0, n, STREAM_BLOCK):
            block_rng = np.random.default_rng(int(rng.integers(2 ** 62)))
            r, st, a = _poisson_events(block_rng, lam, STREAM_BLOCK, self.t_stim_ms, self.dt)
            out.append((start + r, st, a))
        row, step, aff = (np.concatenate(v) for v in zip(*out))
        keep = row < n
        return row[keep], step[keep], aff[keep]

    def _rows(self, background, pattern, is_pat):
        """Event rows: the frozen pattern in the segments ``is_pat`` says, the background elsewhere."""
        row, step, aff = background
        keep = ~is_pat[row]
        pat = np.flatnonzero(is_pat)
        p_step, p_aff = pattern
        row = np.concatenate([row[keep], np.repeat(pat, p_step.size)])
        step = np.concatenate([step[keep], np.tile(p_step, pat.size)])
        aff = np.concatenate([aff[keep], np.tile(p_aff, pat.size)])
        return pack_events(row, step, aff, is_pat.size, self.n_afferents, self.n_in, self.name)

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        pattern = self.pattern(seed, split)
        members = self.members(seed, split)
        _, stream_rng, eval_rng = split_rngs(seed, split, 3)
        n = max(steps, self.n_eval) if self.eval_replay else steps
        bg = self._background(stream_rng, n, members)
        train = self.training_pattern(steps)
        x = self._rows(tuple(v[bg[0] < steps] for v in bg), pattern, train)
        test = self.is_pattern(self.n_eval)
        if self.eval_replay:               # their test replays the beginning of the training stream
            xe = self._rows(tuple(v[bg[0] < self.n_eval] for v in bg), pattern, test)
        else:
            xe = self._rows(self._background(eval_rng, self.n_eval, members), pattern, test)
        return TaskData(x, train.astype(np.float32)[:, None], xe, test.astype(np.float32)[:, None],
                        np.zeros(self.n_in, np.float32))


# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JordanRewardTask(SpikingTask):
    """Reward-driven learning (Jordan et al. 2021, Fig. 3; after Urbanczik & Senn 2009): one neuron learns which
    of 30 frozen stimuli it should answer with a spike, from a reward of +-1 per trial.

    Protocol (their ``sim.py`` and ``sim_params.json``): ``n_stimuli`` = 30 stimuli, each a frozen Poisson spike
    train of ``rate_hz`` = 6 Hz on each of ``n_afferents`` = 50 inputs over ``t_stim_ms`` = 500 ms, with a target
    activity of +1 or -1 drawn per stimulus (independently, with equal probability). ``steps`` = 500 trials; each
    shows a stimulus drawn uniformly (with replacement). One output neuron (NEST ``iaf_psc_exp`` with escape
    noise): exponential synaptic currents (``tau_syn`` 2 ms), membrane ``tau_mem`` 10 ms, ``c_m_pf`` 250 pF,
    threshold ``theta_mv`` 15 mV above rest, reset to rest, ``t_ref`` 2 ms; it spikes in a step with probability
    ``1 - exp(-rho_hz * exp((V - theta) / delta_mv) * dt)`` (``rho_hz`` 0.01, ``delta_mv`` 0.2: nearly a hard
    threshold). Each input is connected with probability ``connectivity`` = 0.8 (absent synapses stay absent);
    weights ~ N(0, ``w0_sd``) in units of ``w_unit_pa`` pA (N(0, 1000 pA) as theirs), excitatory or inhibitory by
    sign, unbounded. Every trial starts from rest (their kernel reset): membrane, currents, spike traces and
    eligibility traces are 0. The decision is +1 if the neuron spiked at least once in the trial, else -1; the
    reward ``R`` = +1 if it matches the stimulus's target, else -1. The rule sees ``r = R`` and ``rbar`` (the
    running mean of past rewards over ``baseline_trials``; not part of their protocol) in the trial's last step,
    0 at every other step, so a rule ``dw = f(r) * elig`` updates the weights once per trial, as theirs do.
    With ``update_after_trial`` (their protocol: ``w += lr * f(R, E)`` after each trial) the weight update
    ``lr * M * elig`` is applied in the trial's last step only (the eligibility runs every step), so that any
    ``f(R)`` is once per trial, e.g. their E(R - 1) as ``dw = c*(r - 1)*elig``; without it (the default) a rule
    must vanish at ``r = 0`` itself (``r - r*r``, which is R - 1 in the last step and 0 elsewhere).
    The rule's ``v`` is the membrane in units of ``theta_mv``; ``psi`` is the derivative of this step's spike
    probability with respect to ``v`` (the escape-noise neuron's true derivative).

    Metrics: ``total_reward`` = sum of R over the trials (their fitness, averaged over trials = seeds; chance:
    0 in expectation), ``late_accuracy`` = fraction right in the last quarter of the trials, ``final_accuracy``
    = fraction of the ``n_stimuli`` stimuli answered right by the final weights (no plasticity),
    ``rate_hz`` = the neuron's mean rate.

    Differences: time step ``dt`` 1 ms instead of 0.01 ms (exact integration of the membrane and currents, so
    only the spike times are coarser; inputs floored to 1 ms; escape noise per 1 ms step); one synaptic delay of
    1 ms (theirs: 1 ms generator-to-parrot plus 1 ms parrot-to-neuron); their eligibility ``E`` (the synapse's
    PSP times (spike - expected spikes) / delta, filtered with 500 ms) and learning rate are not part of the task:
    the rule writes its own eligibility (``delig``) from the spikes and traces (their E is about
    ``delig = sy*tx - 0.01*v*v*tx`` with tau_plus 10 ms and tau_elig 500 ms, and their evolved E(R - 1) about
    ``dw = 0.2*(r - r*r)*elig``: r - r*r is R - 1 in the trial's last step and 0 elsewhere); weight units nA
    (``w_unit_pa`` 1000) so that the known rules' learning rates are of order 0.01-1; the stimuli, targets,
    connections, initial weights and escape noise are fresh draws per (seed, split) (their fitness averaged the
    total reward over 5-10 such draws).
    """

    name: str = "jordan_reward"
    kind: str = field(default="spiking", init=False)
    description: str = ("Jordan et al. 2021 reward task: 30 frozen 500 ms Poisson stimuli on 50 inputs, one "
                        "escape-noise LIF, spike or stay silent, reward +-1; total_reward over 500 trials")
    n_in: int = 256                  # event slots per stimulus (see the module docstring)
    n_out: int = 1
    objective: str = field(default="reward", init=False)
    default_steps: int = 500
    n_eval: int = 30
    tau_mem: float = 10.0
    t_ref: float = 2.0
    reset: str = "zero"
    n_afferents: int = 50
    n_stimuli: int = 30
    rate_hz: float = 6.0
    t_stim_ms: float = 500.0
    connectivity: float = 0.8
    w0_sd: float = 1.0
    w_unit_pa: float = 1000.0
    tau_syn: float = 2.0
    c_m_pf: float = 250.0
    theta_mv: float = 15.0
    rho_hz: float = 0.01
    delta_mv: float = 0.2
    baseline_trials: float = 10.0
    update_after_trial: bool = False

    def __post_init__(self):
        if not isinstance(self.update_after_trial, bool):
            raise TaskError(f"{self.name}: update_after_trial must be true or false")
        if not (isinstance(self.n_afferents, int) and self.n_afferents >= 1 and isinstance(self.n_stimuli, int)
                and self.n_stimuli >= 1):
            raise TaskError(f"{self.name}: n_afferents and n_stimuli must be integers >= 1")
        if self.n_eval != self.n_stimuli:
            raise TaskError(f"{self.name}: n_eval is the number of stimuli ({self.n_stimuli}), got {self.n_eval}")
        if not (0.0 < self.connectivity <= 1.0 and self.rate_hz > 0 and self.t_stim_ms >= self.dt
                and self.tau_syn > 0 and self.tau_syn != self.tau_mem and self.c_m_pf > 0 and self.theta_mv > 0
                and self.rho_hz > 0 and self.delta_mv > 0 and self.w0_sd >= 0 and self.w_unit_pa > 0
                and self.baseline_trials >= 1):
            raise TaskError(f"{self.name}: need 0 < connectivity <= 1, t_stim_ms >= dt, tau_syn != tau_mem, "
                            "baseline_trials >= 1 and positive rates, capacitance, threshold, rho, delta, w_unit_pa")
        _check_width(self.name, self.n_in, self.n_afferents * self.rate_hz * self.t_stim_ms / 1000.0)

    @property
    def steps_unit(self) -> str:
        return "trials"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("total_reward", "late_accuracy", "final_accuracy", "rate_hz")

    @property
    def trial_steps(self) -> int:
        return int(round(self.t_stim_ms / self.dt))

    def stimuli(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(event rows [n_stimuli, n_in], targets [n_stimuli] in {-1, +1}) of one (seed, split)."""
        rng = split_rngs(seed, split, 2)[0]
        lam = np.full(self.n_afferents, self.rate_hz * self.t_stim_ms / 1000.0)
        row, step, aff = _poisson_events(rng, lam, self.n_stimuli, self.t_stim_ms, self.dt)
        x = pack_events(row, step, aff, self.n_stimuli, self.n_afferents, self.n_in, self.name)
        targets = rng.choice(np.array([-1.0, 1.0], np.float32), size=self.n_stimuli)
        return x, targets

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        x, targets = self.stimuli(seed, split)
        order = split_rngs(seed, split, 2)[1].integers(0, self.n_stimuli, size=steps)
        return TaskData(x[order], targets[order][:, None], x, targets[:, None], np.zeros(self.n_in, np.float32))


JORDAN_TASKS = (JordanCorrelationTask(), JordanRewardTask())
