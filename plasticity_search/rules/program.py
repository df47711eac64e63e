"""Rule programs as fixed-shape arrays, their search space, and the interpreter.

A rule is a *typed program in the canonical separable form* (see ../shared/docs/DESIGN.md)::

    dW   = sum_{k: target_k = W}    c_k * P_k(post) (x) Q_k(pre) * S_k(w, elig)
    dElig= sum_{k: target_k = elig} c_k * P_k(post) (x) Q_k(pre) * S_k(w, elig)

``P_k`` and ``Q_k`` are registers of two short straight-line programs over neuron vectors, one per side.
Each side's register file is ``[1, side variables..., global variables..., outputs of instructions...]``
(single assignment: instruction ``i`` writes register ``n_inputs + i`` and may read any earlier register).
``S_k`` is picked from a small per-synapse menu (1, w, w^2, elig, ...).

All programs of a space have the same array shapes, so a population of *different* programs is a pytree with a
leading population axis and one ``jit(vmap(...))`` runs all of them with one compile.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from .ops import OP_BY_NAME, OPS, SYN_BY_NAME, Op, SynFactor
from .variables import VARIABLES

if TYPE_CHECKING:
    import jax

# JAX is imported inside the interpreter methods, not here: the static part (Space, Program, RuleError, liveness)
# loads without it, so that listing rules or validating a config starts fast (``jax.Array`` below is annotation
# text only).

TARGET_W = 0
TARGET_ELIG = 1
STRUCTURES = ("free", "three_factor")   # Space.structure: how term slots are typed (see Space.constrain)
FUSED_MAX_TERMS = 8   # up to this many term rows, combine terms in one fused elementwise pass
SELECT_MAX_REGISTERS = 8   # register files up to this size are read with select_n (one fused elementwise pass),
                           # larger ones with a gather (select cost grows with the register count; BENCHMARKS.md)


class RuleError(ValueError):
    """A rule, formula or search space that cannot be built; the message is one line naming the problem."""


class Program(NamedTuple):
    """One rule program (or a population of them, with a leading axis on every field)."""

    post_op: jax.Array    # int32 [Lpost]  index into space.ops
    post_a: jax.Array     # int32 [Lpost]  first operand register
    post_b: jax.Array     # int32 [Lpost]  second operand register
    post_c: jax.Array     # float32 [Lpost] instruction constant
    pre_op: jax.Array     # same for the pre side [Lpre]
    pre_a: jax.Array
    pre_b: jax.Array
    pre_c: jax.Array
    term_on: jax.Array    # bool [K]
    term_coef: jax.Array  # float32 [K]
    term_p: jax.Array     # int32 [K]  post register of P_k
    term_q: jax.Array     # int32 [K]  pre register of Q_k
    term_s: jax.Array     # int32 [K]  index into space.syn
    term_tgt: jax.Array   # int32 [K]  0 = weight, 1 = eligibility trace

    # --- the one JSON codec of programs (rule files, hall-of-fame entries) -----------------------------------------
    def to_dict(self) -> dict:
        """Every field as a (nested) list: JSON-ready, read back exactly by :meth:`from_dict`."""
        return {f: np.asarray(getattr(self, f)).tolist() for f in self._fields}

    @classmethod
    def from_dict(cls, d: dict) -> "Program":
        """The program of :meth:`to_dict` (numpy arrays of the field dtypes); KeyError/TypeError/ValueError if
        ``d`` is malformed."""
        return cls(**{f: np.asarray(d[f], dtype=PROGRAM_DTYPES[f]) for f in cls._fields})


PROGRAM_DTYPES = {f: np.int32 for f in Program._fields} | {"term_on": bool, "term_coef": np.float32,
                                                            "post_c": np.float32, "pre_c": np.float32}


@dataclass(frozen=True)
class Space:
    """Static description of a rule search space (hashable: usable as a jit static argument)."""

    post_vars: tuple[str, ...] = ("y", "a", "e", "ybar", "theta")
    pre_vars: tuple[str, ...] = ("x", "xbar", "e_pre")
    global_vars: tuple[str, ...] = ()
    ops: tuple[str, ...] = tuple(op.name for op in OPS)
    syn: tuple[str, ...] = ("1", "w", "w2")
    n_post: int = 6          # instructions in the post-side program
    n_pre: int = 6           # instructions in the pre-side program
    n_terms: int = 6         # K, maximum number of separable terms
    elig: bool = False       # whether terms may target an eligibility trace
    name: str = "custom"
    structure: str = "free"  # 'free': any term may target w or elig with any factor; 'three_factor': typed slots
                             # (:meth:`constrain`): dElig = sum of pre x post terms, dW = M(post, globals) * elig
    weight_terms: int = 1    # three_factor: the last weight_terms slots write dW (M = their sum, e.g. r - rbar)
    m_offset: bool = False   # three_factor: weight slots but the last may read the constant 1 (M = c1*M1 + c2)

    def __post_init__(self):
        for v in self.post_vars + self.pre_vars + self.global_vars:
            if v not in VARIABLES:
                raise RuleError(f"unknown variable '{v}' (known: {', '.join(VARIABLES)})")
        for side, names in (("post", self.post_vars), ("pre", self.pre_vars), ("global", self.global_vars)):
            for v in names:
                if VARIABLES[v].side != side:
                    raise RuleError(f"variable '{v}' is a {VARIABLES[v].side} quantity, not {side}")
        for o in self.ops:
            if o not in OP_BY_NAME:
                raise RuleError(f"unknown op '{o}' (known: {', '.join(OP_BY_NAME)})")
        for s in self.syn:
            if s not in SYN_BY_NAME:
                raise RuleError(f"unknown synapse factor '{s}' (known: {', '.join(SYN_BY_NAME)})")
        if "1" not in self.syn:
            raise RuleError("synapse factor menu must contain '1'")
        if any(s in ("elig", "w_elig") for s in self.syn) and not self.elig:
            object.__setattr__(self, "elig", True)
        if self.structure not in STRUCTURES:
            raise RuleError(f"unknown structure '{self.structure}' (known: {', '.join(STRUCTURES)})")
        if self.structure == "three_factor":
            if "elig" not in self.syn:
                raise RuleError("structure 'three_factor' needs the synapse factor 'elig' in syn")
            if self.n_terms < self.weight_terms + 1:
                raise RuleError(f"structure 'three_factor' needs n_terms >= weight_terms + 1 = {self.weight_terms + 1}"
                                " (eligibility terms and weight terms)")
            if not self.global_vars:
                raise RuleError("structure 'three_factor' needs global variables (r, rbar) for the third factor")
        if self.weight_terms < 1:
            raise RuleError(f"weight_terms must be >= 1, got {self.weight_terms}")
        if self.m_offset and not (self.structure == "three_factor" and self.weight_terms >= 2):
            raise RuleError("m_offset needs structure 'three_factor' and weight_terms >= 2 (the constant is read by "
                            "a weight slot other than the last)")
        for n in ("n_post", "n_pre", "n_terms"):
            if getattr(self, n) < (1 if n == "n_terms" else 0):
                raise RuleError(f"{n} must be >= {1 if n == 'n_terms' else 0}, got {getattr(self, n)}")
        if not self.ops and (self.n_post or self.n_pre):
            raise RuleError("a space with instructions needs at least one op")

    # --- derived static layout ------------------------------------------------------------------------------
    @property
    def op_objs(self) -> tuple[Op, ...]:
        return tuple(OP_BY_NAME[o] for o in self.ops)

    @property
    def syn_objs(self) -> tuple[SynFactor, ...]:
        return tuple(SYN_BY_NAME[s] for s in self.syn)

    @property
    def variables(self) -> tuple[str, ...]:
        syn_vars = ("w",) + (("elig",) if self.elig else ())
        return self.post_vars + self.pre_vars + self.global_vars + syn_vars

    def n_inputs(self, side: str) -> int:
        return 1 + len(self.post_vars if side == "post" else self.pre_vars) + len(self.global_vars)

    def register_names(self, side: str) -> tuple[str, ...]:
        own = self.post_vars if side == "post" else self.pre_vars
        n = self.n_post if side == "post" else self.n_pre
        return ("1",) + own + self.global_vars + tuple(f"{side}{i}" for i in range(n))

    def n_registers(self, side: str) -> int:
        return self.n_inputs(side) + (self.n_post if side == "post" else self.n_pre)

    def resized(self, n_post: int | None = None, n_pre: int | None = None, n_terms: int | None = None) -> "Space":
        return replace(self, n_post=self.n_post if n_post is None else n_post,
                       n_pre=self.n_pre if n_pre is None else n_pre,
                       n_terms=self.n_terms if n_terms is None else n_terms)

    def to_dict(self) -> dict:
        return {"post_vars": list(self.post_vars), "pre_vars": list(self.pre_vars),
                "global_vars": list(self.global_vars), "ops": list(self.ops), "syn": list(self.syn),
                "n_post": self.n_post, "n_pre": self.n_pre, "n_terms": self.n_terms, "elig": self.elig,
                "name": self.name, "structure": self.structure, "weight_terms": self.weight_terms,
                "m_offset": self.m_offset}

    @classmethod
    def from_dict(cls, d: dict) -> "Space":
        kw = dict(d)
        for k in ("post_vars", "pre_vars", "global_vars", "ops", "syn"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    # --- typed term slots ------------------------------------------------------------------------------------
    def constrain(self, prog: Program) -> Program:
        """``prog`` projected onto the space's structure (pure JAX on one program; identity for 'free').

        'three_factor' (a three-factor rule by construction): term slots ``0..K-1-J`` write the eligibility trace
        (``dElig = sum_k c_k P_k(post) Q_k(pre) S_k``, S_k from the menu's factors without elig), the last
        ``J = weight_terms`` slots write the weight through the trace: ``dW = sum_j c_j M_j(post, globals) * elig``
        (Q = 1; factor elig, or w_elig where the program picked it), so with J = 2 the third factor can be a
        weighted sum of two reads such as ``r - rbar``; with ``m_offset`` a weight slot other than the last may read
        the constant 1, so M can be affine, ``c1*r + c2`` (a constant reward baseline as in REINFORCE, e.g. their
        ``R - 1``). The last slot is always on, and so is at least one
        eligibility slot, so every program of the space is pre x post -> elig -> third factor -> w; what the search
        chooses is which pre x post terms, which third factor M (e.g. r, r - rbar) and their constants. Register
        reads are typed too: an eligibility term reads no global input register directly (a read of r or rbar is
        moved to a variable of its side), and a weight term's M reads a global or an instruction (a read of the
        constant 1 or a post variable is moved to a global; with ``m_offset``, in a weight slot but the last, to 1
        or a global, evenly); instructions may read anything.
        Random programs and every mutation of :mod:`.mutation` end with this projection.
        """
        if self.structure == "free":
            return prog
        import jax.numpy as jnp

        K = self.n_terms
        i_elig = self.syn.index("elig")
        no_elig = np.array([s not in ("elig", "w_elig") for s in self.syn])
        w_slot = jnp.arange(K) >= K - self.weight_terms
        s = jnp.asarray(prog.term_s)
        s_ok = jnp.asarray(no_elig)[jnp.clip(s, 0, len(self.syn) - 1)]
        s_elig = jnp.where(s_ok, s, 0)                                   # eligibility slots: no elig factor
        s_w = jnp.full_like(s, i_elig)                                   # weight slot: elig (or w_elig)
        if "w_elig" in self.syn:
            s_w = jnp.where(s == self.syn.index("w_elig"), s, s_w)
        on = jnp.asarray(prog.term_on) | (jnp.arange(K) == K - 1)
        on = on.at[0].set(on[0] | ~jnp.any(on & ~w_slot))
        coef = jnp.asarray(prog.term_coef)
        coef = jnp.where(w_slot & (coef == 0), 1.0, coef).astype(coef.dtype)
        n_g = len(self.global_vars)
        p = jnp.asarray(prog.term_p)
        n_pv = len(self.post_vars)
        p_w = jnp.where(p < 1 + n_pv, 1 + n_pv + p % n_g, p)           # M: a global or an instruction
        if self.m_offset:   # ... or 1 but in the last slot, where a read of 1 or a post variable becomes 1 or a global
            m = p % (n_g + 1)
            p_w = jnp.where((p < 1 + n_pv) & (jnp.arange(K) < K - 1), jnp.where(m == 0, 0, n_pv + m), p_w)
        is_g = (p >= 1 + n_pv) & (p < 1 + n_pv + n_g)
        p_e = jnp.where(is_g, (1 + (p - 1 - n_pv) % n_pv) if n_pv else 0, p)
        q = jnp.asarray(prog.term_q)
        n_qv = len(self.pre_vars)
        is_gq = (q >= 1 + n_qv) & (q < 1 + n_qv + n_g)
        q_e = jnp.where(is_gq, (1 + (q - 1 - n_qv) % n_qv) if n_qv else 0, q)
        dt = jnp.asarray(prog.term_tgt).dtype
        return prog._replace(term_on=on, term_coef=coef, term_p=jnp.where(w_slot, p_w, p_e).astype(p.dtype),
                             term_q=jnp.where(w_slot, 0, q_e).astype(q.dtype),
                             term_s=jnp.where(w_slot, s_w, s_elig).astype(s.dtype),
                             term_tgt=jnp.where(w_slot, TARGET_W, TARGET_ELIG).astype(dt))

    # --- construction -------------------------------------------------------------------------------------
    def empty(self) -> Program:
        """A program with no active term (dW = 0)."""
        z = lambda n, dt: np.zeros((n,), dt)  # noqa: E731
        return Program(z(self.n_post, np.int32), z(self.n_post, np.int32), z(self.n_post, np.int32),
                       z(self.n_post, np.float32), z(self.n_pre, np.int32), z(self.n_pre, np.int32),
                       z(self.n_pre, np.int32), z(self.n_pre, np.float32), z(self.n_terms, bool),
                       z(self.n_terms, np.float32), z(self.n_terms, np.int32), z(self.n_terms, np.int32),
                       z(self.n_terms, np.int32), z(self.n_terms, np.int32))

    # --- interpreter ----------------------------------------------------------------------------------------
    def run_side(self, side: str, op, a, b, c, inputs: jax.Array) -> jax.Array:
        """Run one side's straight-line program.

        ``inputs``: [n_side_vars + n_globals, N] (variables then globals, already broadcast to N neurons).
        Returns all registers, shape [n_registers(side), N]. The register file is one array; operands are read
        with a dynamic index (a gather under vmap), which reads exactly one register, so an inf/NaN in an unread
        register never leaks into the result. Measured on the 2-core CPU, this is ~4x faster than a select over
        all registers (see BENCHMARKS.md). Every op of the space is computed and the instruction's op selected.
        """
        import jax.numpy as jnp
        from jax import lax

        n = inputs.shape[-1]
        L = op.shape[0]
        n_in = 1 + inputs.shape[0]
        regs = jnp.concatenate([jnp.ones((1, n), inputs.dtype), inputs, jnp.zeros((L, n), inputs.dtype)])
        fns = [_interpreted(o) for o in self.op_objs]
        for i in range(L):
            xa = lax.dynamic_index_in_dim(regs, jnp.clip(a[i], 0, n_in + i - 1), keepdims=False)
            xb = lax.dynamic_index_in_dim(regs, jnp.clip(b[i], 0, n_in + i - 1), keepdims=False)
            outs = [f(xa, xb, c[i]).astype(inputs.dtype) for f in fns]
            val = lax.select_n(jnp.clip(op[i], 0, len(outs) - 1), *outs) if len(outs) > 1 else outs[0]
            regs = regs.at[n_in + i].set(val)
        return regs

    def post_registers(self, prog: Program, post_inputs: jax.Array) -> jax.Array:
        return self.run_side("post", prog.post_op, prog.post_a, prog.post_b, prog.post_c, post_inputs)

    def pre_registers(self, prog: Program, pre_inputs: jax.Array) -> jax.Array:
        return self.run_side("pre", prog.pre_op, prog.pre_a, prog.pre_b, prog.pre_c, pre_inputs)

    def term_vectors(self, prog: Program, post_regs: jax.Array, pre_regs: jax.Array):
        """P [K, N] (with the coefficient folded in, zero for inactive terms) and Q [K, M]."""
        import jax.numpy as jnp

        P = jnp.take(post_regs, jnp.clip(prog.term_p, 0, post_regs.shape[0] - 1), axis=0)
        Q = jnp.take(pre_regs, jnp.clip(prog.term_q, 0, pre_regs.shape[0] - 1), axis=0)
        on = prog.term_on[:, None]
        P = jnp.where(on, _scaled(prog.term_coef[:, None], P), 0.0)
        Q = jnp.where(on, Q, 0.0)
        return P, Q

    def side_terms(self, side: str, op, a, b, c, rows: Sequence[jax.Array], term_idx, n: int) -> jax.Array:
        """The registers ``term_idx`` [K] of one side's program run on ``rows`` (side variables then globals, each
        [n]): [K, n], the same values as ``take(run_side(side, ..., stack(rows)), clip(term_idx))``.

        Small register files (<= SELECT_MAX_REGISTERS) are read with ``select_n`` on a Python list of registers:
        the whole side (instructions and term reads) becomes one fused elementwise pass with no register-file
        array, no concatenation and no gather kernels, which is what costs at this size (BENCHMARKS.md, issue 13).
        A select, like the gather, reads exactly one register, so an inf/NaN in an unread register never leaks.
        Larger files keep the gather of :meth:`run_side` (a select costs a pass per register).
        """
        import jax.numpy as jnp
        from jax import lax

        L = op.shape[0]
        n_in = 1 + len(rows)
        if n_in + L > SELECT_MAX_REGISTERS:
            inputs = jnp.stack(rows) if rows else jnp.zeros((0, n))
            regs = self.run_side(side, op, a, b, c, inputs)
            return jnp.take(regs, jnp.clip(term_idx, 0, regs.shape[0] - 1), axis=0)
        dtype = rows[0].dtype if rows else jnp.float32
        regs = [jnp.ones((n,), dtype)] + [r.astype(dtype) for r in rows]
        fns = [_interpreted(o) for o in self.op_objs]
        for i in range(L):
            xa = _read(regs, a[i])
            xb = _read(regs, b[i])
            outs = [f(xa, xb, c[i]).astype(dtype) for f in fns]
            regs.append(lax.select_n(jnp.clip(op[i], 0, len(outs) - 1), *outs) if len(outs) > 1 else outs[0])
        return jnp.stack([_read(regs, term_idx[k]) for k in range(term_idx.shape[0])])

    def rule_vectors(self, prog: Program, post_rows: Sequence[jax.Array], pre_rows: Sequence[jax.Array],
                     n: int, m: int):
        """:meth:`term_vectors` of the registers of the input rows (lists of [n] resp. [m] vectors: the side's
        variables then the globals, broadcast): P [K, n] (coefficient folded in, zero for inactive terms), Q [K, m]."""
        import jax.numpy as jnp

        P = self.side_terms("post", prog.post_op, prog.post_a, prog.post_b, prog.post_c, post_rows, prog.term_p, n)
        Q = self.side_terms("pre", prog.pre_op, prog.pre_a, prog.pre_b, prog.pre_c, pre_rows, prog.term_q, m)
        on = prog.term_on[:, None]
        return jnp.where(on, _scaled(prog.term_coef[:, None], P), 0.0), jnp.where(on, Q, 0.0)

    def update_weights(self, term_s, term_tgt, P, Q, w, scale) -> jax.Array:
        """``w + scale * dW`` with dW the weight part of :meth:`combine_terms` (P [R, N], Q [R, M], any R term rows,
        e.g. K terms x B samples), computed in one pass over the synapses for few rows.

        Few rows (<= FUSED_MAX_TERMS): the term vectors pass an optimisation barrier (meant to keep the
        vector-level selects out of the per-synapse pass; XLA's CPU compiler removes barriers before fusion, so on
        the CPU they run inside it: BENCHMARKS.md, issue 13 section 4), then one fused elementwise pass reads and
        writes w once and does per term one outer product and one multiply by its synapse factor, picked per term with
        ``select_n`` (reads exactly one factor) instead of one outer-product sum per factor of the menu. Same
        values as ``w + scale * combine_terms(...)[0]`` up to float32 reassociation. Many rows: that expression.
        """
        if P.shape[0] > FUSED_MAX_TERMS or self.elig:
            return w + scale * self.combine_terms(term_s, term_tgt, P, Q, w)[0]
        import jax.numpy as jnp
        from jax import lax

        # like combine_terms, a term counts only if it targets w and names a factor of the menu
        keep = (term_tgt == TARGET_W) & (term_s >= 0) & (term_s < len(self.syn))
        P = jnp.where(keep[:, None], P, 0.0)
        P, Q = lax.optimization_barrier((P, Q))
        factors = [None if s.name == "1" else s.jax(w, jnp.zeros_like(w)) for s in self.syn_objs]
        acc = None
        for k in range(P.shape[0]):
            o = P[k][:, None] * Q[k][None, :]
            if len(factors) > 1:
                o = lax.select_n(jnp.clip(term_s[k], 0, len(factors) - 1),
                                 *[o if f is None else o * f for f in factors])
            acc = o if acc is None else acc + o
        return w + scale * acc

    def combine(self, prog: Program, P: jax.Array, Q: jax.Array, w: jax.Array, elig: jax.Array | None = None,
                exact: bool = False):
        """Sum the separable terms into (dW, dElig) for one layer; P [K, N], Q [K, M], w [N, M]."""
        return self.combine_terms(prog.term_s, prog.term_tgt, P, Q, w, elig, exact)

    def combine_terms(self, term_s, term_tgt, P, Q, w, elig=None, exact=False):
        """Like :meth:`combine` for any number of term rows (e.g. K terms x B samples of a mini-batch).

        Each synapse-factor group sums its terms' outer products with :func:`_outer_sum` and multiplies by the
        factor once; the groups of other factors and targets see a term as P = 0 times its Q. So in the search's
        networks an inf/NaN in any active term's Q (``log(tx)`` at tx = 0 in a ``delig`` term), or in a factor no
        term uses (an infinite eligibility), makes the other groups 0 * inf = NaN: such a candidate counts as
        diverged (worst fitness), although the term may not reach dw. That only ever costs the candidate; a rule
        whose evaluation stays finite gets the same values either way. ``exact=True`` (:meth:`apply`, which the
        exports are checked against) also zeroes each group's other Q rows and the factor of a group without
        terms, so every group holds exactly its own terms, as the exports compute them; in the hot path that costs
        about a third of the full spiking space's speed (BENCHMARKS.md, issue 13).
        """
        import jax.numpy as jnp

        if elig is None:
            elig = jnp.zeros_like(w)
        targets = (TARGET_W, TARGET_ELIG) if self.elig else (TARGET_W,)
        out = []
        for tgt in targets:
            total = None
            for s_idx, s in enumerate(self.syn_objs):
                # the per-term factor choice is folded into the post vectors (vector-level work), so the
                # per-synapse work is multiply-adds only (no per-synapse selects)
                sel = ((term_s == s_idx) & (term_tgt == tgt))[:, None]
                acc = _outer_sum(jnp.where(sel, P, 0.0), jnp.where(sel, Q, 0.0) if exact else Q)
                if s.name != "1":
                    f = s.jax(w, elig)
                    acc = (jnp.where(jnp.any(sel), f, 0.0) if exact else f) * acc
                total = acc if total is None else total + acc
            out.append(total)
        return out[0], (out[1] if self.elig else jnp.zeros_like(w))

    def apply(self, prog: Program, values: dict[str, jax.Array], w: jax.Array, elig: jax.Array | None = None):
        """Evaluate a rule on one layer given named local variables (convenience API, not the hot path).

        ``values`` maps each post variable to [N], each pre variable to [M], each global to a scalar; missing
        variables are zero. Returns (dW [N, M], dElig [N, M]).
        """
        n, m = w.shape
        post_in = self.side_inputs("post", values, n, w.dtype)
        pre_in = self.side_inputs("pre", values, m, w.dtype)
        P, Q = self.term_vectors(prog, self.post_registers(prog, post_in), self.pre_registers(prog, pre_in))
        return self.combine(prog, P, Q, w, elig, exact=True)     # every term on its own, as the exports compute

    def side_inputs(self, side: str, values: dict, n: int, dtype=None) -> jax.Array:
        """The side's input rows [n_vars + n_globals, n] from named values (missing ones 0; dtype default float32)."""
        import jax.numpy as jnp

        dtype = jnp.float32 if dtype is None else dtype
        own = self.post_vars if side == "post" else self.pre_vars
        rows = []
        for v in own:
            rows.append(jnp.broadcast_to(jnp.asarray(values.get(v, 0.0), dtype), (n,)))
        for g in self.global_vars:
            rows.append(jnp.broadcast_to(jnp.asarray(values.get(g, 0.0), dtype), (n,)))
        if not rows:
            return jnp.zeros((0, n), dtype)
        return jnp.stack(rows)


