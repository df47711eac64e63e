"""Interpreter: one compile per population, robustness on random programs, mutations, DCE, FEC."""
import chex
import jax
import jax.numpy as jnp
import numpy as np

from plasticity_search.rules import (MUTATIONS, RATE_SPACE, RULES, Space, compile_formula, complexity, dce,
                                     fec_hashes, mutate, pad, probe_outputs, random_population, stack,
                                     to_sympy_raw)

SPACE = RATE_SPACE.resized(n_post=6, n_pre=6, n_terms=6)


def _layer_fn(space):
    def run(prog, post_in, pre_in, w):
        P, Q = space.term_vectors(prog, space.post_registers(prog, post_in), space.pre_registers(prog, pre_in))
        return space.combine(prog, P, Q, w)[0]
    return run


def test_population_one_compile():
    """256 different programs in one compiled call; a new population of the same shape does not retrace."""
    run = _layer_fn(SPACE)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def batched(pop, post_in, pre_in, w):
        return jax.vmap(run, in_axes=(0, None, None, None))(pop, post_in, pre_in, w)

    rng = np.random.default_rng(0)
    post_in = jnp.asarray(rng.normal(size=(len(SPACE.post_vars), 20)), jnp.float32)
    pre_in = jnp.asarray(rng.normal(size=(len(SPACE.pre_vars), 30)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(20, 30)), jnp.float32)
    for seed in range(3):
        pop = random_population(jax.random.key(seed), SPACE, 256, 3)
        out = batched(pop, post_in, pre_in, w)
        assert out.shape == (256, 20, 30)
    chex.clear_trace_counter()


def test_100k_random_programs_never_raise():
    """100,000 random programs (many producing inf/NaN) evaluate without an exception."""
    run = _layer_fn(SPACE)
    f = jax.jit(jax.vmap(run, in_axes=(0, None, None, None)))
    rng = np.random.default_rng(1)
    post_in = jnp.asarray(np.concatenate([rng.normal(size=(len(SPACE.post_vars), 6)) * 10,
                                          np.zeros((len(SPACE.post_vars), 2))], 1), jnp.float32)
    pre_in = jnp.asarray(rng.normal(size=(len(SPACE.pre_vars), 5)) * 10, jnp.float32)
    w = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
    gen = jax.jit(lambda k: random_population(k, SPACE, 10_000, 4))
    n_nonfinite = 0
    for i in range(10):
        out = np.asarray(f(gen(jax.random.key(100 + i)), post_in, pre_in, w))
        assert out.shape == (10_000, 8, 5)
        n_nonfinite += int((~np.isfinite(out)).any(axis=(1, 2)).sum())
    assert n_nonfinite > 0  # the random space does produce non-finite rules, and nothing raised


def test_mutations_keep_programs_valid():
    pop = random_population(jax.random.key(0), SPACE, 64, 2)
    mut = jax.jit(jax.vmap(lambda k, p: mutate(k, p, SPACE)))
    changed = 0
    for step in range(20):
        new = mut(jax.random.split(jax.random.key(step), 64), pop)
        for f in ("post_a", "post_b"):
            arr = np.asarray(getattr(new, f))
            assert np.all(arr >= 0) and np.all(arr < SPACE.n_inputs("post") + np.arange(SPACE.n_post))
        assert np.all(np.asarray(new.term_on).sum(1) >= 1)
        assert np.all(np.asarray(new.term_p) < SPACE.n_registers("post"))
        assert np.all(np.asarray(new.term_q) < SPACE.n_registers("pre"))
        assert np.all(np.asarray(new.post_op) < len(SPACE.ops))
        changed += sum(not all(np.array_equal(np.asarray(a)[i], np.asarray(b)[i]) for a, b in zip(new, pop))
                       for i in range(64))
        pop = new
    assert changed > 0.8 * 20 * 64


def test_each_mutation_type_runs():
    from plasticity_search.rules.mutation import _FNS
    prog = random_population(jax.random.key(3), SPACE, 1, 3)
    prog = jax.tree.map(lambda x: x[0], prog)
    for name in MUTATIONS:
        out = jax.jit(lambda k, p, f=_FNS[name]: f(k, p, SPACE))(jax.random.key(1), prog)
        assert jax.tree.structure(out) == jax.tree.structure(prog)


def test_dce_and_fec_equivalence():
    """Programs that differ only in dead code or in how they compute the same function hash the same."""
    a, _ = compile_formula("y*(x - y*w)", SPACE, fit=False)
    b, _ = compile_formula("x*y - w*y**2", SPACE, fit=False)
    c, _ = compile_formula("y*x", SPACE, fit=False)
    # add dead code to a
    a_dead = a._replace(post_op=a.post_op.copy())
    a_dead.post_op[5] = SPACE.ops.index("tanh")
    a_dead.post_a[5] = 2
    pop = stack([a, b, c, a_dead, dce(a_dead, SPACE)])
    h = fec_hashes(pop, SPACE)
    assert h[0] == h[1] == h[3] == h[4]
    assert h[0] != h[2]
    assert complexity(a_dead, SPACE) == complexity(a, SPACE)
    dw, _ = probe_outputs(pop, SPACE)
    np.testing.assert_allclose(dw[0], dw[3])


def test_pad_into_bigger_space():
    prog, small = RULES["oja"].compile()
    big = pad(prog, small, SPACE)
    assert np.asarray(big.term_on).shape == (SPACE.n_terms,)
    d1, _ = to_sympy_raw(prog, small)
    d2, _ = to_sympy_raw(big, SPACE)
    assert (d1 - d2).expand() == 0


def test_space_validation():
    import pytest
    from plasticity_search.rules import RuleError
    with pytest.raises(RuleError, match="unknown variable 'q'"):
        Space(post_vars=("q",))
    with pytest.raises(RuleError, match="unknown op 'pow'"):
        Space(ops=("pow",))
    with pytest.raises(RuleError, match="is a pre quantity"):
        Space(post_vars=("x",))
