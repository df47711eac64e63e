"""``search.fixed``: a part of every candidate held fixed (Jordan et al. 2021 search f(R, E) over a given
eligibility E). Random programs, children, restarts, the constant refinement and snapping keep it; the search
chooses the rest; bad fixed parts are one-line config errors."""
import os

import jax
import numpy as np
import pytest
import sympy as sp

from plasticity_search.rules.formula import parse_formula, symbol, to_sympy
from plasticity_search.rules.program import Program, index
from plasticity_search.search import Parametrization, RegularizedEvolution, load_config, run_search
from plasticity_search.search.canonical import snap_variants
from plasticity_search.search.config import ConfigError
from plasticity_search.search.fixed import fixed_part
from plasticity_search.search.regevo import jitted
from plasticity_search.search.state import np_prog

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
THEIR_E = "delig = sy*tx - 0.01*v*v*tx"


def _reward_space():
    return load_config(os.path.join(ROOT, "search_spaces", "jordan_reward.yaml"),
                       {"space.n_terms": 4, "space.weight_terms": 2}).rule_space()


def test_children_of_a_three_factor_search_keep_the_given_eligibility():
    """Every random program and every child carries E in its eligibility slots, as the same formula; the weight
    slots differ between programs (that is what the search chooses)."""
    space = _reward_space()
    part = fixed_part(THEIR_E, space)
    assert (part.n_terms, part.n_post, part.n_pre) == (2, 1, 0)
    strat = RegularizedEvolution(space, population_size=16, tournament_size=2, num_children=16, fixed=part)
    pop = jitted(strat, "initialize")(jax.random.key(0))
    state = strat.init(pop, np.arange(16, dtype=np.float32))
    kids = jitted(strat, "ask")(jax.random.key(1), state)
    _, want = parse_formula(THEIR_E, space)
    dws = set()
    for progs in (pop, kids):
        progs = np_prog(progs)
        for i in range(16):
            p = index(progs, i)
            assert part.holds(p)
            dw, de = to_sympy(p, space)
            assert max(abs(float(c)) for c in sp.Poly(sp.expand(de - want)).coeffs()) < 1e-6, de   # float32
            dws.add(str(dw))
    assert len(dws) > 4


def test_refinement_and_snapping_leave_the_fixed_constants_alone():
    space = _reward_space()
    part = fixed_part(THEIR_E, space)
    strat = RegularizedEvolution(space, population_size=16, tournament_size=2, num_children=16, fixed=part)
    pop = jitted(strat, "initialize")(jax.random.key(3))          # the first test's compile
    prog = Program(*[np.array(x) for x in index(pop, 0)])
    prog.term_on[2:] = True                 # both weight slots live: their constants are the refinement's
    prog.term_coef[2:] = (0.37, -0.2)
    assert part.holds(prog)
    free = part.free(prog)
    assert not free[0][:2].any() and free[0][2:].all() and not free[1][0]
    param = Parametrization.from_program(prog, space, free=free)
    assert all(int(n[4:]) >= 2 for n in param.names if n.startswith("term")), param.names
    assert not any(n == "post0" for n in param.names)
    for v in snap_variants(prog, space, free):
        np.testing.assert_array_equal(v.term_coef[:2], prog.term_coef[:2])
        assert part.holds(v)
    moved = prog._replace(term_coef=prog.term_coef.copy())
    moved.term_coef[1] = 0.5
    assert not part.holds(moved) and all(m.all() for m in part.free(moved))


@pytest.mark.parametrize("fixed, msg", [
    ("dw = r*elig", "its weight slots are searched"),
    ("delig = sy*tx + sx*ty + v*tx", "needs 3 terms, the space has 2 eligibility slots"),
    ("delig = r*tx", "typed slots"),
    ("delig = sy*tx + nope", "nope"),
])
def test_bad_fixed_parts_are_one_line_config_errors(fixed, msg):
    with pytest.raises(ConfigError) as e:
        load_config(os.path.join(ROOT, "search_spaces", "jordan_reward.yaml"), {"search.fixed": fixed})
    assert str(e.value).startswith("search.fixed: ") and msg in str(e.value) and "\n" not in str(e.value)


def test_fixed_part_needs_evolution():
    with pytest.raises(ConfigError, match="search.fixed: .*regularized_evolution or hybrid"):
        load_config(os.path.join(ROOT, "search_spaces", "jordan_reward.yaml"),
                    {"search.fixed": THEIR_E, "search.strategy": "evosax", "coefficients.structure": "r_stdp"})


def test_a_search_around_a_fixed_hebbian_term_keeps_it_everywhere():
    """Rate search (tests/test_search.py's tiny PCA config) with Hebb's y*x fixed, hybrid refinement: the whole
    population carries it after the generations and refinements, and every hall-of-fame rule contains it."""
    pca = {"task": "pca", "seeds": 2, "steps": 50}
    tiny = {"name": "tiny", "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"],
                                      "syn": ["1", "w"], "n_post": 2, "n_pre": 1, "n_terms": 3},
            "search": {"population": 8, "tournament": 2, "children": 4},
            "tasks": {"search": [pca], "select": [pca], "final": [pca]},
            "fitness": {"penalties": [{"metric": "weight_norm", "target": 1.0, "weight": 1.0}]}}
    cfg = load_config(tiny, {"search.fixed": "y*x", "search.strategy": "hybrid", "hybrid.every": 2, "hybrid.top_k": 1,
                  "hybrid.steps": 2, "hybrid.population": 4, "budget.generations": 3})
    hof, state = run_search(cfg, return_state=True)
    space = cfg.rule_space()
    part = fixed_part("y*x", space)
    pop = np_prog(state.strategy.population)
    assert all(part.holds(index(pop, i)) for i in range(pop.term_on.shape[0]))
    for arch in (state.archive, state.select_archive):          # what the hall of fame is made from
        kept = [(c, j) for c in range(arch.levels) for j in range(arch.per) if np.isfinite(arch.fitness[c, j])
                and arch.fitness[c, j] > -1e30]
        assert kept and all(part.holds(arch.program(c, j)) for c, j in kept)
    x, y, w = symbol("x"), symbol("y"), symbol("w")
    assert len(hof) >= 1
    for e in hof.entries:               # snapped and recompiled for display: y*x is still a term of the update
        rule = hof.rule(e.rank)
        dw = sp.expand(to_sympy(rule.program, rule.space, digits=9))
        assert sp.Poly(dw, x, y, w).coeff_monomial(x * y) != 0, dw
