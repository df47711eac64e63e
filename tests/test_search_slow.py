"""Known-answer searches (slow; ``python -m pytest -m slow tests/test_search_slow.py``): the shipped oja.yaml and
delta.yaml rediscover Oja's rule and the delta rule (BENCHMARKS.md benchmarks 1 and 2)."""
import os

import pytest

from plasticity_search.search import load_config, run_search
from plasticity_search.search.equivalence import equivalent_up_to_positive_factor, symbolic_ratio

ROOT = os.path.join(os.path.dirname(__file__), "..")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1])
def test_oja_yaml_rediscovers_oja(seed):
    hof = run_search(load_config(os.path.join(ROOT, "search_spaces", "oja.yaml"), {"seed": seed}))
    prog, space = hof.entries[hof.best].rule_program()
    assert equivalent_up_to_positive_factor(prog, space, "y*(x - y*w)"), hof.table()
    ratio = symbolic_ratio(prog, space, "y*(x - y*w)")
    assert ratio is not None and ratio.is_number and float(ratio) > 0
    assert hof.entries[hof.best].metrics["final"]["pc1_alignment"] >= 0.99


@pytest.mark.parametrize("seed", [0])
def test_delta_yaml_rediscovers_the_delta_rule(seed):
    hof = run_search(load_config(os.path.join(ROOT, "search_spaces", "delta.yaml"), {"seed": seed}))
    prog, space = hof.entries[hof.best].rule_program()
    assert equivalent_up_to_positive_factor(prog, space, "-e*x"), hof.table()
    assert not equivalent_up_to_positive_factor(prog, space, "e*x")