@functools.cache
def _interpreted(op: Op):
    """``op.jax`` as the interpreter runs it: the same values, and a gradient that is exactly zero wherever the
    output's cotangent is zero (:func:`_zero_cotangent_safe`).

    The interpreter computes every op of the menu and selects one, and computes dead registers too. Under a
    meta-gradient an unselected op or a register nobody reads gets a zero cotangent, and plain reverse mode
    multiplies it by the op's local derivative: 0 * inf = NaN for sqrt, log, div, recip at an input outside their
    domain, or exp, mul at an overflowed value (or a NaN input). One such NaN made the whole gradient NaN and
    metagrad skipped the step (``hybrid.refine: metagrad`` in a space with sqrt/log/div skipped most steps). So the
    gradient is the selected ops' gradient. Ops with ``finite_grad`` run as they are."""
    return op.jax if op.finite_grad else _zero_cotangent_safe(op.jax)


def _zero_cotangent_safe(f):
    """``f`` (elementwise; arguments broadcast to its output) with a backward pass that keeps ``f``'s own
    derivative where the output's cotangent is nonzero and passes 0 elsewhere, instead of 0 * (a derivative that
    may be inf or NaN). The forward computation is ``f`` unchanged (custom_vjp is inlined when not
    differentiated; the compiled evaluator is the same)."""
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def g(*args):
        return f(*args)

    def fwd(*args):
        return f(*args), args

    def bwd(args, ct):
        _, vjp = jax.vjp(f, *[jnp.broadcast_to(x, ct.shape).astype(jnp.result_type(x)) for x in args])
        zero = ct == 0
        return tuple(_sum_to(jnp.where(zero, jnp.zeros_like(gx), gx), jnp.shape(x)).astype(jnp.result_type(x))
                     for gx, x in zip(vjp(ct), args))

    g.defvjp(fwd, bwd)
    return g


