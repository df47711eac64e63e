"""The search strategies (``search.strategy``), one module each, behind one protocol (:mod:`.base`).

Adding a strategy: a module with a :class:`.base.Strategy` subclass, and one line in :data:`STRATEGIES`.
"""
from .protocol import Strategy
from .coefficients import CoeffES
from .evolution import Evolution, Hybrid
from .metagrad import MetaGradient
from .random_search import RandomSearch

STRATEGIES: dict[str, type[Strategy]] = {
    "regularized_evolution": Evolution,
    "evosax": CoeffES,
    "metagrad": MetaGradient,
    "hybrid": Hybrid,
    "random_search": RandomSearch,
}
STRATEGY_NAMES = tuple(STRATEGIES)

__all__ = ["STRATEGIES", "STRATEGY_NAMES", "Strategy"]
