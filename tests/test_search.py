"""The search engine end to end on tiny configs: whole searches in seconds, exact state round trips for every
strategy, the FEC cache, NaN -> worst, hurdles, and the hall of fame (Pareto, best rule, JSON, sympy/LaTeX/JAX)."""
import io
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from plasticity_search.search import (HallOfFame, Search, load_config, run_search, state_from_tree,
                                      state_to_tree)
from plasticity_search.search.fitness import WORST, WORST_JSON, FitnessFn
from plasticity_search.search.hall_of_fame import choose_best, pareto_front

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

PCA = {"task": "pca", "seeds": 2, "steps": 100}
TINY = {
    "name": "tiny",
    "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 2, "n_pre": 1, "n_terms": 3},
    "search": {"population": 8, "tournament": 2, "children": 4},
    "tasks": {"search": [PCA], "select": [PCA], "final": [PCA]},
    "fitness": {"penalties": [{"metric": "weight_norm", "target": 1.0, "weight": 1.0}]},
    "budget": {"generations": 10},
}
STRATEGY_OVERRIDES = {
    "regularized_evolution": {},
    "hybrid": {"search.strategy": "hybrid", "hybrid.every": 2, "hybrid.top_k": 1, "hybrid.steps": 2,
               "hybrid.population": 4},
    "hybrid_seeds": {"search.strategy": "hybrid", "hybrid.every": 2, "hybrid.top_k": 1, "hybrid.steps": 2,
                     "hybrid.population": 4, "hybrid.seeds": 5, "hybrid.final_steps": 3},
    "hybrid_metagrad": {"search.strategy": "hybrid", "hybrid.every": 2, "hybrid.top_k": 1, "hybrid.steps": 2,
                        "hybrid.refine": "metagrad", "coefficients.lr": 0.05},
    "evosax": {"search.strategy": "evosax", "search.population": 4, "coefficients.structure": "y*x - 0.5*y*y*w"},
    "metagrad": {"search.strategy": "metagrad", "coefficients.structure": "y*x - 0.5*y*y*w",
                 "coefficients.lr": 0.05},
}


def tiny(**over):
    return load_config(TINY, over)


def _tree_equal(a, b):
    (aa, am), (ba, bm) = state_to_tree(a), state_to_tree(b)
    assert am == bm
    assert set(aa) == set(ba)
    for k in aa:
        if k.endswith("elapsed_s"):
            continue
        np.testing.assert_array_equal(aa[k], ba[k], err_msg=k)
        assert aa[k].dtype == ba[k].dtype, k


def _through_files(state):
    """state -> npz bytes + JSON text -> state, as the runs layer stores it."""
    arrays, meta = state_to_tree(state)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        arrays2 = {k: z[k] for k in z.files}
    return state_from_tree(arrays2, json.loads(json.dumps(meta, allow_nan=False)))


# ---------------------------------------------------------------------------------------------------------------
def test_whole_small_search_end_to_end():
    seen = []
    hof, state = run_search(tiny(), progress_fn=seen.append, return_state=True)
    assert [m["generation"] for m in seen] == list(range(1, 11))
    for m in seen:
        assert {"generation", "best_fitness", "median_fitness", "fec_hit_rate", "candidates_per_s", "n_evaluated",
                "wall_time_s"} <= set(m)
        json.dumps(m, allow_nan=False)
    assert state.counters["n_hits"] > 0 and seen[-1]["fec_hit_rate"] > 0       # the FEC cache is used
    assert seen[-1]["n_evaluated"] < state.counters["n_candidates"]
    assert len(hof) >= 1 and hof.best == 0 and hof.entries[0].rank == 0
    for e in hof.entries:
        assert set(e.metrics) == {"search", "select", "final"}
        assert {"fitness", "pc1_alignment", "weight_norm", "finite"} <= set(e.metrics["final"])
    # the hall of fame is a Pareto set of (select fitness, complexity)
    fits = [e.fitness for e in hof.entries]
    cplx = [e.complexity for e in hof.entries]
    for i in range(len(fits)):
        for j in range(len(fits)):
            assert not (fits[j] >= fits[i] and cplx[j] <= cplx[i] and (fits[j], cplx[j]) != (fits[i], cplx[i]))
    assert "*" in hof.table().splitlines()[1]


