"""Random programs and the AutoML-Zero mutation set, in JAX (pure, key-first, jit- and vmap-able).

Mutations (AutoML-Zero, Real et al. 2020, adapted to fixed-shape typed programs):

* ``alter_operand``          point one operand of an instruction, or the P/Q register of a term, elsewhere
* ``alter_op``               change the op of one instruction
* ``randomize_instruction``  redraw one instruction (op, operands, constant)
* ``insert``                 activate a new random term, or draw a new instruction and make a term read it
* ``remove``                 deactivate a term (if more than one is active), or bypass an instruction
* ``change_constant``        perturb a term coefficient or an instruction constant (log-normal, sign flips)
* ``randomize_all``          a fresh random program

Every random program and every mutant is projected onto the space's structure (:meth:`Space.constrain`: typed
term slots of a 'three_factor' space).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .program import Program, Space

MUTATIONS = ("alter_operand", "alter_op", "randomize_instruction", "insert", "remove", "change_constant",
             "randomize_all")
DEFAULT_MUTATION_PROBS = (0.2, 0.15, 0.1, 0.15, 0.1, 0.25, 0.05)


def _rand_instr(key, space: Space, side: str, i):
    """Random (op, a, b, c) for instruction i of ``side`` (i may be traced)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    n_valid = space.n_inputs(side) + i
    op = jax.random.randint(k1, (), 0, max(len(space.ops), 1))
    a = jnp.floor(jax.random.uniform(k2) * n_valid).astype(jnp.int32)
    b = jnp.floor(jax.random.uniform(k3) * n_valid).astype(jnp.int32)
    c = jax.random.normal(k4)
    return op.astype(jnp.int32), a, b, c


def _rand_term(key, space: Space):
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    p = jax.random.randint(k1, (), 0, space.n_registers("post"))
    q = jax.random.randint(k2, (), 0, space.n_registers("pre"))
    s = jnp.where(jax.random.uniform(k3) < 0.6, 0, jax.random.randint(k4, (), 0, len(space.syn)))
    mag = jnp.exp(0.5 * jax.random.normal(k5))
    coef = jnp.where(jax.random.uniform(k6) < 0.5, -mag, mag)
    tgt = jnp.where(jax.random.uniform(jax.random.fold_in(k6, 1)) < 0.5, 1, 0) if space.elig else jnp.int32(0)
    return p.astype(jnp.int32), q.astype(jnp.int32), s.astype(jnp.int32), coef, jnp.int32(tgt)


def random_program(key, space: Space, max_init_terms: int = 2) -> Program:
    """A random program with 1..max_init_terms active terms."""
    kp, kq, kt, kn = jax.random.split(key, 4)

    def side_instrs(k, side, n):
        if n == 0:
            z = jnp.zeros((0,), jnp.int32)
            return z, z, z, jnp.zeros((0,), jnp.float32)
        op, a, b, c = jax.vmap(lambda kk, i: _rand_instr(kk, space, side, i))(jax.random.split(k, n), jnp.arange(n))
        return op, a, b, c.astype(jnp.float32)

    post = side_instrs(kp, "post", space.n_post)
    pre = side_instrs(kq, "pre", space.n_pre)
    p, q, s, coef, tgt = jax.vmap(lambda kk: _rand_term(kk, space))(jax.random.split(kt, space.n_terms))
    n_on = jax.random.randint(kn, (), 1, min(max_init_terms, space.n_terms) + 1)
    on = jnp.arange(space.n_terms) < n_on
    return space.constrain(Program(*post, *pre, on, coef.astype(jnp.float32), p, q, s, tgt.astype(jnp.int32)))


def random_population(key, space: Space, n: int, max_init_terms: int = 2) -> Program:
    return jax.vmap(lambda k: random_program(k, space, max_init_terms))(jax.random.split(key, n))


# --- helpers ---------------------------------------------------------------------------------------------------
def _pick(key, mask):
    """Uniform index among True entries of mask (any index if none)."""
    m = mask.astype(jnp.float32)
    m = jnp.where(m.sum() > 0, m, jnp.ones_like(m))
    return jax.random.choice(key, mask.shape[0], p=m / m.sum())


def _side_choice(key, space: Space):
    """0 = post, 1 = pre, weighted by their instruction counts (never a side with no instructions)."""
    tot = space.n_post + space.n_pre
    if tot == 0:
        return jnp.int32(0)
    return jnp.where(jax.random.uniform(key) * tot < space.n_post, 0, 1).astype(jnp.int32)


