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
from plasticity_search.rules.program import TARGET_ELIG, TARGET_W, RuleError, Space, stack, unstack
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
    assert (P.term_p[:, -1] >= 1 + n_pv).all()                                   # M: a global or an instruction
    m_reads = P.term_p[:, -J:-1]                                                 # ... or 1 with m_offset
    assert ((m_reads >= 1 + n_pv) | ((m_reads == 0) & space.m_offset)).all()
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


def test_m_offset_lets_a_weight_slot_read_the_constant_so_that_r_minus_1_is_in_the_space():
    """m_offset: a weight slot other than the last may read the constant 1, so M = c1*r + c2 (a constant reward
    baseline; their evolved E*(R - 1) is M = r - 1); the last slot still reads a global or an instruction, so every
    rule stays three-factor. Random programs and mutants keep that typing and some of them reach ``c*(r - 1)``."""
    import dataclasses
    off = dataclasses.replace(THREE, n_terms=4, weight_terms=2, m_offset=True)
    pop = _typed_through_mutations(off, 3, 3)
    P = jax.tree.map(np.asarray, pop)
    r = 1 + len(off.post_vars)                          # register of r
    one_and_r = P.term_on[:, -2] & (P.term_p[:, -2] == 0) & (P.term_p[:, -1] == r)
    assert one_and_r.any() and not (P.term_p[:, -1] == 0).any()
    prog = [p for p, b in zip(unstack(pop), one_and_r) if b][0]
    dw, _ = to_sympy(prog, off)
    c1, c2 = (float(prog.term_coef[-2]), float(prog.term_coef[-1]))
    sym = {s.name: s for s in sympy.sympify(dw).free_symbols}
    got = sympy.Poly(sympy.expand(dw), sym["r"], sym["elig"]).as_dict()        # {(r power, elig power): coef}
    assert set(got) == {(0, 1), (1, 1)}, dw                                      # displayed to 4 digits:
    np.testing.assert_allclose([float(got[(0, 1)]), float(got[(1, 1)])], [c1, c2], rtol=1e-3)
    # the same programs without m_offset: the constant read is moved to a global, as before
    plain = dataclasses.replace(off, m_offset=False)
    assert (np.asarray(plain.constrain(prog).term_p)[-2] >= r)
    assert Space.from_dict(off.to_dict()) == off and Space.from_dict(plain.to_dict()) == plain
    with pytest.raises(RuleError, match="m_offset"):
        dataclasses.replace(THREE, m_offset=True)                # one weight slot: no slot but the last
    path = os.path.join(ROOT, "search_spaces", "spiking_reward.yaml")
    with pytest.raises(ConfigError, match=r"^space\.m_offset: needs"):
        load_config(path, {"space.m_offset": True, "space.weight_terms": 1})
    with pytest.raises(ConfigError, match=r"^space\.m_offset: expected bool"):
        load_config(path, {"space.m_offset": "yes"})


