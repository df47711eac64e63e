"""Per-step application of a rule program in a spiking simulation (the order of docs/SPIKING_CONVENTIONS.md).

Every spiking simulation in this package (the pairing protocol, the single-neuron tasks, the feed-forward networks)
calls the functions here, so a rule behaves the same everywhere:

1. :func:`decay_traces` -- ``tx *= exp(-dt/tau_plus)``, ``tx2 *= exp(-dt/tau_x)``, ``ty *= exp(-dt/tau_minus)``,
   ``ty2 *= exp(-dt/tau_y)``, ``elig *= exp(-dt/tau_elig)``;
2. the caller computes this step's spikes, membrane, pseudo-derivative, error and globals;
3. :func:`apply_rule` -- ``dW, dE = rule(...)`` with the traces as they are after step 1 (before this step's
   spikes are added); ``elig += dE``; ``w += lr * dW``; ``w = clip(w, w_lo, w_hi)``;
4. :func:`add_spikes` -- ``tx += sx``, ``tx2 += sx``, ``ty += sy``, ``ty2 += sy``.

The program runs once per step on the *concatenation* of all layers' neuron vectors (programs are elementwise over
neurons); the term vectors are then split per layer and combined into each layer's ``(dW, dElig)`` with the
space's outer-product combination. Nothing here raises on NaN or inf: a rule that explodes only poisons its own
candidate's arrays.

Hyper-parameters of a rule (learning rate, trace time constants, weight bounds) are a :class:`RuleHyper` of scalar
arrays (per-step decay factors, not time constants), so that a population may carry one set per candidate and be
vmapped like the programs.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..rules.program import Program, Space

__all__ = ["DEFAULT_TAUS", "RuleHyper", "Traces", "rule_hyper", "hyper_dict", "zero_traces", "decay_traces",
           "add_spikes", "side_inputs", "apply_rule", "apply_rule_reference", "run_programs", "combine_layer"]

# SPIKING_CONVENTIONS.md: fall-backs when neither the rule's defaults nor an override give a time constant
DEFAULT_TAUS = {"tau_plus": 20.0, "tau_minus": 20.0, "tau_x": 101.0, "tau_y": 125.0, "tau_elig": 1000.0}
DEFAULT_LR = 1.0


class RuleHyper(NamedTuple):
    """Simulation parameters of a rule, as float32 scalars (or [P] arrays for a population)."""

    lr: jax.Array
    d_plus: jax.Array    # exp(-dt / tau_plus): fast pre trace tx
    d_minus: jax.Array   # exp(-dt / tau_minus): fast post trace ty
    d_x: jax.Array       # exp(-dt / tau_x): slow pre trace tx2
    d_y: jax.Array       # exp(-dt / tau_y): slow post trace ty2
    d_elig: jax.Array    # exp(-dt / tau_elig): eligibility trace
    w_lo: jax.Array      # lower weight bound (-inf: none)
    w_hi: jax.Array      # upper weight bound (+inf: none)


def _decay(tau: float, dt: float) -> float:
    tau = float(tau)
    if not tau > 0:
        return 0.0
    return math.exp(-float(dt) / tau) if math.isfinite(tau) else 1.0


def rule_hyper(defaults: dict | None = None, dt: float = 1.0, **overrides) -> RuleHyper:
    """RuleHyper from a rule's registry ``defaults`` (lr, tau_*, w_bounds), updated by ``overrides``.

    Missing time constants fall back to :data:`DEFAULT_TAUS`, a missing ``lr`` to 1.0, missing ``w_bounds`` to
    no bounds. ``w_bounds=None`` in the overrides removes bounds. Unknown keys are ignored (rule formula
    parameters such as ``A_plus`` live in the program, not here).
    """
    d = dict(defaults or {})
    d.update(overrides)
    taus = {k: float(d.get(k, v)) for k, v in DEFAULT_TAUS.items()}
    lr = float(d.get("lr", DEFAULT_LR))
    bounds = d.get("w_bounds", None)
    lo, hi = (-np.inf, np.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    f = lambda x: np.float32(x)  # noqa: E731
    return RuleHyper(f(lr), f(_decay(taus["tau_plus"], dt)), f(_decay(taus["tau_minus"], dt)),
                     f(_decay(taus["tau_x"], dt)), f(_decay(taus["tau_y"], dt)), f(_decay(taus["tau_elig"], dt)),
                     f(lo), f(hi))


def hyper_dict(defaults: dict | None = None, **overrides) -> dict:
    """The resolved (lr, tau_*, w_bounds) as plain numbers, for reports."""
    d = dict(defaults or {})
    d.update(overrides)
    out = {"lr": float(d.get("lr", DEFAULT_LR))}
    out.update({k: float(d.get(k, v)) for k, v in DEFAULT_TAUS.items()})
    b = d.get("w_bounds", None)
    out["w_bounds"] = None if b is None else [float(b[0]), float(b[1])]
    return out


class Traces(NamedTuple):
    """Spike traces of the concatenated pre vector (tx, tx2) and post vector (ty, ty2)."""

    tx: jax.Array
    tx2: jax.Array
    ty: jax.Array
    ty2: jax.Array


def zero_traces(n_pre: int, n_post: int, dtype=jnp.float32) -> Traces:
    return Traces(jnp.zeros((n_pre,), dtype), jnp.zeros((n_pre,), dtype), jnp.zeros((n_post,), dtype),
                  jnp.zeros((n_post,), dtype))


def decay_traces(tr: Traces, eligs: Sequence[jax.Array], hyper: RuleHyper):
    """Step 1 of the conventions: decay every trace and every layer's eligibility."""
    tr = Traces(tr.tx * hyper.d_plus, tr.tx2 * hyper.d_x, tr.ty * hyper.d_minus, tr.ty2 * hyper.d_y)
    return tr, tuple(e * hyper.d_elig for e in eligs)