def _set_instr(prog: Program, space: Space, side_idx, i, op, a, b, c) -> Program:
    """Set instruction i of the chosen side (side_idx traced: 0 post, 1 pre)."""
    upd = {}
    for s_i, side in enumerate(("post", "pre")):
        n = space.n_post if side == "post" else space.n_pre
        if n == 0:
            continue
        ii = jnp.clip(i, 0, n - 1)
        sel = side_idx == s_i
        for f, val in (("op", op), ("a", a), ("b", b), ("c", c)):
            arr = getattr(prog, f"{side}_{f}")
            upd[f"{side}_{f}"] = jnp.where(sel, arr.at[ii].set(val.astype(arr.dtype)), arr)
    return prog._replace(**upd)


def _instr_index(key, space: Space, side_idx):
    n = jnp.where(side_idx == 0, space.n_post, space.n_pre)
    return jnp.floor(jax.random.uniform(key) * jnp.maximum(n, 1)).astype(jnp.int32)


def _get(prog: Program, side_idx, field: str, i):
    vals = []
    for side in ("post", "pre"):
        arr = getattr(prog, f"{side}_{field}")
        vals.append(arr[jnp.clip(i, 0, arr.shape[0] - 1)] if arr.shape[0] else jnp.zeros((), arr.dtype))
    return jnp.where(side_idx == 0, vals[0], vals[1])


# --- the mutations ----------------------------------------------------------------------------------------------
def _alter_operand(key, prog, space):
    k0, k1, k2, k3, k4 = jax.random.split(key, 5)
    has_instr = space.n_post + space.n_pre > 0
    side = _side_choice(k1, space)
    i = _instr_index(k2, space, side)
    n_valid = jnp.where(side == 0, space.n_inputs("post"), space.n_inputs("pre")) + i
    new = jnp.floor(jax.random.uniform(k3) * n_valid).astype(jnp.int32)
    first = jax.random.uniform(k4) < 0.5
    a = jnp.where(first, new, _get(prog, side, "a", i))
    b = jnp.where(first, _get(prog, side, "b", i), new)
    instr_mut = _set_instr(prog, space, side, i, _get(prog, side, "op", i), a, b, _get(prog, side, "c", i))
    # term operand
    kk = jax.random.split(k0, 3)
    k = _pick(kk[0], prog.term_on)
    p, q, _, _, _ = _rand_term(kk[1], space)
    use_p = jax.random.uniform(kk[2]) < 0.5
    term_mut = prog._replace(term_p=jnp.where(use_p, prog.term_p.at[k].set(p), prog.term_p),
                             term_q=jnp.where(use_p, prog.term_q, prog.term_q.at[k].set(q)))
    if not has_instr:
        return term_mut
    return jax.tree.map(lambda x, y: jnp.where(jax.random.uniform(jax.random.fold_in(key, 7)) < 0.5, x, y),
                        instr_mut, term_mut)


def _alter_op(key, prog, space):
    if space.n_post + space.n_pre == 0:
        return _change_constant(key, prog, space)
    k1, k2, k3 = jax.random.split(key, 3)
    side = _side_choice(k1, space)
    i = _instr_index(k2, space, side)
    op = jax.random.randint(k3, (), 0, len(space.ops))
    return _set_instr(prog, space, side, i, op, _get(prog, side, "a", i), _get(prog, side, "b", i),
                      _get(prog, side, "c", i))


def _redraw_at(key, prog, space, side, i):
    """Redraw instruction i of the chosen side (side traced)."""
    op_p, a_p, b_p, c_p = _rand_instr(key, space, "post", i)
    op_q, a_q, b_q, c_q = _rand_instr(key, space, "pre", i)
    sel = side == 0
    return _set_instr(prog, space, side, i, jnp.where(sel, op_p, op_q), jnp.where(sel, a_p, a_q),
                      jnp.where(sel, b_p, b_q), jnp.where(sel, c_p, c_q))


def _randomize_instruction(key, prog, space):
    if space.n_post + space.n_pre == 0:
        return _change_constant(key, prog, space)
    k1, k2, k3 = jax.random.split(key, 3)
    side = _side_choice(k1, space)
    i = _instr_index(k2, space, side)
    return _redraw_at(k3, prog, space, side, i)


