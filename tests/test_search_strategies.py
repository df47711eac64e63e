"""Strategies are pure: regularized evolution (ask/tell), the evosax coefficient strategy and the optax meta-gradient
step run inside ``lax.scan`` and give the same result as a Python loop over the same calls."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search.rate import InnerConfig, InnerLoop, instance_keys, task_batch
from plasticity_search.rate import default_network
from plasticity_search.rules import Space, compile_formula
from plasticity_search.search import CoeffES, MetaGrad, Parametrization, RegularizedEvolution
from plasticity_search.jit_options import FAST_COMPILE
from plasticity_search.tasks import make

# the space and strategy of tests/test_search.py's tiny config: the engine's compiled ask/tell are shared
SPACE = Space(post_vars=("y",), pre_vars=("x",), ops=("add", "sub", "mul"), syn=("1", "w"), n_post=2, n_pre=1,
              n_terms=3, name="tiny")


def _probe_fitness():
    """A pure JAX fitness: -distance of a program's update to Oja's on fixed random local quantities."""
    rng = np.random.default_rng(0)
    vals = {"y": jnp.asarray(rng.normal(size=6), jnp.float32), "x": jnp.asarray(rng.normal(size=4), jnp.float32)}
    w = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
    oja, _ = compile_formula("y*(x - y*w)", SPACE, fit=False)
    target = SPACE.apply(jax.tree.map(jnp.asarray, oja), vals, w)[0]

    def fit(prog):
        d = SPACE.apply(prog, vals, w)[0] - target
        v = -jnp.mean(d * d)
        return jnp.where(jnp.isfinite(v), v, -jnp.inf)

    return jax.jit(jax.vmap(fit))


def test_regularized_evolution_inside_scan():
    from plasticity_search.search.regevo import jitted
    strat = RegularizedEvolution(SPACE, population_size=8, tournament_size=2, num_children=4)
    fitness = _probe_fitness()
    pop = jitted(strat, "initialize")(jax.random.key(0))
    state = strat.init(pop, fitness(pop))

    def gen(state, key):
        children = strat.ask(key, state)
        state, m = strat.tell(state, children, fitness(children))
        return state, m["best_fitness"]

    def gen_jitted(state, key):          # the compiled functions the engine calls
        children = jitted(strat, "ask")(key, state)
        return jitted(strat, "tell")(state, children, fitness(children))

    G = 12
    keys = jax.random.split(jax.random.key(1), G)
    scanned, best = jax.jit(lambda s, k: jax.lax.scan(gen, s, k), compiler_options=FAST_COMPILE)(state, keys)
    looped = state
    for k in keys:
        looped, _ = gen_jitted(looped, k)
    # identical programs and ages; constants equal up to float32 rounding of the fused computation
    ints = lambda s: [x for x in jax.tree.leaves(s) if not jnp.issubdtype(x.dtype, jnp.floating)]  # noqa: E731
    chex.assert_trees_all_equal(ints(scanned), ints(looped))
    chex.assert_trees_all_close(scanned, looped, rtol=1e-5, atol=1e-7)
    assert best.shape == (G,) and int(scanned.counter) == 8 + G * 4
    # aging: the oldest members were replaced (birth numbers are the 8 most recent)
    assert int(jnp.min(scanned.birth)) == 8 + G * 4 - 8


def test_evosax_coefficients_inside_scan():
    target = jnp.array([0.5, -1.0, 2.0])
    es = CoeffES("CMA_ES", population=8, n=3, std_init=0.5)

    def gen(state, key):
        ka, kt = jax.random.split(key)
        thetas, state = es.ask(ka, state)
        fit = -jnp.sum((thetas - target) ** 2, axis=1)
        fit = fit.at[0].set(jnp.nan)                   # a diverged candidate counts as the worst
        state, _ = es.tell(kt, state, thetas, fit)
        return state, jnp.max(jnp.nan_to_num(fit, nan=-jnp.inf))

    s0 = es.init(jax.random.key(0), jnp.zeros(3))
    keys = jax.random.split(jax.random.key(2), 60)
    run = jax.jit(lambda s, k: jax.lax.scan(gen, s, k))
    scanned, best = run(s0, keys)
    looped = s0
    for k in keys[:5]:
        looped, _ = gen(looped, k)
    # same computation; float32 rounding differs slightly between the fused scan and eager calls
    chex.assert_trees_all_close(run(s0, keys[:5])[0], looped, rtol=1e-4, atol=1e-5)
    assert float(jnp.linalg.norm(es.mean(scanned) - target)) < 0.1
    assert float(best[-1]) > float(best[0])


def test_metagrad_step_inside_scan():
    task = make("pca")
    fam, fspace = compile_formula("y*x - 0.5*y*y*w", Space(post_vars=("y",), pre_vars=("x",), ops=("mul",),
                                                          syn=("1", "w")))
    param = Parametrization.from_program(fam, fspace)
    loop = InnerLoop(fspace, task, InnerConfig(network=default_network("pca"), steps=40))
    batch = ((jax.tree.map(jnp.asarray, task_batch(task, [0, 1], "search", 40)), instance_keys([0, 1], "search")),)

    def loss_fn(m):
        return -(m["pc1_alignment"] - jnp.abs(m["weight_norm"] - 1.0))

    for trunc in (None, 20):
        mg = MetaGrad(param, (loop,), loss_fn, "adam", lr=0.05, truncation=trunc)
        s0 = mg.init(param.theta0)
        keys = jax.random.split(jax.random.key(3), 3)
        scanned, m = jax.jit(lambda s, k: jax.lax.scan(lambda s, kk: mg.update(kk, s, batch), s, k),
                             compiler_options=FAST_COMPILE)(s0, keys)
        if trunc is not None:
            looped, step = s0, jax.jit(mg.update, compiler_options=FAST_COMPILE)
            for k in keys:
                looped, _ = step(k, looped, batch)
            chex.assert_trees_all_close(scanned, looped, rtol=1e-4, atol=1e-6)
        assert int(scanned.step) == 3 and m["meta_loss"].shape == (3,)
        assert np.all(np.isfinite(np.asarray(m["meta_loss"])))
        assert not np.allclose(np.asarray(scanned.theta), param.theta0)


def test_metagrad_skips_non_finite_steps():
    task = make("pca")
    prog, fspace = compile_formula("1000*y*x", Space(post_vars=("y",), pre_vars=("x",), ops=("mul",),
                                                     syn=("1", "w")))
    param = Parametrization.from_program(prog, fspace)
    loop = InnerLoop(fspace, task, InnerConfig(network=default_network("pca"), steps=200))
    batch = ((jax.tree.map(jnp.asarray, task_batch(task, [0], "search", 200)), instance_keys([0], "search")),)
    mg = MetaGrad(param, (loop,), lambda m: -m["pc1_alignment"], lr=0.1)
    s, m = jax.jit(mg.update, compiler_options=FAST_COMPILE)(jax.random.key(0), mg.init(param.theta0), batch)
    assert bool(m["skipped"]) and int(s.skipped) == 1
    np.testing.assert_array_equal(np.asarray(s.theta), param.theta0)     # the step was skipped


def test_metagrad_on_a_known_rule_gets_finite_gradients_where_unused_ops_are_undefined():
    """A structure compiled into the full rate space computes all 21 ops in each instruction and selects one; the
    unselected sqrt/log/div/recip at a negative input passed 0 * NaN back, so metagrad skipped every step of Oja's
    rule on PCA (found by a config audit). The interpreter's ops now pass 0 where their cotangent is 0, so the full
    space takes the same step as the space of the ops the structure uses (structure_parametrization)."""
    from plasticity_search.rules.known import RULES
    from plasticity_search.search.coeffs import structure_parametrization

    task = make("pca")
    batch = ((jax.tree.map(jnp.asarray, task_batch(task, [0, 1], "search", 30)), instance_keys([0, 1], "search")),)
    full = Parametrization.from_program(*RULES["oja"].compile())
    used = structure_parametrization("oja")
    assert used.space.ops == ("square",) and len(full.space.ops) > 10
    assert {"sqrt", "log", "div"} <= set(full.space.ops)
    skipped, thetas = [], []
    for param in (full, used):
        loop = InnerLoop(param.space, task, InnerConfig(network=default_network("pca"), steps=30))
        mg = MetaGrad(param, (loop,), lambda m: -m["pc1_alignment"], lr=0.05)
        s, m = jax.jit(mg.update, compiler_options=FAST_COMPILE)(jax.random.key(0), mg.init(param.theta0), batch)
        skipped.append(bool(m["skipped"]))
        thetas.append(np.asarray(s.theta))
    assert skipped == [False, False]
    assert not np.allclose(thetas[1], used.theta0)      # the step moved the constants
    np.testing.assert_allclose(thetas[0], thetas[1], rtol=1e-5, atol=1e-6)   # the same step in both spaces


@pytest.mark.slow      # 25 s; the meta-gradient step's parity across spaces (above) stays in the default run
def test_interpreter_gradient_is_the_selected_ops_gradient():
    """Every op of the menu is computed and one selected, and dead registers are computed too. Their zero
    cotangent times an op's undefined derivative (sqrt, log, div at a negative or zero input) used to make the
    gradient to the constants NaN (hybrid.refine: metagrad skipped every step in such a space). The gradient is
    now that of the same programs in the space of the ops they use; the forward values are unchanged."""
    from plasticity_search.rules import random_population
    from plasticity_search.rules.program import unstack

    from plasticity_search.rules.ops import OPS

    wide = Space(post_vars=("y", "e"), pre_vars=("x",), ops=tuple(o.name for o in OPS), syn=("1", "w"), n_post=2,
                 n_pre=1, n_terms=2)      # every op (those with a bounded derivative run unwrapped)
    vals = {"y": jnp.array([-1.0, 0.5, 2.0, 0.0]), "e": jnp.array([0.3, -0.2, 0.0, -1.5]),
            "x": jnp.array([-0.5, 1.0, 0.0])}
    w = jnp.full((4, 3), 0.1)

    def loss(theta, prog, space):
        coef, post_c = theta
        dw, _ = space.apply(prog._replace(term_coef=coef, post_c=post_c), vals, w)
        return jnp.sum(jnp.tanh(dw) ** 2)

    grad = jax.jit(jax.value_and_grad(loss), static_argnums=2)
    n_checked = 0
    for prog in unstack(random_population(jax.random.key(0), wide, 96)):
        prog = jax.tree.map(np.asarray, prog)
        theta = (jnp.asarray(prog.term_coef), jnp.asarray(prog.post_c))
        v, g = grad(theta, prog, wide)
        if not np.isfinite(float(v)):
            continue
        # the same program over the ops its instructions use (only the selected op of each instruction is computed)
        used = sorted(set(np.asarray(prog.post_op).tolist()) | set(np.asarray(prog.pre_op).tolist()))
        remap = np.zeros(len(wide.ops), np.int32)
        remap[used] = np.arange(len(used))
        narrow = Space(post_vars=wide.post_vars, pre_vars=wide.pre_vars, ops=tuple(wide.ops[i] for i in used),
                       syn=wide.syn, n_post=2, n_pre=1, n_terms=2)
        nprog = prog._replace(post_op=remap[prog.post_op], pre_op=remap[prog.pre_op])
        v2, g2 = grad(theta, nprog, narrow)
        assert float(v) == float(v2)
        if not all(np.all(np.isfinite(np.asarray(x))) for x in g2):
            continue          # the selected ops' own gradient is undefined (e.g. sqrt at 0): nothing to compare
        for a, b in zip(g, g2):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
        n_checked += 1
    assert n_checked >= 30