def add_spikes(tr: Traces, sx: jax.Array, sy: jax.Array) -> Traces:
    """Step 4: all-to-all traces, increment 1, no saturation."""
    return Traces(tr.tx + sx, tr.tx2 + sx, tr.ty + sy, tr.ty2 + sy)


def side_inputs(space: Space, side: str, values: dict, n: int, globals_: dict | None = None) -> jax.Array:
    """Rows [side variables..., globals...] x n in the space's order; a variable missing from ``values`` is 0.

    ``values`` maps names to [n] vectors; ``globals_`` maps global names (r, rbar) to scalars (broadcast).
    """
    own = space.post_vars if side == "post" else space.pre_vars
    rows = []
    for v in own:
        x = values.get(v)
        rows.append(jnp.zeros((n,), jnp.float32) if x is None else jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,)))
    for g in space.global_vars:
        x = (globals_ or {}).get(g)
        rows.append(jnp.zeros((n,), jnp.float32) if x is None else jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,)))
    if not rows:
        return jnp.zeros((0, n), jnp.float32)
    return jnp.stack(rows)


# ---------------------------------------------------------------------------------------------------------------
# The spiking interpreter (issue 13, section 5): the generic interpreter of rules/program.py (Space.post_registers
# / pre_registers / term_vectors / combine, kept as :func:`apply_rule_reference`) organised for the per-step hot
# loop of a spiking simulation:
# * both sides' straight-line programs run in ONE lax.scan over instruction slots (the register files are the
#   carry), so the op-set computation of an instruction is materialised once instead of being re-fused (and
#   recomputed) into every later reader, and the HLO does not grow with the program length (compile time);
# * ops that share a transcendental or a division evaluate it once (exp and sigmoid share one exp; div, recip and
#   sigmoid share one division) -- exactly the same IEEE operations on the same operands;
# * the separable terms are combined as in the reference (:func:`combine_layer`).
# The register values are the same IEEE operations on the same operands as the reference's, so results are
# bitwise equal to :func:`apply_rule_reference` (tests/test_spiking_interpreter_parity.py).
SCAN_UNROLL = 1          # unroll factor of the instruction scan (1: a rolled loop; compile time ~ independent of L)


