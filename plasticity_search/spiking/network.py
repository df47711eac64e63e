"""A feed-forward spiking network whose every layer learns with one rule program.

Neuron groups ``0..L``: group 0 are the (encoded) inputs, groups ``1..L-1`` hidden LIF layers, group ``L`` the
output, either LIF neurons (``readout='spikes'``) or leaky readouts (``readout='membrane'``: no spikes, psi = 1).
Layer ``l`` (``1..L``) has weights ``W_l`` [size_l, size_{l-1}]; its input this step is ``gain_l * W_l @ s_{l-1}``
with the spikes ``s_{l-1}`` that group ``l-1`` emitted ``delay`` steps earlier (default 1 step: a spike that
pushes a neuron over threshold precedes that neuron's spike by one step, so pair STDP sees the causal pairing as
``delta = +dt``; with ``delay=0`` it would be a same-step pairing, which pair STDP ignores). The rule sees spikes at
their emission step (``sx`` of a synapse is its pre neuron's spike this step).

One simulation step is :func:`forward` (step 2 of docs/SPIKING_CONVENTIONS.md: spikes, membranes, psi) followed,
once the caller knows the output error ``e_out`` and the globals ``r, rbar``, by :func:`learn` (steps 1, 3, 4:
decay traces and eligibilities, apply the rule to all layers with the traces as they were before this step's
spikes, add the spikes to the traces).

With ``lateral_inh`` > 0 every output neuron receives a fixed ``-lateral_inh`` for each spike another output
neuron emitted in the previous step (a winner-take-all readout; not plastic).

Errors reach hidden neurons through fixed feedback (random e-prop): the output error ``e_out`` is the learning
signal of the output neurons; hidden group ``l`` receives
* ``'dfa'``: ``e_l = B_l e_out`` (``B_l`` fixed random [size_l, size_L]);
* ``'fa'``:  ``e_l = B_l (psi_{l+1} * e_{l+1})`` with ``B_l`` [size_l, size_{l+1}] (psi of the output taken as 1);
* ``'bp'``:  the same with ``W_{l+1}^T`` instead of ``B_l`` (symmetric e-prop, a non-local reference).
With one hidden layer the three pathways differ only in ``B`` vs ``W^T``. ``B`` entries are N(0, 1/size_{target}).

The rule sees, on the post side of layer ``l``: ``sy`` (spikes of group l), ``ty, ty2`` (its post traces),
``v`` (membrane before reset), ``psi``, ``e``; on the pre side: ``sx`` (spikes of group l-1), ``tx, tx2``;
globals ``r, rbar``. The program runs once per step on all layers' vectors concatenated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..rules.program import Program, Space
from .lif import LIFParams, lif_init, lif_step, readout_step
from .plasticity import (RuleHyper, Traces, add_spikes, apply_rule, apply_rule_reference, decay_traces, side_inputs,
                         zero_traces)

__all__ = ["NetSpec", "NetState", "Forward", "init_state", "forward", "learn", "feedback_matrices",
           "reset_neurons", "FEEDBACKS", "READOUTS"]

FEEDBACKS = ("fa", "dfa", "bp")
READOUTS = ("membrane", "spikes")


@dataclass(frozen=True)
class NetSpec:
    sizes: tuple[int, ...]                     # (n_inputs, hidden..., n_out)
    lif: LIFParams = field(default_factory=LIFParams)   # hidden neurons (and spiking outputs)
    readout: str = "membrane"                  # 'membrane' (leaky readout) | 'spikes' (LIF outputs)
    out_tau: float = 20.0                      # membrane readout time constant (ms)
    gains: tuple[float, ...] = ()              # per layer input gain (default 1)
    feedback: str = "fa"
    delay: int = 1                             # synaptic transmission delay in steps (0 or 1)
    lateral_inh: float = 0.0                   # fixed inhibition between output neurons (winner-take-all)

    def __post_init__(self):
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"a network needs >= 2 groups of >= 1 neuron, got sizes {self.sizes}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"feedback must be one of {', '.join(FEEDBACKS)}, got {self.feedback!r}")
        if self.gains and len(self.gains) != len(self.sizes) - 1:
            raise ValueError("gains needs one entry per layer")
        if self.delay not in (0, 1):
            raise ValueError(f"delay must be 0 or 1 step, got {self.delay}")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def post_sizes(self) -> tuple[int, ...]:
        return self.sizes[1:]

    @property
    def pre_sizes(self) -> tuple[int, ...]:
        return self.sizes[:-1]

    def gain(self, l: int) -> float:
        return self.gains[l] if self.gains else 1.0

    @property
    def out_params(self) -> LIFParams:
        from dataclasses import replace
        return replace(self.lif, tau_mem=self.out_tau) if self.readout == "membrane" else self.lif


class NetState(NamedTuple):
    ws: tuple            # W_l [size_l, size_{l-1}], l = 1..L
    eligs: tuple         # same shapes
    neurons: tuple       # LIFState per group 1..L (the readout uses only .v)
    tr: Traces           # pre traces of groups 0..L-1 (concatenated), post traces of groups 1..L
    s_prev: tuple        # spikes of groups 0..L in the previous step (in transit when delay = 1)


class Forward(NamedTuple):
    s: tuple             # spikes of groups 0..L
    v: tuple             # membranes (before reset) of groups 1..L
    psi: tuple           # pseudo-derivatives of groups 1..L


def init_state(spec: NetSpec, ws) -> NetState:
    ws = tuple(jnp.asarray(w, jnp.float32) for w in ws)
    for l, w in enumerate(ws):
        if w.shape != (spec.sizes[l + 1], spec.sizes[l]):
            raise ValueError(f"layer {l + 1} weights {w.shape}, expected {(spec.sizes[l + 1], spec.sizes[l])}")
    neurons = tuple(lif_init((n,), spec.lif) for n in spec.post_sizes)
    return NetState(ws, tuple(jnp.zeros_like(w) for w in ws), neurons,
                    zero_traces(sum(spec.pre_sizes), sum(spec.post_sizes)),
                    tuple(jnp.zeros((n,), jnp.float32) for n in spec.sizes))


def reset_neurons(spec: NetSpec, state: NetState) -> NetState:
    """Membranes, refractory counters, adaptation and spikes in transit back to rest (traces, eligibilities and
    weights are kept)."""
    return state._replace(neurons=tuple(lif_init((n,), spec.lif) for n in spec.post_sizes),
                          s_prev=tuple(jnp.zeros_like(s) for s in state.s_prev))


def feedback_matrices(key, spec: NetSpec) -> tuple:
    """Fixed random feedback matrices B_l for the hidden groups (shape per :mod:`docstring <.network>`)."""
    out = []
    L = spec.n_layers
    for l in range(1, L):
        tgt = spec.sizes[L] if spec.feedback == "dfa" else spec.sizes[l + 1]
        k = jax.random.fold_in(key, l)
        out.append(jax.random.normal(k, (spec.sizes[l], tgt), jnp.float32) / jnp.sqrt(jnp.float32(tgt)))
    return tuple(out)


def forward(spec: NetSpec, state: NetState, s_in, i_ext=0.0):
    """Step 2: propagate this step's input spikes through all layers. Returns (state, Forward)."""
    s_prev = jnp.asarray(s_in, jnp.float32)
    ss, vs, psis, neurons = [s_prev], [], [], []
    L = spec.n_layers
    for l in range(L):
        s_arriving = state.s_prev[l] if spec.delay else s_prev
        i_syn = spec.gain(l) * (state.ws[l] @ s_arriving)
        if l == L - 1 and spec.lateral_inh:   # each output neuron is inhibited by the others' last spikes
            s_out = state.s_prev[L]
            i_syn = i_syn - spec.lateral_inh * (jnp.sum(s_out) - s_out)
        nrn = state.neurons[l]
        if l == L - 1 and spec.readout == "membrane":
            v = readout_step(nrn.v, i_syn, spec.out_params)
            nrn = nrn._replace(v=v)
            s, psi = jnp.zeros_like(v), jnp.ones_like(v)
        else:
            nrn, s, v, psi = lif_step(nrn, i_syn, spec.lif, i_ext if l < L - 1 else 0.0)
        neurons.append(nrn)
        ss.append(s)
        vs.append(v)
        psis.append(psi)
        s_prev = s
    return (state._replace(neurons=tuple(neurons), s_prev=tuple(ss)),
            Forward(tuple(ss), tuple(vs), tuple(psis)))


