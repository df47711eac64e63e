"""The spiking interpreter (spiking/plasticity.py: run_programs, apply_rule) against the generic interpreter of
rules/program.py (apply_rule_reference): random programs of the full spiking space, both targets, programs of
unequal side lengths, inf/NaN inputs, and a short network simulation where one candidate blows up."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search.rules import SPIKING_SPACE, Program, random_population
from plasticity_search.rules.ops import POLY_OPS
from plasticity_search.spiking import plasticity as pl
from plasticity_search.spiking.network import NetSpec, feedback_matrices, forward, init_state, learn

S = SPIKING_SPACE
POST, PRE = (12, 3), (5, 12)          # two layers: 5 -> 12 -> 3 neurons


def _pop(space, P, seed, terms=6):
    pop = random_population(jax.random.key(seed), space, P, terms)
    # every term slot active, targets and factors spread over the menu: both targets are exercised
    K = space.n_terms
    rng = np.random.default_rng(seed)
    return pop._replace(term_on=jnp.ones((P, K), bool),
                        term_tgt=jnp.asarray(rng.integers(0, 2 if space.elig else 1, (P, K)), jnp.int32),
                        term_s=jnp.asarray(rng.integers(0, len(space.syn), (P, K)), jnp.int32))


def _inputs(space, P, seed, blowups=False):
    k = jax.random.split(jax.random.key(seed), 6)
    n_post, n_pre = sum(POST), sum(PRE)
    post_in = jax.random.normal(k[0], (P, len(space.post_vars) + len(space.global_vars), n_post))
    pre_in = jax.random.normal(k[1], (P, len(space.pre_vars) + len(space.global_vars), n_pre))
    if blowups:   # candidate 0: an inf and a NaN in its inputs; candidate 1: a zero (log, div, recip -> inf)
        post_in = post_in.at[0, 1, 3].set(jnp.inf).at[0, 2, 0].set(jnp.nan)
        pre_in = pre_in.at[0, 0, 1].set(-jnp.inf)
        post_in = post_in.at[1].set(post_in[1].at[:, ::2].set(0.0))
        pre_in = pre_in.at[1].set(pre_in[1].at[:, ::3].set(0.0))
    ws = tuple(jax.random.normal(k[2 + i], (P, n, m)) for i, (n, m) in enumerate(zip(POST, PRE)))
    es = tuple(jax.random.normal(k[4 + i], (P, n, m)) for i, (n, m) in enumerate(zip(POST, PRE)))
    return post_in, pre_in, ws, es


def _apply(fn, space, pop, hyper, post_in, pre_in, ws, es):
    return jax.jit(jax.vmap(lambda pr, h, a, b, w, e: fn(space, pr, h, a, b, w, e, POST, PRE)))(
        pop, hyper, post_in, pre_in, ws, es)


def _hyper(P, **kw):
    return pl.RuleHyper(*[jnp.full((P,), x, jnp.float32) for x in pl.rule_hyper({"lr": 0.1, **kw})])


def _same(a, b):
    """Equal as float32 values (NaN == NaN), leaf by leaf."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        np.testing.assert_allclose(np.nan_to_num(x, nan=0.0), np.nan_to_num(y, nan=0.0), rtol=1e-6, atol=0)


@pytest.mark.parametrize("space", [S, dataclasses.replace(S, ops=POLY_OPS, name="poly"),
                                   S.resized(n_post=4, n_pre=2), S.resized(n_post=0, n_pre=3),
                                   S.resized(n_post=5, n_pre=0)],
                         ids=["full", "poly", "4x2", "0x3", "5x0"])
@pytest.mark.parametrize("blowups", [False, True], ids=["finite", "blowups"])
def test_registers_match_reference(space, blowups):
    P = 24
    pop = _pop(space, P, 1)
    post_in, pre_in, _, _ = _inputs(space, P, 2, blowups)
    fast = jax.jit(jax.vmap(lambda pr, a, b: pl.run_programs(space, pr, a, b)))(pop, post_in, pre_in)
    ref = jax.jit(jax.vmap(lambda pr, a, b: (space.post_registers(pr, a), space.pre_registers(pr, b))))(
        pop, post_in, pre_in)
    _same(fast, ref)


def test_every_op_on_both_sides():
    """Each op of the full set (and the shared exp / division paths) as every instruction of both sides."""
    n_ops = len(S.ops)
    P = n_ops
    base = _pop(S, P, 3)
    ops = jnp.arange(n_ops, dtype=jnp.int32)[:, None]
    pop = base._replace(post_op=jnp.broadcast_to(ops, (P, S.n_post)), pre_op=jnp.broadcast_to(ops, (P, S.n_pre)))
    post_in, pre_in, _, _ = _inputs(S, P, 4, blowups=True)
    fast = jax.jit(jax.vmap(lambda pr, a, b: pl.run_programs(S, pr, a, b)))(pop, post_in, pre_in)
    ref = jax.jit(jax.vmap(lambda pr, a, b: (S.post_registers(pr, a), S.pre_registers(pr, b))))(pop, post_in, pre_in)
    _same(fast, ref)


