"""Spiking discovery (issue 15, sections 3 and 4): the typed three-factor space and a short search per task family
(spiking_reward from random three-factor programs, spiking_digits with a two-hidden-layer network and random
feedback). The full searches and their numbers are in BENCHMARKS.md ("Spiking discovery (issue 15)")."""
from __future__ import annotations

import os

import jax
import numpy as np
import pytest
import sympy

from plasticity_search.rules.formula import to_sympy, to_text
from plasticity_search.rules.mutation import mutate, random_population
from plasticity_search.rules.program import TARGET_ELIG, TARGET_W, RuleError, Space, unstack
from plasticity_search.search import run_search
from plasticity_search.search.config import ConfigError, load_config
from plasticity_search.tasks import TaskError, make

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREE = Space(post_vars=("sy", "ty"), pre_vars=("sx", "tx"), global_vars=("r", "rbar"),
              ops=("add", "sub", "mul", "cmul"), syn=("1", "w", "elig"), elig=True, n_post=2, n_pre=1, n_terms=3,
              structure="three_factor")


def _typed(pop, space: Space):
    """Every program of ``pop`` is pre x post -> elig -> M(globals) * elig -> w (the three_factor layout; the last
    ``space.weight_terms`` slots write w, the last one always on)."""
    P = jax.tree.map(np.asarray, pop)
    n_pv, n_qv, n_g = len(space.post_vars), len(space.pre_vars), len(space.global_vars)
    i_elig = space.syn.index("elig")
    J = space.weight_terms
    assert P.term_on[:, -1].all() and (P.term_tgt[:, -J:] == TARGET_W).all()
    assert (P.term_s[:, -J:] == i_elig).all() and (P.term_q[:, -J:] == 0).all()
    assert (P.term_p[:, -J:] >= 1 + n_pv).all()                                  # M: a global or an instruction
    assert (P.term_tgt[:, :-J] == TARGET_ELIG).all() and (P.term_s[:, :-J] != i_elig).all()
    assert P.term_on[:, :-J].any(axis=1).all()                                   # at least one eligibility term
    p, q = P.term_p[:, :-J], P.term_q[:, :-J]
    assert not ((p >= 1 + n_pv) & (p < 1 + n_pv + n_g)).any()                    # elig terms read no global
    assert not ((q >= 1 + n_qv) & (q < 1 + n_qv + n_g)).any()


def _three_factor_formula(prog, space, strict: bool = True) -> bool:
    """The rule writes the eligibility trace, and its dw is a multiple of the trace (``strict=False``: a dElig that
    simplifies to 0, e.g. two eligibility terms that cancel, is allowed: such a rule never changes a weight)."""
    out = to_sympy(prog, space)
    dw, de = out if isinstance(out, tuple) else (out, 0)
    sym = {s.name: s for s in sympy.sympify(dw).free_symbols}
    return (de != 0 or not strict) and "elig" in sym and sympy.expand(dw).subs(sym["elig"], 0) == 0


def _typed_through_mutations(space: Space, init_terms: int, rounds: int):
    """64 random programs of ``space`` mutated ``rounds`` times, every generation checked by :func:`_typed`."""
    pop = random_population(jax.random.key(0), space, 64, init_terms)
    _typed(pop, space)
    step = jax.jit(jax.vmap(lambda k, p: mutate(k, p, space)))
    for i in range(rounds):
        pop = step(jax.random.split(jax.random.key(i + 1), 64), pop)
        _typed(pop, space)
    return pop


def test_three_factor_space_types_random_programs_and_every_mutation():
    pop = _typed_through_mutations(THREE, 2, 4)
    for prog in unstack(pop)[:16]:
        assert _three_factor_formula(prog, THREE), to_text(prog, THREE)
    # a free space is left alone
    free = Space(post_vars=("sy",), pre_vars=("sx",), global_vars=("r",), syn=("1", "elig"), n_terms=2)
    prog = unstack(random_population(jax.random.key(3), free, 2))[0]
    assert all(np.array_equal(a, b) for a, b in zip(free.constrain(prog), prog))