def _op_values(space: Space, op_i, xa, xb, c_i, dtype):
    """The value of one instruction with op index ``op_i`` (a traced scalar) on operands xa, xb (vectors)."""
    names = space.ops
    idx = {n: i for i, n in enumerate(names)}
    outs: dict[str, jax.Array] = {}
    sig_den = None
    if "sigmoid" in idx:
        if "exp" in idx:          # one exp for both: exp(a) and the exp(-a) of 1 / (1 + exp(-a))
            E = jnp.exp(jnp.where(op_i == idx["sigmoid"], -xa, xa))
            outs["exp"] = E
        else:
            E = jnp.exp(-xa)
        sig_den = 1.0 + E
    divs = [(n, num, den) for n, num, den in (("div", xa, xb), ("recip", None, xa), ("sigmoid", None, sig_den))
            if n in idx]
    if len(divs) > 1:             # one division for div, recip and sigmoid
        num = divs[-1][1] if divs[-1][1] is not None else jnp.ones_like(xa)
        den = divs[-1][2]
        for n, nu, de in divs[-2::-1]:
            is_n = op_i == idx[n]
            num = jnp.where(is_n, jnp.ones_like(xa) if nu is None else nu, num)
            den = jnp.where(is_n, de, den)
        q = num / den
        for n, _, _ in divs:
            outs[n] = q
    elif divs:
        n, nu, de = divs[0]
        outs[n] = (1.0 if nu is None else nu) / de
    vals = []
    for o in space.op_objs:
        v = outs.get(o.name)
        if v is None:
            v = o.jax(xa, xb, c_i)
        vals.append(v.astype(dtype))
    if len(vals) == 1:
        return vals[0]
    return lax.select_n(jnp.clip(op_i, 0, len(vals) - 1), *vals)


def run_programs(space: Space, prog: Program, post_in: jax.Array, pre_in: jax.Array):
    """All registers of both sides: ([n_registers('post'), N], [n_registers('pre'), M]).

    Equal to ``(space.post_registers(prog, post_in), space.pre_registers(prog, pre_in))`` (the same operations
    on the same operands): operands are clipped to the registers written so far and read with a dynamic index, so
    an inf/NaN in a register that is not read never reaches the result.
    """
    dtype = post_in.dtype
    sides = []
    for inputs, op, a, b, c in ((post_in, prog.post_op, prog.post_a, prog.post_b, prog.post_c),
                                (pre_in, prog.pre_op, prog.pre_a, prog.pre_b, prog.pre_c)):
        n, L = inputs.shape[-1], op.shape[0]
        regs = jnp.concatenate([jnp.ones((1, n), dtype), inputs.astype(dtype), jnp.zeros((L, n), dtype)])
        sides.append([regs, 1 + inputs.shape[0], L, (op, a, b, c)])
    if not space.ops:
        return sides[0][0], sides[1][0]
    L_max = max(sd[2] for sd in sides)
    if L_max == 0:
        return sides[0][0], sides[1][0]

    def instr(regs, n_in, i, op_i, a_i, b_i, c_i):
        xa = lax.dynamic_index_in_dim(regs, jnp.clip(a_i, 0, n_in + i - 1), keepdims=False)
        xb = lax.dynamic_index_in_dim(regs, jnp.clip(b_i, 0, n_in + i - 1), keepdims=False)
        val = _op_values(space, op_i, xa, xb, c_i, dtype)
        return lax.dynamic_update_index_in_dim(regs, val, n_in + i, 0)

    # one scan over instruction slots runs both sides; a side shorter than the other idles in the extra slots
    def body(carry, x):
        i = x[0]
        out = []
        for (regs, n_in, L, _), fields, regs_c in zip(sides, (x[1:5], x[5:9]), carry):
            if L == 0:
                out.append(regs_c)
                continue
            op_i, a_i, b_i, c_i = fields
            if L == L_max:
                out.append(instr(regs_c, n_in, i, op_i, a_i, b_i, c_i))
            else:
                j = jnp.minimum(i, L - 1)
                new = instr(regs_c, n_in, j, op_i, a_i, b_i, c_i)
                out.append(lax.select(i < L, new, regs_c))
        return tuple(out), None

    def pad(v, L):
        v = jnp.asarray(v)
        if L == L_max:
            return v
        if L == 0:
            return jnp.zeros((L_max,), v.dtype)
        return jnp.concatenate([v, jnp.broadcast_to(v[-1:], (L_max - L,))])

    xs = (jnp.arange(L_max, dtype=jnp.int32),)
    for _, _, L, fields in sides:
        xs = xs + tuple(pad(f, L) for f in fields)
    (post_regs, pre_regs), _ = lax.scan(body, (sides[0][0], sides[1][0]), xs, unroll=SCAN_UNROLL)
    return post_regs, pre_regs


