"""The engine from parts: one strategy registry drives the config and the loop (no strategy names in the engine),
and a new strategy is one module plus one registry line: random search on the tiny PCA config of test_search."""
import ast
import math
import pathlib

import numpy as np
import pytest

from plasticity_search.search import ConfigError, Search, load_config, run_search, state_from_tree, state_to_tree
from plasticity_search.search.config import STRATEGIES
from plasticity_search.search.strategies import STRATEGIES as REGISTRY, Strategy

PCA = {"task": "pca", "seeds": 2, "steps": 100}
TINY = {                    # the tiny config of test_search.py
    "name": "tiny",
    "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 2, "n_pre": 1, "n_terms": 3},
    "search": {"population": 8, "tournament": 2, "children": 4},
    "tasks": {"search": [PCA], "select": [PCA], "final": [PCA]},
    "fitness": {"penalties": [{"metric": "weight_norm", "target": 1.0, "weight": 1.0}]},
    "budget": {"generations": 10},
}

ENGINE = pathlib.Path(__file__).resolve().parent.parent / "plasticity_search" / "search" / "engine.py"


def test_config_takes_strategy_names_from_the_registry():
    assert STRATEGIES == tuple(REGISTRY)
    assert all(issubclass(cls, Strategy) for cls in REGISTRY.values())
    with pytest.raises(ConfigError, match="random_search"):
        load_config(TINY, {"search.strategy": "no_such_strategy"})


def test_engine_is_small_and_names_no_strategy():
    src = ENGINE.read_text()
    assert len(src.splitlines()) <= 300
    literals = {n.value for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & set(REGISTRY), literals & set(REGISTRY)


def test_random_search_runs_and_finds_a_rule():
    cfg = load_config(TINY, {"search.strategy": "random_search", "budget.generations": 3})
    search = Search(cfg)
    state = search.init()
    seen = []
    while not search.done(state):
        state, m = search.step(state)
        seen.append(m)
        arrays, meta = state_to_tree(state)                     # the state round-trips (a jax counter)
        back = state_from_tree(arrays, meta)
        assert int(back.strategy) == int(state.strategy)
    assert int(state.strategy) == 4 * cfg.search.children       # generation 0 and three more, `children` each
    assert state.counters["n_candidates"] == 4 * cfg.search.children
    assert all(math.isfinite(m["best_fitness_ever"]) for m in seen)
    hof = search.finalize(state)
    assert len(hof) >= 1 and np.isfinite(hof.entries[hof.best].fitness)
    assert hof.info["strategy"] == "random_search"
    # the same seed gives the same search
    again = run_search(cfg)
    assert [e.formula for e in again.entries] == [e.formula for e in hof.entries]