def test_three_factor_weight_terms_make_the_third_factor_a_sum_of_reads():
    """weight_terms = 2: the last two slots write dw = (c1 M1 + c2 M2) * elig, so that r - rbar (the reward
    prediction error) is one program of the space; random programs and mutants keep the typing, and some of
    them read both globals."""
    import dataclasses
    two = dataclasses.replace(THREE, n_terms=4, weight_terms=2)
    pop = _typed_through_mutations(two, 3, 3)
    P = jax.tree.map(np.asarray, pop)
    g0 = 1 + len(two.post_vars)                         # register of r; rbar is the next one
    reads = P.term_on[:, -2:] & (P.term_p[:, -2:] >= g0) & (P.term_p[:, -2:] < g0 + 2)
    both = reads.all(axis=1) & (P.term_p[:, -2] != P.term_p[:, -1])
    assert both.any()                                   # some programs weigh r against rbar
    for prog in [p for p, b in zip(unstack(pop), both) if b][:4] + unstack(pop)[:4]:
        assert _three_factor_formula(prog, two, strict=False), to_text(prog, two)
    # the reward prediction error itself, written in the space: two weight slots reading r and rbar
    from plasticity_search.rules.formula import compile_formula
    prog, _ = compile_formula("dw = (r - rbar)*elig; delig = sy*tx - sx*ty", two, fit=False)
    prog = jax.tree.map(np.asarray, prog)
    assert to_text(prog, two) == "dw = elig*(r - rbar); delig = -sx*ty + sy*tx"
    assert Space.from_dict(two.to_dict()) == two
    with pytest.raises(RuleError, match="weight_terms"):
        dataclasses.replace(THREE, weight_terms=3)
    with pytest.raises(RuleError, match="weight_terms"):
        dataclasses.replace(THREE, weight_terms=0)


def test_three_factor_space_refuses_what_it_cannot_type():
    with pytest.raises(RuleError, match="structure"):
        Space(structure="nope")
    with pytest.raises(RuleError, match="elig"):
        Space(post_vars=("sy",), pre_vars=("sx",), global_vars=("r",), syn=("1", "w"), structure="three_factor")
    with pytest.raises(RuleError, match="global"):
        Space(post_vars=("sy",), pre_vars=("sx",), syn=("1", "elig"), structure="three_factor")
    path = os.path.join(ROOT, "search_spaces", "spiking_reward.yaml")
    with pytest.raises(ConfigError, match=r"^space\.structure: unknown structure 'nope'"):
        load_config(path, {"space.structure": "nope"})
    with pytest.raises(ConfigError, match=r"^space\.structure:"):
        load_config(path, {"space.n_terms": 1})


def test_spiking_reward_three_factor_search_runs_from_random_programs():
    """search_spaces/spiking_reward.yaml, tiny: every hall-of-fame rule writes the eligibility trace and reads it
    in dw; r_stdp is scored beside them on the same final seeds with paired differences."""
    cfg = load_config(os.path.join(ROOT, "search_spaces", "spiking_reward.yaml"),
                      {"budget.generations": 2, "search.population": 4, "search.children": 4,
                       "tasks.search": [{"task": "spiking_reward", "seeds": 1, "steps": 30}],
                       "tasks.select": [], "tasks.final": [{"task": "spiking_reward", "seeds": 2, "steps": 30}],
                       "hall_of_fame.snap": False})
    hof = run_search(cfg)
    assert hof.entries and [b["name"] for b in hof.baselines] == ["r_stdp"]
    for entry in hof.entries:
        rule = hof.rule(entry.rank)
        assert _three_factor_formula(rule.program, rule.space, strict=False), entry.formula
        assert entry.paired["r_stdp"]["n"] == 2
    assert np.isfinite(hof.baselines[0]["fitness"])


def test_spiking_digits_two_hidden_layers_and_search():
    """A second hidden LIF layer (n_hidden2) and a tiny search with random feedback through both hidden layers;
    e-prop and BP-STDP are its baselines on the same final seeds."""
    with pytest.raises(TaskError, match="n_hidden2"):
        make("spiking_digits", n_hidden2=-1)
    from plasticity_search.spiking.simulate import _class_spec
    from plasticity_search.spiking.network import feedback_matrices
    task = make("spiking_digits", n_hidden=8, n_hidden2=6)
    spec = _class_spec(task, "fa")
    assert spec.sizes == (64, 8, 6, 10) and len(spec.gains) == 3
    assert [b.shape for b in feedback_matrices(jax.random.key(0), spec)] == [(8, 6), (6, 10)]
    tiny = {"n_hidden": 8, "n_hidden2": 6, "n_eval": 10, "t_pres_ms": 10.0}
    cfg = load_config(os.path.join(ROOT, "search_spaces", "spiking_digits.yaml"),
                      {"budget.generations": 1, "search.population": 4, "search.children": 2, "search.hurdle": None,
                       "tasks.search": [{"task": "spiking_digits", "args": tiny, "seeds": 1, "steps": 10}],
                       "tasks.select": [],
                       "tasks.final": [{"task": "spiking_digits", "args": tiny, "seeds": 2, "steps": 10}]})
    hof = run_search(cfg)
    assert [b["name"] for b in hof.baselines] == ["eprop", "bp_stdp"]
    best = hof.entries[hof.best]
    assert np.isfinite(best.fitness) and best.paired["eprop"]["n"] == 2