def test_grown_third_factor_adds_each_missing_read_to_m_in_a_free_weight_slot():
    """The structural step of a three-factor search (hybrid.final_grow): c*r*elig grown by one read of its third
    factor, both signs, at 1, 1/2 and 1/4 of c: with m_offset the constant (so c*(r - 1)*elig is one step away)
    and rbar; typed like every program of the space; nothing to grow when no weight slot is free or the space is
    free."""
    import dataclasses

    from plasticity_search.search.canonical import grown_third_factor_keyed
    off = dataclasses.replace(THREE, n_terms=4, weight_terms=2, m_offset=True)
    r = 1 + len(off.post_vars)
    prog = jax.tree.map(np.asarray, off.empty())._replace(
        term_on=np.array([True, False, False, True]), term_coef=np.array([1.0, 0, 0, 0.8], np.float32),
        term_p=np.array([1, 0, 0, r], np.int32), term_q=np.array([2, 0, 0, 0], np.int32),
        term_s=np.array([0, 0, 2, 2], np.int32), term_tgt=np.array([TARGET_ELIG, TARGET_ELIG, TARGET_W, TARGET_W],
                                                                     np.int32))
    assert to_text(prog, off) == "dw = 0.8*elig*r; delig = sy*tx"
    keyed = grown_third_factor_keyed(prog, off)
    texts = {to_text(p, off) for _, p in keyed}
    assert {k for k, _ in keyed} == {(None, x, sg) for x in ("1", "rbar") for sg in (1.0, -1.0)}
    assert "dw = 0.8*elig*(r - 1); delig = sy*tx" in texts            # E*(R - 1), their evolved rule, at c = 0.8
    assert "dw = elig*(0.8*r - 0.2*rbar); delig = sy*tx" in texts and len(keyed) == 12
    _typed(stack([p for _, p in keyed]), off)
    plain = dataclasses.replace(off, m_offset=False)                  # without m_offset: only rbar
    assert {k[1] for k, _ in grown_third_factor_keyed(prog, plain)} == {"rbar"}
    # both weight slots in use (M = c1*rbar + c2*r): one read swapped for the constant, never into the last slot
    full = prog._replace(term_on=np.array([True, False, True, True]), term_p=np.array([1, 0, r + 1, r], np.int32),
                         term_coef=np.array([1.0, 0, -0.4, 0.8], np.float32))
    swapped = grown_third_factor_keyed(full, off)
    _typed(stack([p for _, p in swapped]), off)
    assert {k for k, _ in swapped} == {("rbar", "1", 1.0), ("rbar", "1", -1.0), ("r", "1", 1.0), ("r", "1", -1.0)}
    assert "dw = 0.8*elig*(r - 1); delig = sy*tx" in {to_text(p, off) for _, p in swapped}
    assert grown_third_factor_keyed(prog, dataclasses.replace(off, structure="free", weight_terms=1,
                                                              m_offset=False)) == []


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


def test_jordan_reward_search_of_f_R_E_grows_its_third_factor_at_the_end():
    """search_spaces/jordan_reward.yaml, tiny (their f(R, E) with E fixed, the once-per-trial update): the run ends
    with the final refinement and one structural step of the third factor; every hall-of-fame rule holds their E
    and writes dw = M * elig; r_stdp is scored on the same final seeds."""
    from plasticity_search.search import Search
    small = {"n_afferents": 10, "n_stimuli": 4, "n_eval": 4, "t_stim_ms": 40.0, "n_in": 32,
             "update_after_trial": True}
    cfg = load_config(os.path.join(ROOT, "search_spaces", "jordan_reward.yaml"),
                      {"budget.generations": 2, "search.population": 4, "search.children": 4, "hybrid.every": 2,
                       "hybrid.population": 4, "hybrid.steps": 1, "hybrid.final_steps": 1, "hybrid.final_top_k": 1,
                       "tasks.search": [{"task": "jordan_reward", "args": small, "seeds": 2, "steps": 20}],
                       "tasks.select": [{"task": "jordan_reward", "args": small, "seeds": 2, "steps": 20}],
                       "tasks.final": [{"task": "jordan_reward", "args": small, "seeds": 2, "steps": 20}],
                       "hall_of_fame.select_seeds": 2, "hall_of_fame.snap": False})
    space = cfg.rule_space()
    assert space.m_offset and space.weight_terms == 2 and space.global_vars == ("r",)
    bad = {"task": "jordan_reward", "args": dict(small, n_in=16), "seeds": 2}      # a bad task arg is named as such,
    with pytest.raises(ConfigError, match=r"^tasks\.search\[0\]\.task: jordan_reward: n_in"):  # not as a space
        load_config(os.path.join(ROOT, "search_spaces", "jordan_reward.yaml"), {"tasks.search": [bad]})
    search = Search(cfg)
    state, metrics = search.init(), []
    while not search.done(state):
        state, m = search.step(state)
        metrics.append(m)
    assert "n_grown" in metrics[-1] and "n_polished" in metrics[-1]          # the final refinement ran
    hof = search.finalize(state)
    assert hof.entries and [b["name"] for b in hof.baselines] == ["r_stdp"]
    for entry in hof.entries:
        rule = hof.rule(entry.rank)
        dw, de = to_sympy(rule.program, rule.space)
        assert str(de) == "tx*(sy - 0.01*v**2)", de
        assert _three_factor_formula(rule.program, rule.space), entry.formula
        assert entry.paired["r_stdp"]["n"] == 2


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
