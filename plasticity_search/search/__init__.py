"""Search strategies over plasticity rules, the search engine, and the hall of fame.

    from plasticity_search.search import load_config, run_search
    hof = run_search(load_config("search_spaces/oja.yaml", {"seed": 1}))
    print(hof.table()); hof.sympy(hof.best)

See docs/SEARCH_API.md for the contract with the runs layer (Search.init/step/done/finalize, state_to_tree /
state_from_tree, HallOfFame.to_json / from_json) and :mod:`.config` for the YAML schema.
"""
from .coeffs import CoeffES, Parametrization, structure_parametrization
from .config import ConfigError, SearchConfig, load_config
from .engine import Search, SearchState, run_search, state_from_tree, state_to_tree
from .fitness import WORST, WORST_JSON, FitnessFn
from .hall_of_fame import Entry, HallOfFame
from .meta_gradient import MetaGrad, MetaGradState
from .regevo import RegEvoState, RegularizedEvolution

__all__ = [
    "load_config", "ConfigError", "SearchConfig", "Search", "SearchState", "run_search", "state_to_tree",
    "state_from_tree", "HallOfFame", "Entry", "RegularizedEvolution", "RegEvoState", "CoeffES", "Parametrization",
    "structure_parametrization", "MetaGrad", "MetaGradState", "FitnessFn", "WORST", "WORST_JSON",
]
