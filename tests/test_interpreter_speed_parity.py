"""The fast interpreter path (select-read registers, one fused weight update per layer) equals a straightforward
reference computation: random programs, the w synapse factor, mini-batches B > 1, and inf/NaN isolation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search.rate.online import InnerConfig, InnerLoop
from plasticity_search.rate import NetworkConfig
from plasticity_search.rules import Space, random_population
from plasticity_search.rules.ops import OP_BY_NAME, SYN_BY_NAME
from plasticity_search.rules.program import SELECT_MAX_REGISTERS, index
from plasticity_search.tasks import make

QUICK = Space(post_vars=("y", "e"), pre_vars=("x", "e_pre"), ops=("add", "sub", "mul"), syn=("1", "w"),
              n_post=1, n_pre=1, n_terms=3)
# bigger register file (gather path), more ops and factors, globals
WIDE = Space(post_vars=("y", "a", "e", "ybar", "theta"), pre_vars=("x", "xbar", "e_pre"), global_vars=("r",),
             ops=("add", "sub", "mul", "div", "square", "cmul", "const"), syn=("1", "w", "w2", "sign_w"),
             n_post=3, n_pre=2, n_terms=4)


def ref_registers(space: Space, side, prog, rows):
    """Plain numpy interpreter: every register of one side (float64 is avoided: float32 like the real one)."""
    op, a, b, c = (np.asarray(getattr(prog, f"{side}_{x}")) for x in ("op", "a", "b", "c"))
    n = rows[0].shape[0]
    regs = [np.ones(n, np.float32)] + [np.asarray(r, np.float32) for r in rows]
    with np.errstate(all="ignore"):
        for i in range(op.shape[0]):
            hi = len(regs) - 1
            xa, xb = regs[int(np.clip(a[i], 0, hi))], regs[int(np.clip(b[i], 0, hi))]
            f = OP_BY_NAME[space.ops[int(np.clip(op[i], 0, len(space.ops) - 1))]].jax
            regs.append(np.asarray(f(jnp.asarray(xa), jnp.asarray(xb), jnp.float32(c[i])), np.float32))
    return regs


def ref_update(space: Space, progs, P_rows, Q_rows, w, scale):
    """w + scale * sum over samples and active weight terms of coef * P (x) Q * S(w), term by term (numpy)."""
    dw = np.zeros_like(w)
    with np.errstate(all="ignore"):
        for prog, post_rows, pre_rows in zip(progs, P_rows, Q_rows):
            Rp = ref_registers(space, "post", prog, post_rows)
            Rq = ref_registers(space, "pre", prog, pre_rows)
            for k in range(space.n_terms):
                if not bool(prog.term_on[k]) or int(prog.term_tgt[k]) != 0:
                    continue
                p = Rp[int(np.clip(prog.term_p[k], 0, len(Rp) - 1))] * np.float32(prog.term_coef[k])
                q = Rq[int(np.clip(prog.term_q[k], 0, len(Rq) - 1))]
                s = space.syn[int(np.clip(prog.term_s[k], 0, len(space.syn) - 1))]
                fac = np.asarray(SYN_BY_NAME[s].jax(jnp.asarray(w), jnp.zeros_like(jnp.asarray(w))))
                dw = dw + np.outer(p, q) * fac
    return w + np.float32(scale) * dw


def fast_update(space: Space, prog, rows_per_sample, w, scale):
    n, m = w.shape
    Ps, Qs = [], []
    for post_rows, pre_rows in rows_per_sample:
        P, Q = space.rule_vectors(prog, post_rows, pre_rows, n, m)
        Ps.append(P)
        Qs.append(Q)
    B = len(rows_per_sample)
    ts = jnp.tile(prog.term_s, B)
    tt = jnp.tile(prog.term_tgt, B)
    return space.update_weights(ts, tt, jnp.concatenate(Ps), jnp.concatenate(Qs), w, scale)


def rand_rows(rng, space: Space, n, m):
    post = [jnp.asarray(rng.normal(size=n), jnp.float32) for _ in space.post_vars]
    pre = [jnp.asarray(rng.normal(size=m), jnp.float32) for _ in space.pre_vars]
    g = [float(rng.normal()) for _ in space.global_vars]
    post += [jnp.full((n,), v, jnp.float32) for v in g]
    pre += [jnp.full((m,), v, jnp.float32) for v in g]
    return post, pre


@pytest.mark.parametrize("space", [QUICK, WIDE], ids=["select-path", "gather-path"])
@pytest.mark.parametrize("B", [1, 3])
def test_update_matches_reference(space, B):
    assert (space.n_registers("post") <= SELECT_MAX_REGISTERS) == (space is QUICK)
    rng = np.random.default_rng(B)
    pop = random_population(jax.random.key(7 + B), space, 24, space.n_terms)
    n, m = 7, 5
    fast = jax.jit(lambda prog, rows, w: fast_update(space, prog, rows, w, 0.05 / B))
    seen_w = 0
    for i in range(24):
        prog = index(pop, i)
        rows = [rand_rows(rng, space, n, m) for _ in range(B)]
        w = rng.normal(size=(n, m)).astype(np.float32)
        got = np.asarray(fast(jax.tree.map(jnp.asarray, prog), rows, jnp.asarray(w)))
        want = ref_update(space, [prog] * B, [r[0] for r in rows], [r[1] for r in rows], w, 0.05 / B)
        fin = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(got), fin)
        np.testing.assert_allclose(got[fin], want[fin], rtol=2e-5, atol=1e-5 * max(1.0, np.abs(want[fin]).max()))
        seen_w += int(any(space.syn[int(s)] != "1" for s, on in zip(prog.term_s, prog.term_on) if on))
    assert seen_w > 0   # the w (and other) synapse factors were exercised


def test_update_weights_equals_combine_terms_many_rows():
    """Above FUSED_MAX_TERMS rows the update is the combine_terms expression itself."""
    space = QUICK
    rng = np.random.default_rng(0)
    R = 12
    P = jnp.asarray(rng.normal(size=(R, 6)), jnp.float32)
    Q = jnp.asarray(rng.normal(size=(R, 4)), jnp.float32)
    ts = jnp.asarray(rng.integers(0, 2, R), jnp.int32)
    tt = jnp.zeros(R, jnp.int32)
    w = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    got = space.update_weights(ts, tt, P, Q, w, 0.1)
    want = w + 0.1 * space.combine_terms(ts, tt, P, Q, w)[0]
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("space", [QUICK, WIDE], ids=["select-path", "gather-path"])
def test_inf_nan_in_unread_register_does_not_leak(space):
    """An inf/NaN input that no active term reads (directly or through an instruction) leaves dW finite; an inactive
    term whose registers are inf/NaN contributes nothing."""
    n, m = 4, 3
    prog = space.empty()
    prog = prog._replace(term_on=np.array([True] + [False] * (space.n_terms - 1)),
                         term_coef=np.array([-1.0] + [0.0] * (space.n_terms - 1), np.float32),
                         term_p=np.array([1 + space.post_vars.index("e")] * space.n_terms, np.int32),
                         term_q=np.array([1 + space.pre_vars.index("x")] * space.n_terms, np.int32))
    # inactive terms point at the poisoned registers and carry the w factor
    bad_p = 1 + space.post_vars.index("y")
    bad_q = 1 + space.pre_vars.index("e_pre")
    prog.term_p[1:] = bad_p
    prog.term_q[1:] = bad_q
    prog.term_s[1:] = 1
    # instructions read the poisoned registers too (their results are unread)
    for side, bad in (("post", bad_p), ("pre", bad_q)):
        getattr(prog, f"{side}_a")[:] = bad
        getattr(prog, f"{side}_b")[:] = bad
    rows_post = [jnp.full((n,), np.inf if v == "y" else (np.nan if v == "a" else 0.5), jnp.float32)
                 for v in space.post_vars] + [jnp.full((n,), 0.3, jnp.float32) for _ in space.global_vars]
    rows_pre = [jnp.full((m,), np.nan if v == "e_pre" else 2.0, jnp.float32) for v in space.pre_vars] + \
               [jnp.full((m,), 0.3, jnp.float32) for _ in space.global_vars]
    w = jnp.ones((n, m), jnp.float32)
    got = np.asarray(jax.jit(lambda p: fast_update(space, p, [(rows_post, rows_pre)], w, 0.1))(
        jax.tree.map(jnp.asarray, prog)))
    np.testing.assert_allclose(got, 1.0 - 0.1 * 0.5 * 2.0, rtol=1e-6)
    # ... and reading the poisoned register does make it non-finite (the check above is not vacuous)
    prog2 = prog._replace(term_p=np.array([bad_p] * space.n_terms, np.int32))
    got2 = np.asarray(jax.jit(lambda p: fast_update(space, p, [(rows_post, rows_pre)], w, 0.1))(
        jax.tree.map(jnp.asarray, prog2)))
    assert not np.isfinite(got2).any()


@pytest.mark.parametrize("batch", [1, 4])
def test_inner_step_matches_reference(batch):
    """InnerLoop.step (both layers, biases, e_pre, the w factor) equals the reference update for random programs."""
    task = make("digits")
    cfg = InnerConfig(network=NetworkConfig(hidden=(6,), feedback="fa", lr=0.05, batch_size=batch), steps=8)
    loop = InnerLoop(QUICK, task, cfg)
    net = loop.net
    st = loop.init(jax.random.key(0))
    rng = np.random.default_rng(batch)
    x = jnp.asarray(rng.normal(size=(batch, task.n_in)), jnp.float32)
    y = jax.nn.one_hot(jnp.asarray(rng.integers(0, task.n_out, batch)), task.n_out)
    pop = random_population(jax.random.key(3), QUICK, 16, 3)
    step = jax.jit(lambda p: loop.step(p, st, x, y)[0].net.W)
    for i in range(16):
        prog = index(pop, i)
        W_new = step(jax.tree.map(jnp.asarray, prog))
        post_rows, pre_rows = [], []
        for b in range(batch):
            fwd = net.forward(st.net.W, x[b])
            deltas = net.errors(st.net, fwd, y[b])
            pv, qv, _ = loop._local_values(st, fwd, deltas, -net.loss(fwd.out, y[b]))
            post_rows.append([np.asarray(pv[v]) for v in QUICK.post_vars])
            pre_rows.append([np.asarray(qv[v]) for v in QUICK.pre_vars])
        for l in range(net.n_layers):
            ps = slice(int(loop.post_off[l]), int(loop.post_off[l + 1]))
            qs = slice(int(loop.pre_off[l]), int(loop.pre_off[l + 1]))
            want = ref_update(QUICK, [prog] * batch, [[r[ps] for r in rows] for rows in post_rows],
                              [[r[qs] for r in rows] for rows in pre_rows], np.asarray(st.net.W[l]), 0.05 / batch)
            got = np.asarray(W_new[l])
            fin = np.isfinite(want)
            np.testing.assert_array_equal(np.isfinite(got), fin)
            np.testing.assert_allclose(got[fin], want[fin], rtol=2e-5, atol=1e-6)
