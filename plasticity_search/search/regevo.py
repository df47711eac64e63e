"""Regularized evolution over rule programs (Real et al. 2019; AutoML-Zero, Real et al. 2020), batched.

Fixed configuration in :class:`RegularizedEvolution`, pure functions over an explicit :class:`RegEvoState` (a pytree
of arrays), the key always first (evosax style)::

    pop = strat.initialize(key)                  # random programs [N]
    state = strat.init(pop, fitness)             # fitness [N] (maximised; -inf = worst)
    children = strat.ask(key, state)             # C children: tournament of T, then one mutation each
    state, metrics = strat.tell(state, children, fitness_children)   # the C oldest (aging) / worst die

One generation produces ``children`` candidates that the engine evaluates as one population (AutoML-Zero makes one
child per cycle; a batch keeps the inner loop vectorised). ``ask`` and ``tell`` are jittable and run inside
``lax.scan`` (see tests/test_search_strategies.py); :func:`jitted` gives the compiled versions the engine calls.
The functional-equivalence cache lives in the evaluator (:mod:`.evaluator`), outside jit; :mod:`.strategies.evolution`
wraps these functions as the `regularized_evolution` and `hybrid` strategies.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .. import jit_options
from ..rules.mutation import DEFAULT_MUTATION_PROBS, mutate, random_population
from ..rules.program import Program, Space
from .fixed import FixedPart


class RegEvoState(NamedTuple):
    population: Program     # [N] programs
    fitness: jax.Array      # float32 [N], maximised; -inf = worst / unevaluated
    birth: jax.Array        # int32 [N], birth order (larger = younger)
    counter: jax.Array      # int32 [], next birth number


@dataclass(frozen=True)
class RegularizedEvolution:
    space: Space
    population_size: int = 64
    tournament_size: int = 8
    num_children: int = 16
    mutation_probs: tuple = DEFAULT_MUTATION_PROBS
    aging: bool = True
    init_terms: int = 2
    fixed: FixedPart | None = None      # search.fixed: slots every program holds fixed (random ones and children)

    def _fix(self, progs: Program) -> Program:
        return progs if self.fixed is None else jax.vmap(self.fixed.apply)(progs)

    def initialize(self, key) -> Program:
        """A random population of ``population_size`` programs."""
        return self._fix(random_population(key, self.space, self.population_size, self.init_terms))

    def init(self, population: Program, fitness) -> RegEvoState:
        n = self.population_size
        return RegEvoState(jax.tree.map(jnp.asarray, population), jnp.asarray(fitness, jnp.float32),
                           jnp.arange(n, dtype=jnp.int32), jnp.asarray(n, jnp.int32))

    def ask(self, key, state: RegEvoState) -> Program:
        """``num_children`` children: each from the fittest of ``tournament_size`` uniform draws, mutated once."""
        def one(k):
            k_t, k_m = jax.random.split(k)
            idx = jax.random.randint(k_t, (self.tournament_size,), 0, self.population_size)
            parent = idx[jnp.argmax(state.fitness[idx])]
            prog = jax.tree.map(lambda x: x[parent], state.population)
            return mutate(k_m, prog, self.space, self.mutation_probs)

        return self._fix(jax.vmap(one)(jax.random.split(key, self.num_children)))

    def tell(self, state: RegEvoState, children: Program, fitness) -> tuple[RegEvoState, dict]:
        """Insert the children in place of the oldest (``aging``) or the worst members."""
        fitness = jnp.asarray(fitness, jnp.float32)
        fitness = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
        C = self.num_children
        order = jnp.argsort(state.birth) if self.aging else jnp.argsort(state.fitness, stable=True)
        slots = order[:C]
        pop = jax.tree.map(lambda p, c: p.at[slots].set(c.astype(p.dtype)), state.population, children)
        fit = state.fitness.at[slots].set(fitness)
        birth = state.birth.at[slots].set(state.counter + jnp.arange(C, dtype=jnp.int32))
        new = RegEvoState(pop, fit, birth, state.counter + C)
        finite = jnp.isfinite(fit)
        metrics = {"best_fitness": jnp.max(fit),
                   "median_fitness": jnp.median(jnp.where(finite, fit, -jnp.inf)),
                   "frac_finite": jnp.mean(finite.astype(jnp.float32))}
        return new, metrics

    def replace_members(self, state: RegEvoState, idx, programs: Program, fitness) -> RegEvoState:
        """Lamarckian write-back: members ``idx`` become ``programs`` (same age) with ``fitness``."""
        idx = jnp.asarray(idx, jnp.int32)
        pop = jax.tree.map(lambda p, c: p.at[idx].set(jnp.asarray(c).astype(p.dtype)), state.population, programs)
        fit = state.fitness.at[idx].set(jnp.asarray(fitness, jnp.float32))
        return state._replace(population=pop, fitness=fit)


@lru_cache(maxsize=64)
def jitted(strategy: RegularizedEvolution, method: str):
    """``jax.jit`` of a strategy method, shared by equal strategies (the methods themselves are plain pure
    functions, so they nest inside any outer ``jit`` / ``lax.scan``). Random programs compile without LLVM
    optimisation, mutation too below 256 children per generation (:func:`..jit_options.mutation`)."""
    batch = {"ask": strategy.num_children, "initialize": 1}.get(method)     # initialize: one call per run
    opts = None if batch is None else jit_options.mutation(batch)
    return jax.jit(getattr(strategy, method), compiler_options=opts)


__all__ = ["RegularizedEvolution", "RegEvoState", "jitted"]