def combine_layer(space: Space, prog: Program, P: jax.Array, Q: jax.Array, w: jax.Array, elig: jax.Array):
    """(dW, dElig) of one layer from the term vectors P [K, N] (coefficient folded in) and Q [K, M]: the space's
    factor-major combination (:meth:`Space.combine`), the same association as the reference.

    Term-major alternatives (each term's synapse factor selected per synapse, or built from one-hot coefficients)
    measured no faster on the 2-core CPU: every form needs ~40 scalar operations per synapse and target for 6
    terms over a 6-factor menu (see the profile in the issue-13 report), and this one keeps results bitwise equal.
    """
    return space.combine(prog, P, Q, w, elig)


def apply_rule(space: Space, prog: Program, hyper: RuleHyper, post_in: jax.Array, pre_in: jax.Array,
               ws: Sequence[jax.Array], eligs: Sequence[jax.Array], post_sizes: Sequence[int],
               pre_sizes: Sequence[int], gate=1.0, w_gate=1.0):
    """Step 3: run the program once on the concatenated vectors and update every layer.

    ``post_in`` [n_post_vars + n_globals, sum(post_sizes)], ``pre_in`` [n_pre_vars + n_globals, sum(pre_sizes)];
    layer ``l`` has weights ``ws[l]`` of shape [post_sizes[l], pre_sizes[l]] and reads the ``l``-th slices.
    ``gate`` (0/1, may be traced) switches plasticity off (test phases); ``w_gate`` (0/1, may be traced) only
    the weight update, while the eligibility runs on (a weight change once per trial). Returns (ws, eligs, dws,
    des) where ``des`` are the eligibility drives dE and ``dws`` are the weight changes actually applied,
    ``clip(lr * gate * w_gate * dW, w_lo - w, w_hi - w)`` (the same as
    ``clip(w + lr*dW, w_lo, w_hi) - w`` but without the rounding of ``w + lr*dW``; the pairing protocol sums them).
    """
    P, Q = space.term_vectors(prog, *run_programs(space, prog, post_in, pre_in))
    return _update(space, prog, hyper, P, Q, ws, eligs, post_sizes, pre_sizes, gate, combine_layer, w_gate)


def apply_rule_reference(space: Space, prog: Program, hyper: RuleHyper, post_in: jax.Array, pre_in: jax.Array,
                         ws: Sequence[jax.Array], eligs: Sequence[jax.Array], post_sizes: Sequence[int],
                         pre_sizes: Sequence[int], gate=1.0, w_gate=1.0):
    """:func:`apply_rule` through the generic interpreter of rules/program.py (the reference of the parity
    tests and the 'before' of scripts/bench_spiking.py)."""
    P, Q = space.term_vectors(prog, space.post_registers(prog, post_in), space.pre_registers(prog, pre_in))
    return _update(space, prog, hyper, P, Q, ws, eligs, post_sizes, pre_sizes, gate,
                   lambda sp, pr, p, q, w, e: sp.combine(pr, p, q, w, e), w_gate)


def _update(space, prog, hyper, P, Q, ws, eligs, post_sizes, pre_sizes, gate, combine, w_gate=1.0):
    new_w, new_e, dws, des = [], [], [], []
    po = pq = 0
    for w, e, n, m in zip(ws, eligs, post_sizes, pre_sizes):
        dw, de = combine(space, prog, P[:, po:po + n], Q[:, pq:pq + m], w, e)
        po, pq = po + n, pq + m
        applied = jnp.clip((gate * w_gate * hyper.lr) * dw, hyper.w_lo - w, hyper.w_hi - w)
        new_e.append(e + gate * de)
        new_w.append(w + applied)
        dws.append(applied)
        des.append(gate * de)
    return tuple(new_w), tuple(new_e), tuple(dws), tuple(des)