def _sum_to(g: jax.Array, shape: tuple) -> jax.Array:
    """A gradient of a broadcast value summed back to the value's shape (trailing alignment, as numpy broadcasts)."""
    import jax.numpy as jnp

    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return jnp.sum(g, axis=axes).reshape(shape)


def _product(coef, v):
    return coef * v


def _scaled(coef: jax.Array, v: jax.Array) -> jax.Array:
    """A term coefficient times its post register. An inactive term's register may be NaN (the term is masked to
    zero after this product), so the gradient to the coefficient must be 0 there, not 0 * NaN."""
    return _safe_product()(coef, v)


@functools.cache
def _safe_product():
    return _zero_cotangent_safe(_product)      # built on first use: importing this module loads no JAX


def _read(regs: list, idx) -> jax.Array:
    """Register ``idx`` (clipped) of a Python list of registers: a select reads exactly one of them."""
    if len(regs) == 1:
        return regs[0]
    import jax.numpy as jnp
    from jax import lax

    return lax.select_n(jnp.clip(idx, 0, len(regs) - 1), *regs)


def _outer_sum(P: jax.Array, Q: jax.Array) -> jax.Array:
    """sum_k P_k (x) Q_k. Few rows: an unrolled elementwise sum that XLA fuses into one pass over the synapses
    (measured fastest on CPU, BENCHMARKS.md); many rows (e.g. the 27-term Volterra basis): one matmul."""
    if P.shape[0] > FUSED_MAX_TERMS:
        return P.T @ Q
    acc = None
    for k in range(P.shape[0]):
        o = P[k][:, None] * Q[k][None, :]
        acc = o if acc is None else acc + o
    return acc