@pytest.mark.parametrize("strategy", list(STRATEGY_OVERRIDES))
def test_state_round_trip_is_exact(strategy):
    """step 2, save (npz + JSON), restore, step 2 more == step 4 straight, bit for bit."""
    over = dict(STRATEGY_OVERRIDES[strategy], **{"budget.generations": 4})
    search = Search(tiny(**over))
    s0 = search.init()
    straight, ms = s0, []
    for _ in range(4):
        straight, m = search.step(straight)
        ms.append(m)
    half = s0
    for _ in range(2):
        half, _ = search.step(half)
    restored = _through_files(half)
    _tree_equal(restored, half)
    for g in range(2):
        restored, m = search.step(restored)
        skip = {"wall_time_s", "candidates_per_s"}
        assert {k: v for k, v in m.items() if k not in skip} == {k: v for k, v in ms[2 + g].items() if k not in skip}
    _tree_equal(restored, straight)
    assert search.done(restored)
    if strategy.startswith("hybrid"):
        assert "n_refined" in restored.counters          # refinement ran at generations 2 and 4
        own = search.evaluators.refine_split(4)
        assert ("n_polished" in ms[-1]) == ("hybrid.final_steps" in over)   # the final refinement, at the end
        assert all("n_polished" not in m for m in ms[:-1])
        if "hybrid.seeds" in over:                       # refinement judged on its own 5 search seeds per task
            assert own is not None and [inst.keys.shape[0] for _, _, inst in own.items] == [5]
        else:
            assert own is None
    hof = search.finalize(restored)
    assert len(hof) >= 1
    assert HallOfFame.from_json(json.loads(json.dumps(hof.to_json(), allow_nan=False))).to_json() == hof.to_json()


def test_step_does_not_mutate_its_input():
    search = Search(tiny())
    s0 = search.init()
    before = state_to_tree(s0)
    search.step(s0)
    after = state_to_tree(s0)
    assert before[1] == after[1]
    for k in before[0]:
        np.testing.assert_array_equal(before[0][k], after[0][k])


def test_nan_fitness_is_worst():
    f = FitnessFn("pc1_alignment", 1.0, (("weight_norm", 1.0, 1.0),))
    m = {"pc1_alignment": np.array([[0.9, 0.8], [np.nan, 0.9], [0.5, 0.5]]),
         "weight_norm": np.array([[1.0, 1.0], [1.0, np.inf], [1.0, 1.0]])}
    agg = f.aggregate([f.per_instance(m)])
    assert agg[1] == WORST and np.isfinite(agg[[0, 2]]).all() and agg[0] > agg[2]
    # an exploding seed rule in a real search: -inf internally, a finite number in JSON output
    search = Search(tiny(**{"search.seed_rules": ["1000*y*x"], "budget.generations": 1}))
    state = search.init()
    assert float(state.strategy.fitness[-1]) == -np.inf         # a seed rule: the youngest member
    _, m = search.step(state)
    assert all(np.isfinite(v) for v in m.values() if isinstance(v, float))
    assert search.hall_of_fame(state).to_json()["entries"]


def test_seed_rules_are_the_youngest_members_and_outlive_the_first_generation():
    """A seed rule took the first slot, whose birth is the oldest: with aging the first generation's children
    replaced it (a search seeded with pair STDP lost it after one generation, BENCHMARKS.md "A spike-based
    detection metric"). Seed rules now take the last slots; with population 8 and 4 children they survive one
    generation and age out in the second, and with aging off a seed that is the best member stays."""
    from plasticity_search.rules.program import index

    def holds(state, prog):
        pop = state.strategy.population
        return any(all(np.array_equal(np.asarray(a)[i], np.asarray(b)) for a, b in zip(pop, prog))
                   for i in range(np.shape(pop.term_on)[0]))

    for aging, survives in ((True, [True, False]), (False, [True, True])):
        search = Search(tiny(**{"search.seed_rules": ["y*(x - y*w)"], "search.aging": aging}))
        state = search.init()
        seed = index(state.strategy.population, 7)
        assert int(np.argmax(np.asarray(state.strategy.birth))) == 7
        assert float(state.strategy.fitness[7]) == float(np.max(state.strategy.fitness))     # Oja's rule, on pca
        seen = []
        for _ in range(2):
            state, _ = search.step(state)
            seen.append(holds(state, seed))
        assert seen == survives, (aging, seen)