def hidden_errors(spec: NetSpec, ws, fw: Forward, e_out, B) -> tuple:
    """Learning signals of groups 1..L given the output's (see the module docstring); without feedback matrices
    (``B = ()``, pathways 'fa'/'dfa') hidden neurons get 0."""
    L = spec.n_layers
    es = [None] * L
    es[L - 1] = e_out
    for l in range(L - 1, 0, -1):     # group l, l = L-1 .. 1 (index l-1)
        if spec.feedback != "bp" and not B:
            es[l - 1] = jnp.zeros((spec.sizes[l],), jnp.float32)
        elif spec.feedback == "dfa":
            es[l - 1] = B[l - 1] @ e_out
        else:
            down = es[l] if l == L - 1 else fw.psi[l] * es[l]
            M = ws[l].T if spec.feedback == "bp" else B[l - 1]
            es[l - 1] = M @ down
    return tuple(es)


def learn(space: Space, prog: Program, hyper: RuleHyper, spec: NetSpec, state: NetState, fw: Forward, e_out,
          B=(), r=0.0, rbar=0.0, gate=1.0, reference: bool = False, w_gate=1.0) -> NetState:
    """Steps 1, 3, 4: decay, apply the rule to every layer, add this step's spikes to the traces.

    ``reference=True`` runs the rule through the generic interpreter (:func:`.plasticity.apply_rule_reference`;
    the same results up to float32 reassociation, slower) -- for parity tests and benchmarks.

    The program arrays pass an ``optimization_barrier`` here, inside the caller's time loop, so that XLA does not
    hoist broadcasts of (population-batched) program data out of the loop. XLA's CPU compiler removes barriers
    before fusion (measured on the rate evaluator: BENCHMARKS.md, issue 13 section 4), so this acts on accelerators
    only.
    """
    prog = jax.tree.map(jax.lax.optimization_barrier, prog)
    tr, eligs = decay_traces(state.tr, state.eligs, hyper)
    es = hidden_errors(spec, state.ws, fw, e_out, B)
    sy = jnp.concatenate(fw.s[1:])
    sx = jnp.concatenate(fw.s[:-1])
    n_post, n_pre = sy.shape[0], sx.shape[0]
    glob = {"r": r, "rbar": rbar}
    post_in = side_inputs(space, "post", {"sy": sy, "ty": tr.ty, "ty2": tr.ty2, "v": jnp.concatenate(fw.v),
                                          "psi": jnp.concatenate(fw.psi), "e": jnp.concatenate(es)}, n_post, glob)
    pre_in = side_inputs(space, "pre", {"sx": sx, "tx": tr.tx, "tx2": tr.tx2}, n_pre, glob)
    apply = apply_rule_reference if reference else apply_rule
    ws, eligs, _, _ = apply(space, prog, hyper, post_in, pre_in, state.ws, eligs, spec.post_sizes, spec.pre_sizes,
                            gate, w_gate=w_gate)
    return state._replace(ws=ws, eligs=eligs, tr=add_spikes(tr, sx, sy))