def stack(programs: Sequence[Program]) -> Program:
    """Stack programs of one space into a population (leading axis)."""
    return Program(*[np.stack([np.asarray(getattr(p, f)) for p in programs]) for f in Program._fields])


def unstack(pop: Program) -> list[Program]:
    n = np.asarray(pop.term_on).shape[0]
    return [index(pop, i) for i in range(n)]


def index(pop: Program, i: int) -> Program:
    return Program(*[np.asarray(getattr(pop, f))[i] for f in Program._fields])


def liveness(prog: Program, space: Space) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which post instructions, pre instructions and terms contribute to the output (numpy, one program):
    :func:`liveness_batch` on a population of one."""
    live_post, live_pre, terms = liveness_batch(stack([prog]), space)
    return live_post[0], live_pre[0], terms[0]


def dce(prog: Program, space: Space) -> Program:
    """Dead-code elimination: canonicalise every instruction and term that cannot affect the output."""
    live_post, live_pre, terms = liveness(prog, space)
    p = {k: np.array(v) for k, v in prog._asdict().items()}
    for side, live in (("post", live_post), ("pre", live_pre)):
        for x in ("op", "a", "b", "c"):
            p[f"{side}_{x}"][~live] = 0
        # operands an op does not read are canonicalised too
        for i in np.nonzero(live)[0]:
            arity = OP_BY_NAME[space.ops[int(p[f"{side}_op"][i])]].arity
            n_reg = space.n_inputs(side) + i
            p[f"{side}_a"][i] = np.clip(p[f"{side}_a"][i], 0, n_reg - 1) if arity >= 1 else 0
            p[f"{side}_b"][i] = np.clip(p[f"{side}_b"][i], 0, n_reg - 1) if arity >= 2 else 0
            if not OP_BY_NAME[space.ops[int(p[f"{side}_op"][i])]].uses_const:
                p[f"{side}_c"][i] = 0.0
    for f in ("term_coef", "term_p", "term_q", "term_s", "term_tgt"):
        p[f][~terms] = 0
    p["term_on"] = terms
    return Program(**p)


def liveness_batch(pop: Program, space: Space) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which post instructions, pre instructions and terms of every program of a population contribute to its
    output (numpy, leading axis = program; a search scores thousands per generation). A term is live when it is
    on with a nonzero coefficient; an instruction when a live term or a live later instruction reads it."""
    on = np.asarray(pop.term_on).astype(bool)
    terms = on & (np.asarray(pop.term_coef) != 0)
    n = terms.shape[0]
    rows = np.arange(n)
    arity = np.array([OP_BY_NAME[name].arity for name in space.ops] or [0], np.int64)
    res = []
    for side in ("post", "pre"):
        op, a, b = (np.asarray(getattr(pop, f"{side}_{x}")).astype(np.int64) for x in ("op", "a", "b"))
        n_in = space.n_inputs(side)
        L = op.shape[1]
        live = np.zeros((n, L + 1), bool)             # column L: a sink for reads that mark nothing
        idx = np.asarray(pop.term_p if side == "post" else pop.term_q).astype(np.int64)
        for k in range(idx.shape[1]):
            r = idx[:, k]
            hit = terms[:, k] & (r >= n_in) & (r - n_in < L)
            live[rows, np.where(hit, r - n_in, L)] = True
        live[:, L] = False
        for i in range(L - 1, -1, -1):
            ar = arity[np.clip(op[:, i], 0, len(arity) - 1)] if space.ops else np.zeros(n, np.int64)
            for operand, need in ((a[:, i], ar >= 1), (b[:, i], ar >= 2)):
                o = np.clip(operand, 0, n_in + i - 1)
                hit = live[:, i] & need & (o >= n_in)
                live[rows, np.where(hit, o - n_in, L)] = True
            live[:, L] = False
        res.append(live[:, :L])
    return res[0], res[1], terms