def test_hurdle_stops_bad_candidates_early():
    cfg = tiny(**{"search.hurdle": {"steps": 20, "seeds": 1, "threshold": 0.5}, "budget.generations": 3})
    hof, state = run_search(cfg, return_state=True)
    assert state.counters.get("n_hurdle_failed", 0) > 0
    assert len(hof) >= 1


def test_restart_after_stagnation():
    _, state = run_search(tiny(**{"search.restart_after": 1, "budget.generations": 6}), return_state=True)
    assert state.counters.get("n_restarts", 0) >= 1


# ---------------------------------------------------------------------------------------------------------------
def test_pareto_and_choice_rules():
    fit = [0.5, 0.9, 0.95, 0.96, 0.2, 0.96]
    cpl = [1, 3, 4, 6, 2, 7]
    front = pareto_front(fit, cpl)
    assert front == [0, 1, 2, 3]
    assert choose_best([fit[i] for i in front], [cpl[i] for i in front], "eps", 0.02) == 2
    assert choose_best([fit[i] for i in front], [cpl[i] for i in front], "fitness") == 3
    assert pareto_front([np.nan, 0.1], [1, 2]) == [1]


@pytest.fixture(scope="module")
def hof_oja():
    """A hall of fame whose entries include Oja's rule (seeded) after a few generations."""
    cfg = tiny(**{"search.seed_rules": ["y*(x - y*w)", "-0.5*y*x"], "budget.generations": 3,
                  "tasks.search": [{"task": "pca", "seeds": 2, "steps": 300}]})
    return run_search(cfg)


def test_hall_of_fame_accessors_are_consistent(hof_oja):
    hof = hof_oja
    rng = np.random.default_rng(0)
    vals = {"y": rng.normal(size=4).astype(np.float32), "x": rng.normal(size=3).astype(np.float32)}
    w = rng.normal(size=(4, 3)).astype(np.float32)
    for i, e in enumerate(hof.entries):
        expr = hof.sympy(i)
        assert hof.latex(i) == e.latex and hof.formula(i) == e.formula
        assert sp.sympify(e.formula, locals={"w": sp.Symbol("w", real=True)}) is not None
        fn, params = hof.jax(i)
        dw = np.asarray(fn(params, w, **vals))
        syms = {s.name: s for s in expr.free_symbols}
        f = sp.lambdify([syms.get(n, sp.Symbol(n)) for n in ("y", "x", "w")], expr, "numpy")
        ref = f(vals["y"][:, None], vals["x"][None, :], w) * np.ones_like(w)
        np.testing.assert_allclose(dw, ref, rtol=2e-3, atol=1e-4)
        # the parameter vector is live: scaling it scales a linear rule's update
        if len(params):
            import jax
            g = jax.grad(lambda p: jnp.sum(fn(p, w, **vals)))(params)
            assert np.all(np.isfinite(np.asarray(g)))
    assert hof.formula(0) == "y*(-w*y + x)" and hof.entries[0].complexity == 4
    d = json.loads(json.dumps(hof.to_json(), allow_nan=False))
    back = HallOfFame.from_json(d)
    assert back.to_json() == hof.to_json()
    assert back.sympy(0) == hof.sympy(0) and back.latex(0) == hof.latex(0)
    assert "def rule" in back.export(0, "numpy")
    r = back.rule(0)
    assert r.model == "rate" and r.defaults["lr"] == 0.005