@pytest.mark.parametrize("blowups", [False, True], ids=["finite", "blowups"])
def test_apply_rule_matches_reference_both_targets(blowups):
    P = 32
    pop = _pop(S, P, 5)
    assert np.asarray(pop.term_tgt).min() == 0 and np.asarray(pop.term_tgt).max() == 1
    post_in, pre_in, ws, es = _inputs(S, P, 6, blowups)
    hyper = _hyper(P, w_bounds=[-2.0, 2.0])
    fast = _apply(pl.apply_rule, S, pop, hyper, post_in, pre_in, ws, es)
    ref = _apply(pl.apply_rule_reference, S, pop, hyper, post_in, pre_in, ws, es)
    _same(fast, ref)
    dws, des = fast[2], fast[3]
    assert any(np.nanmax(np.abs(np.asarray(d))) > 0 for d in des)       # the eligibility target is exercised
    if blowups:   # a blow-up spoils only its own candidate
        for d in dws + des:
            assert np.isfinite(np.asarray(d)[2:]).sum() > 0
        rest = _apply(pl.apply_rule, S, jax.tree.map(lambda x: x[2:], pop), jax.tree.map(lambda x: x[2:], hyper),
                      post_in[2:], pre_in[2:], tuple(w[2:] for w in ws), tuple(e[2:] for e in es))
        _same(jax.tree.map(lambda x: x[2:], fast), rest)


def test_network_simulation_matches_reference_and_isolates_blowups():
    """A short spiking simulation (both layers plastic, FA feedback): the optimized and the reference interpreter
    give the same weights; a candidate that explodes gets non-finite weights and leaves the others unchanged."""
    spec = NetSpec((6, 8, 3), gains=(4.0, 2.0))
    key = jax.random.key(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    w0 = (0.5 * jax.random.normal(k1, (8, 6)), 0.5 * jax.random.normal(k2, (3, 8)))
    B = feedback_matrices(k3, spec)
    T = 60
    spikes = (jax.random.uniform(k4, (T, 6)) < 0.2).astype(jnp.float32)
    P = 12
    pop = _pop(S, P, 7)
    # candidate 0 explodes: a huge coefficient on every term
    pop = pop._replace(term_coef=pop.term_coef.at[0].set(1e30))
    hyper = _hyper(P)

    def sim(prog, h, reference):
        def step(state, s):
            state, fw = forward(spec, state, s)
            e_out = fw.v[-1] - 0.5
            return learn(S, prog, h, spec, state, fw, e_out, B, reference=reference), None
        state, _ = jax.lax.scan(step, init_state(spec, w0), spikes)
        return state.ws, state.eligs

    run = lambda ref: jax.jit(jax.vmap(lambda p, h: sim(p, h, ref)))  # noqa: E731
    fast, ref = run(False)(pop, hyper), run(True)(pop, hyper)
    _same(fast, ref)
    w_fast = [np.asarray(w) for w in fast[0]]
    assert not all(np.isfinite(w[0]).all() for w in w_fast)        # the exploding candidate is spoiled ...
    alone = run(False)(jax.tree.map(lambda x: x[1:], pop), jax.tree.map(lambda x: x[1:], hyper))
    _same(jax.tree.map(lambda x: x[1:], fast), alone)                # ... and only it


def test_known_rule_minimal_space_unchanged():
    """stdp_add in its minimal space (no instructions): the fast path is the reference path."""
    from plasticity_search.rules.resolve import resolve_rule
    r = resolve_rule("stdp_add")
    pop = Program(*[jnp.asarray(x)[None] for x in r.program])
    sp = r.space
    post_in = jax.random.normal(jax.random.key(8), (1, len(sp.post_vars) + len(sp.global_vars), sum(POST)))
    pre_in = jax.random.normal(jax.random.key(9), (1, len(sp.pre_vars) + len(sp.global_vars), sum(PRE)))
    ws = tuple(jnp.zeros((1, n, m)) for n, m in zip(POST, PRE))
    hyper = pl.RuleHyper(*[jnp.asarray(x)[None] for x in pl.rule_hyper(r.defaults)])
    _same(_apply(pl.apply_rule, sp, pop, hyper, post_in, pre_in, ws, ws),
          _apply(pl.apply_rule_reference, sp, pop, hyper, post_in, pre_in, ws, ws))