def complexities(pop: Program, space: Space) -> np.ndarray:
    """:func:`complexity` of every program of a population (int64 [n])."""
    live_post, live_pre, terms = liveness_batch(pop, space)
    nontriv_syn = np.array([name != "1" for name in space.syn] or [False])
    s = np.clip(np.asarray(pop.term_s).astype(np.int64), 0, len(nontriv_syn) - 1)
    nontrivial = terms & nontriv_syn[s]
    return (live_post.sum(1) + live_pre.sum(1) + terms.sum(1) + nontrivial.sum(1)).astype(np.int64)


def complexities_traced(pop: Program, space: Space):
    """:func:`complexities` as JAX operations (int32 [n]; jittable, for a search's generations run on the device,
    ``search.generations_per_call``): the same liveness walk, per program, vmapped. Equal to :func:`complexities`
    (tests/test_device_generations.py)."""
    import jax
    import jax.numpy as jnp

    arity = jnp.asarray([OP_BY_NAME[name].arity for name in space.ops] or [0], jnp.int32)
    nontriv_syn = jnp.asarray([name != "1" for name in space.syn] or [False])

    def one(prog: Program):
        terms = prog.term_on.astype(bool) & (prog.term_coef != 0)
        total = terms.sum() + (terms & nontriv_syn[jnp.clip(prog.term_s, 0, nontriv_syn.shape[0] - 1)]).sum()
        for side in ("post", "pre"):
            op, a, b = (getattr(prog, f"{side}_{x}").astype(jnp.int32) for x in ("op", "a", "b"))
            n_in = space.n_inputs(side)
            L = op.shape[0]
            idx = (prog.term_p if side == "post" else prog.term_q).astype(jnp.int32)
            hit = terms & (idx >= n_in) & (idx - n_in < L)
            live = jnp.zeros(L + 1, bool).at[jnp.where(hit, idx - n_in, L)].set(True).at[L].set(False)
            for i in range(L - 1, -1, -1):
                ar = arity[jnp.clip(op[i], 0, arity.shape[0] - 1)] if space.ops else jnp.int32(0)
                for operand, need in ((a[i], ar >= 1), (b[i], ar >= 2)):
                    o = jnp.clip(operand, 0, n_in + i - 1)
                    h = live[i] & need & (o >= n_in)
                    live = live.at[jnp.where(h, o - n_in, L)].set(True).at[L].set(False)
            total = total + live[:L].sum()
        return total.astype(jnp.int32)

    return jax.vmap(one)(pop)


def complexity(prog: Program, space: Space) -> int:
    """A readable size: live vector instructions + active terms + non-trivial per-synapse factors
    (:func:`complexities` on a population of one).

    ``-e x`` (FA) and ``y x`` (Hebb) have complexity 1; Oja ``y x - y^2 w`` has 4 (square, two terms, factor w).
    """
    return int(complexities(stack([prog]), space)[0])