def test_hall_of_fame_best_is_oja_when_seeded(hof_oja):
    from plasticity_search.search.equivalence import equivalent_up_to_positive_factor
    prog, space = hof_oja.entries[0].rule_program()
    assert equivalent_up_to_positive_factor(prog, space, "oja"), hof_oja.table()
    assert not equivalent_up_to_positive_factor(prog, space, "hebb")


def test_worst_fitness_in_json():
    h = HallOfFame.from_json({"schema": "plasticity-search/hall-of-fame/v1", "best": 0, "entries": []})
    assert len(h) == 0
    from plasticity_search.search.fitness import json_float
    assert json_float(float("nan")) == WORST_JSON == json_float(-np.inf)


# ---- spiking searches -------------------------------------------------------------------------------------------
def test_spiking_teacher_search_finds_the_spiking_delta_rule():
    """Known answer (Jordan et al. 2021's error-driven task): search_spaces/spiking_teacher.yaml, from random
    programs, chooses dw = -c * e * (pre trace), the trace read before (tx) or after (tx + sx) this step's spike."""
    import sympy

    from plasticity_search.rules.formula import to_sympy

    cfg = load_config(os.path.join(ROOT, "search_spaces", "spiking_teacher.yaml"))
    hof = run_search(cfg)
    best = hof.entries[hof.best]
    rule = hof.rule(hof.best)
    assert rule.model == "spiking"
    expr = sympy.expand(to_sympy(rule.program, rule.space))
    sym = {str(v): v for v in expr.free_symbols}          # the variables' own symbols (with their assumptions)
    assert set(sym) <= {"e", "tx", "sx"} and {"e", "tx"} <= set(sym), best.formula
    e, tx = sym["e"], sym["tx"]
    assert sympy.simplify(sympy.diff(expr, e, 2)) == 0, best.formula            # linear in the error
    c = expr.coeff(e).coeff(tx)
    assert c.is_number and float(c) < 0, best.formula                          # the right sign
    # and it learns: the student's rmse on the final tasks falls from ~1.3 (initial weights) to < 0.1
    final = best.metrics["final"]
    assert final["neg_rmse"] > -0.1 and final["neg_rmse_before"] < -1.0, final


def test_spiking_search_sharded_matches_unsharded():
    """The spiking evaluator under the population mesh: same fitness on 1 device as without a mesh."""
    cfg = load_config(os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml"),
                      {"budget.generations": 1, "search.population": 6, "search.children": 3,
                       "tasks.search": [{"task": "stdp_pattern", "seeds": 1, "steps": 20}],
                       "tasks.select": [], "tasks.final": []})
    a = Search(cfg)
    b = Search(load_config(cfg.to_dict(), {"budget.devices": 1}))
    sa, sb = a.init(), b.init()
    np.testing.assert_allclose(np.asarray(sa.strategy.fitness), np.asarray(sb.strategy.fitness), rtol=1e-6)


def test_spiking_coefficient_search_and_hybrid_run():
    """CMA-ES over a known spiking rule's constants, and evolution with evosax refinement, on a spiking task."""
    base = {"tasks.search": [{"task": "stdp_pattern", "seeds": 1, "steps": 20}], "tasks.select": [],
            "tasks.final": [], "budget.generations": 2}
    path = os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml")
    es = run_search(load_config(path, {**base, "search.strategy": "evosax", "search.population": 4,
                                       "coefficients.structure": "stdp_add"}))
    hyb = run_search(load_config(path, {**base, "search.strategy": "hybrid", "search.population": 6,
                                        "search.children": 3, "hybrid.every": 1, "hybrid.steps": 1,
                                        "hybrid.population": 4, "hybrid.top_k": 1}))
    for hof in (es, hyb):
        assert hof.rule(hof.best).model == "spiking" and np.isfinite(hof.entries[hof.best].fitness)
    assert hyb.info["n_evaluated"] > 0
    assert set(map(str, sp.sympify(es.entries[es.best].formula).free_symbols)) <= {"sx", "sy", "tx", "ty"}


