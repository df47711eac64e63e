"""The strategy protocol: what the engine's loop calls, with explicit PRNG keys (evosax style).

A strategy proposes genotypes ``x`` (programs, or constant vectors of a fixed structure) and learns from their
fitness; its state is a pytree of arrays and records listed in :func:`..treeio.allowed_classes` (it is saved in
every checkpoint). Per run the engine calls::

    x0 = strategy.initial(key)                       # generation 0
    ev = evaluator.evaluate(state, strategy.programs(x0), strategy.use_fec)
    s = strategy.init(key, x0, ev)
    each generation:
        x, s = strategy.ask(key, s)
        ev = evaluator.evaluate(state, strategy.programs(x), strategy.use_fec)
        s = strategy.tell(key, s, x, ev)
        s, extra = strategy.improve(key2, state_with_s, evaluator)   # optional: local search, restarts
        re-score strategy.select_pool(s, ev) on the select tasks
        best, median, more = strategy.report(s, x, ev)
    after the generation that ends the search:
        more = strategy.finish(key3, state, evaluator)                 # optional: a final local search

``ev`` is an :class:`..evaluator.Evaluated` (raw fitness, FEC hashes, complexity and the complexity-penalised
selection fitness). ``ask`` and ``tell`` receive the same key (a strategy splits it as it needs).

A new strategy is one module with a subclass of :class:`Strategy` plus one line in ``strategies/__init__.py``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...rules.program import Program


class Strategy:
    """Defaults for the optional parts of the protocol. ``ctx`` is the :class:`..engine.Search` (``cfg``, ``space``,
    ``model``, ``fit``, ``network``, ``tasks``, ``param``)."""

    use_fec: ClassVar[bool] = True      # False: every candidate is evaluated (constants change each generation)

    def __init__(self, ctx):
        self.ctx, self.cfg = ctx, ctx.cfg
        self.chunk = ctx.cfg.search.children    # candidates per generation: the evaluators' largest padded size

    @classmethod
    def parametrization(cls, cfg):
        """The :class:`..coeffs.Parametrization` whose constants the strategy tunes (None: it searches programs
        of ``cfg.rule_space()``)."""
        return None

    # --- the protocol ----------------------------------------------------------------------------------------------
    def initial(self, key) -> Any:
        raise NotImplementedError

    def programs(self, x) -> Program:
        return x

    def init(self, key, x, ev) -> Any:
        raise NotImplementedError

    def ask(self, key, state) -> tuple[Any, Any]:
        raise NotImplementedError

    def tell(self, key, state, x, ev) -> Any:
        return state

    # --- optional hooks --------------------------------------------------------------------------------------------
    def check_state(self, state) -> None:
        """A ValueError if a state read from a checkpoint does not fit this strategy's sizes (after the generic
        checks of :func:`..state.check_state`)."""

    def improve(self, key, search_state, evaluator) -> dict:
        """After ``tell``: change ``search_state.strategy`` in place (local search, restarts); returns metrics."""
        return {}

    def finish(self, key, search_state, evaluator) -> dict:
        """After the generation that ends the search (budget, patience, target or time): change
        ``search_state`` in place (e.g. a longer local search); returns metrics."""
        return {}

    def select_pool(self, state, ev) -> tuple[Program, np.ndarray, list]:
        """(programs, selection fitness, hashes) whose best are re-scored on the select tasks."""
        return ev.programs, ev.selection, ev.hashes

    def report(self, state, x, ev) -> tuple[float, float, dict]:
        """(best, median, more metrics) of the generation."""
        return float(np.max(ev.fitness)), float(np.median(ev.fitness)), {}


__all__ = ["Strategy"]