def _insert(key, prog, space):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    # (a) activate a new random term
    free = ~prog.term_on
    k = _pick(k1, free)
    p, q, s, coef, tgt = _rand_term(k2, space)
    new_term = prog._replace(term_on=prog.term_on.at[k].set(True), term_p=prog.term_p.at[k].set(p),
                             term_q=prog.term_q.at[k].set(q), term_s=prog.term_s.at[k].set(s),
                             term_coef=prog.term_coef.at[k].set(coef), term_tgt=prog.term_tgt.at[k].set(tgt))
    new_term = jax.tree.map(lambda x, y: jnp.where(free.any(), x, y), new_term, prog)
    if space.n_post + space.n_pre == 0:
        return new_term
    # (b) draw an instruction and make an active term read it
    side = _side_choice(k3, space)
    i = _instr_index(k4, space, side)
    with_instr = _redraw_at(jax.random.fold_in(k4, 1), prog, space, side, i)
    kt = _pick(k5, prog.term_on)
    reg = jnp.where(side == 0, space.n_inputs("post"), space.n_inputs("pre")) + i
    with_instr = with_instr._replace(
        term_p=jnp.where(side == 0, with_instr.term_p.at[kt].set(reg), with_instr.term_p),
        term_q=jnp.where(side == 1, with_instr.term_q.at[kt].set(reg), with_instr.term_q))
    choose_term = jax.random.uniform(jax.random.fold_in(key, 3)) < 0.5
    return jax.tree.map(lambda x, y: jnp.where(choose_term, x, y), new_term, with_instr)


def _remove(key, prog, space):
    k1, k2 = jax.random.split(key)
    k = _pick(k1, prog.term_on)
    n_on = prog.term_on.sum()
    drop = prog._replace(term_on=jnp.where(n_on > 1, prog.term_on.at[k].set(False), prog.term_on))
    if space.n_post + space.n_pre == 0:
        return drop
    # bypass: a term reading an instruction register reads that instruction's first operand instead
    kt = _pick(k2, prog.term_on)
    out = {}
    for side, field in (("post", "term_p"), ("pre", "term_q")):
        n_in, n = space.n_inputs(side), (space.n_post if side == "post" else space.n_pre)
        reg = getattr(prog, field)[kt]
        is_instr = (reg >= n_in) & (n > 0)
        a_arr = getattr(prog, f"{side}_a")
        src = a_arr[jnp.clip(reg - n_in, 0, max(n - 1, 0))] if n else jnp.int32(0)
        out[field] = jnp.where(is_instr, getattr(prog, field).at[kt].set(src), getattr(prog, field))
    side_first = jax.random.uniform(jax.random.fold_in(key, 5)) < 0.5
    bypass = prog._replace(term_p=jnp.where(side_first, out["term_p"], prog.term_p),
                           term_q=jnp.where(side_first, prog.term_q, out["term_q"]))
    return jax.tree.map(lambda x, y: jnp.where(jax.random.uniform(jax.random.fold_in(key, 9)) < 0.6, x, y),
                        drop, bypass)


def _change_constant(key, prog, space, sigma: float = 0.3):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    k = _pick(k1, prog.term_on)
    factor = jnp.exp(sigma * jax.random.normal(k2))
    flip = jnp.where(jax.random.uniform(k3) < 0.1, -1.0, 1.0)
    term = prog._replace(term_coef=prog.term_coef.at[k].multiply(factor * flip))
    if space.n_post + space.n_pre == 0:
        return term
    side = _side_choice(k4, space)
    i = _instr_index(k5, space, side)
    c = _get(prog, side, "c", i)
    c = c + sigma * jnp.maximum(1.0, jnp.abs(c)) * jax.random.normal(jax.random.fold_in(k5, 1))
    instr = _set_instr(prog, space, side, i, *[_get(prog, side, f, i) for f in ("op", "a", "b")], c)
    return jax.tree.map(lambda x, y: jnp.where(jax.random.uniform(jax.random.fold_in(key, 11)) < 0.7, x, y),
                        term, instr)


def _randomize_all(key, prog, space):
    n_on = int(np.clip(2, 1, space.n_terms))
    return random_program(key, space, n_on)


_FNS = {"alter_operand": _alter_operand, "alter_op": _alter_op, "randomize_instruction": _randomize_instruction,
        "insert": _insert, "remove": _remove, "change_constant": _change_constant, "randomize_all": _randomize_all}


def mutate(key, prog: Program, space: Space, probs=DEFAULT_MUTATION_PROBS) -> Program:
    """Apply one mutation drawn with probabilities ``probs`` (ordered as MUTATIONS)."""
    k1, k2 = jax.random.split(key)
    probs = jnp.asarray(probs, jnp.float32)
    which = jax.random.choice(k1, len(MUTATIONS), p=probs / probs.sum())
    prog = jax.tree.map(jnp.asarray, prog)
    branches = [lambda k, p, f=_FNS[m]: _cast(space.constrain(f(k, p, space)), p) for m in MUTATIONS]
    return jax.lax.switch(which, branches, k2, prog)


def _cast(new: Program, old: Program) -> Program:
    return Program(*[jnp.asarray(n).astype(o.dtype) for n, o in zip(new, old)])