def test_archive_replace_puts_a_refined_program_in_its_originals_slot():
    """A final refinement's result takes its original's place whatever the archive's few-instance scores say."""
    from plasticity_search.rules.fec import fec_hashes
    from plasticity_search.rules.formula import compile_formula
    from plasticity_search.rules.program import complexities, stack
    from plasticity_search.search.hall_of_fame import Archive

    space = tiny().rule_space()
    progs = stack([compile_formula(f, space, fit=False)[0] for f in ("y*x - 0.5*y*y*w", "y*x - 0.4*y*y*w", "2*y*x")])
    hashes, cplx = fec_hashes(progs, space), complexities(progs, space)
    arch = Archive(space, 1)
    arch.add(take_first(progs, 1), np.array([0.9]), cplx[:1], hashes[:1])
    assert arch.replace(hashes[0], progs, 1, 0.5, hashes[1])              # lower score, still takes the slot
    c = int(cplx[0])
    assert arch.hashes[c] == [hashes[1]] and arch.fitness[c, 0] == 0.5
    np.testing.assert_array_equal(arch.program(c, 0).term_coef, np.asarray(progs.term_coef)[1])
    assert not arch.replace(hashes[2], progs, 2, 1.0, hashes[2])          # not stored: nothing changes
    assert arch.hashes[c] == [hashes[1]]


def take_first(progs, n):
    from plasticity_search.rules.program import Program
    return Program(*[np.asarray(x)[:n] for x in progs])


def test_expanded_program_has_a_coefficient_per_monomial_and_the_same_update():
    """What the final refinement tunes: k*e*(e_pre - x) as a*e*e_pre - b*e*x (two free constants, same function)."""
    from plasticity_search.rules.fec import probe_outputs
    from plasticity_search.rules.formula import compile_formula
    from plasticity_search.rules.program import stack
    from plasticity_search.search.canonical import expanded
    from plasticity_search.search.coeffs import Parametrization

    cfg = load_config(os.path.join(ROOT, "search_spaces", "fewshot_discovery.yaml"))
    space = cfg.rule_space()
    prog, _ = compile_formula("3*e*(e_pre - x) + 0.8*e", space, fit=False)
    assert int(np.asarray(prog.pre_op).size) and Parametrization.from_program(prog, space).n == 2
    wide = expanded(prog, space)
    assert Parametrization.from_program(wide, space).n == 3
    a, b = probe_outputs(stack([prog, wide]), space)[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert Parametrization.from_program(expanded(wide, space), space).n == 3      # already expanded: unchanged


def test_grown_variants_add_each_missing_monomial_with_both_signs():
    """The structural step of the final refinement: one more monomial +-scale*P*Q per missing (P, Q)."""
    from plasticity_search.rules.formula import compile_formula, symbol, to_sympy_raw
    from plasticity_search.search.canonical import grown

    space = load_config(os.path.join(ROOT, "search_spaces", "fewshot_discovery.yaml")).rule_space()
    prog, _ = compile_formula("6*e*e_pre - 1.5*e*x", space, fit=False)
    base = sp.expand(to_sympy_raw(prog, space, digits=9)[0])
    added = [sp.nsimplify(sp.expand(to_sympy_raw(v, space, digits=9)[0] - base) / sp.Rational(1, 2), rational=True)
             for v in grown(prog, space, 0.5)]
    e, x, e_pre, y = (symbol(n) for n in ("e", "x", "e_pre", "y"))
    missing = [sp.Integer(1), x, e_pre, y, x * y, e_pre * y, e]        # (1, y, e) x (1, x, e_pre) less e*x, e*e_pre
    assert sorted(map(str, added)) == sorted(str(s * m) for m in missing for s in (1, -1))


def test_swapped_variants_replace_one_monomial_when_the_space_is_full():
    """At the space's term capacity the structural step swaps: each present monomial dropped, each missing one
    added with both signs; a program with room gets no swaps by default (it grows)."""
    from plasticity_search.rules.formula import compile_formula, symbol, to_sympy_raw
    from plasticity_search.search.canonical import grown

    space = load_config(os.path.join(ROOT, "search_spaces", "fewshot_discovery.yaml")).rule_space()
    assert space.n_terms == 3
    prog, _ = compile_formula("6*e*e_pre - 1.5*e*x + 2*e_pre", space, fit=False)
    assert grown(prog, space, 0.5) == []                                # no room for a fourth monomial
    e, x, e_pre, y = (symbol(n) for n in ("e", "x", "e_pre", "y"))
    present = {e * e_pre: 6, e * x: -1.5, e_pre: 2}
    got = sorted(str(sp.nsimplify(sp.expand(to_sympy_raw(v, space, digits=9)[0]), rational=True))
                 for v in grown(prog, space, 0.5, swap=True))
    missing = [sp.Integer(1), x, y, x * y, e_pre * y, e]
    want = sorted(str(sp.nsimplify(sp.expand(sum(c * m for m, c in present.items() if m != drop) + s * m_new / 2),
                                   rational=True))
                  for drop in present for m_new in missing for s in (1, -1))
    assert got == want


def test_archive_add_keeps_exactly_what_offering_every_candidate_in_turn_keeps():
    """Archive.add skips candidates at or below the worst slot of their level before its loop: the archive ends
    exactly as offering every candidate in turn (best first) leaves it, over random batches with repeated programs,
    ties, non-finite fitness and levels beyond the last."""
    import jax
    from plasticity_search.rules import random_population
    from plasticity_search.rules.program import Program
    from plasticity_search.search.hall_of_fame import Archive

    def offer_all(arch, programs, fitness, complexity, hashes):       # the loop without the filter
        for i in np.argsort(-np.where(np.isfinite(fitness), fitness, -np.inf), kind="stable"):
            f = fitness[i]
            if not np.isfinite(f):
                continue
            c = int(min(complexity[i], arch.levels - 1))
            if hashes[i] in arch.hashes[c]:
                j = arch.hashes[c].index(hashes[i])
                if f > arch.fitness[c, j]:
                    arch._put(c, j, programs, i, f, hashes[i])
                continue
            j = int(np.argmin(arch.fitness[c]))
            if f > arch.fitness[c, j]:
                arch._put(c, j, programs, i, f, hashes[i])

    space = tiny().rule_space()
    rng = np.random.default_rng(0)
    for per in (1, 3):
        a, b = Archive(space, per), Archive(space, per)
        for gen in range(6):
            n = 64
            progs = Program(*[np.asarray(x) for x in random_population(jax.random.key(gen), space, n, 2)])
            fit = np.round(rng.normal(size=n), 1)                      # ties
            fit[rng.integers(0, n, 5)] = rng.choice([np.nan, -np.inf, np.inf], 5)
            cplx = rng.integers(0, a.levels + 2, n)                    # some beyond the last level
            hashes = [f"h{k}" for k in rng.integers(0, 40, n)]         # repeated programs
            a.add(progs, fit, cplx, hashes)
            offer_all(b, progs, fit, cplx, hashes)
            assert a.hashes == b.hashes
            np.testing.assert_array_equal(a.fitness, b.fitness)
            for x, y in zip(a.programs, b.programs):
                np.testing.assert_array_equal(x, y)


def test_hybrid_metagrad_refinement_counts_its_steps_and_takes_them_in_a_space_with_sqrt_log_div():
    """hybrid.refine: metagrad runs every constant of the space through the interpreter, which computes every op;
    an unselected sqrt/log/div at a negative input made every meta-gradient NaN, so each step was skipped (24 of
    24 in an audit run). The metrics count the refinement's steps and skipped steps; here most are taken."""
    seen = []
    cfg = tiny(**STRATEGY_OVERRIDES["hybrid_metagrad"],
               **{"space.ops": ["add", "sub", "mul", "sqrt", "log", "div"], "budget.generations": 4})
    run_search(cfg, progress_fn=seen.append)
    refined = [m for m in seen if "metagrad_steps" in m]
    assert [m["generation"] for m in refined] == [2, 4]
    last = refined[-1]
    assert last["metagrad_steps"] == 2 * 2       # 2 refinements of top_k 1 x hybrid.steps 2
    assert last["metagrad_skipped"] < last["metagrad_steps"] / 2
