"""Generations on the device: ``search.generations_per_call: K`` runs K generations of regularized evolution (ask,
the search split's inner loop on every child, fitness, tell) in one compiled ``lax.scan``.

Why: on a GPU one generation's inner loop takes a few ms, and a generation driven from the host (mutation, the FEC
cache, the batch planned into calls, the archive, the select re-scoring: several compiled calls and Python work
each) left the device idle most of the time (BENCHMARKS.md, issue 13: 0.11 of the inner loop's throughput on an
H200). With K generations per call the host works once per K generations:

* every child is evaluated on the device (no FEC cache: ``search.fec: false`` is required, so that the config says
  what runs); a child's fitness is the mean over its instances in float32 (the host path averages in float64), with
  a non-finite instance making it the worst; selection subtracts the complexity penalty as the host path does
  (:func:`~plasticity_search.rules.program.complexities_traced`);
* after the call every child is offered to the archive, generation by generation (FEC hashes only for the few
  that can enter it), the select re-scoring runs once on the population's best, and early stopping
  (``budget.patience``, ``target_fitness``, ``time_limit_s``) is checked once per call;
* the generations' keys are the host path's (``key, k_step, _ = split(key, 3)`` per generation), so a run's keys do
  not depend on K; its results do (the select re-scoring runs every K generations, and the search is not FEC-cached).

Only regularized evolution without hurdle, restarts or a device mesh; the batch of children must fit one call
(``budget.chunk``). Pure: ``block(key, regevo_state, instances) -> (key, regevo_state, per-generation outputs)``.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..rules.program import complexities_traced
from .regevo import RegEvoState, RegularizedEvolution


class DeviceGenerations:
    """The compiled block of generations for one search (its regularized evolution and search split)."""

    def __init__(self, regevo: RegularizedEvolution, split, space, fitness):
        self.regevo, self.space, self.fitness = regevo, space, fitness
        self.fns = [fn for _, fn, _ in split.items]
        self.instances = [inst for _, _, inst in split.items]

    def _generation(self, carry, _, instances):
        key, state = carry
        key, k_step, _ = jax.random.split(key, 3)
        children = self.regevo.ask(k_step, state)
        per, every = [], []
        for fn, inst in zip(self.fns, instances):
            metrics, _ = fn(children, inst)
            f = self.fitness.per_instance(metrics, xp=jnp)
            per.append(jnp.reshape(f, (f.shape[0], -1)))
            every.append(metrics)
        allf = jnp.concatenate(per, axis=1).astype(jnp.float32)
        ok = jnp.all(jnp.isfinite(allf), axis=1)
        fit = jnp.where(ok, jnp.mean(jnp.where(ok[:, None], allf, 0.0), axis=1), -jnp.inf)
        cplx = complexities_traced(children, self.space)
        sel = jnp.where(ok, fit - jnp.float32(self.fitness.complexity_penalty) * cplx.astype(jnp.float32), -jnp.inf)
        state, m = self.regevo.tell(state, children, sel)
        # every metric is an output of the call, although only the fitness is used: with the others dead, XLA's
        # CPU compiler fused the inner loop differently and a generation's evaluation took 1.7-2x as long (digits
        # 64-8-10, 1024 children: 35-44 ms against 19-21 ms with every metric kept; BENCHMARKS.md, issue 13)
        return (key, state), (children, fit, cplx, m["best_fitness"], m["median_fitness"], every)

    @partial(jax.jit, static_argnums=(0, 3))
    def _block(self, key, state: RegEvoState, n: int, instances):
        return jax.lax.scan(partial(self._generation, instances=instances), (key, state), None, length=n)

    def run(self, key, state: RegEvoState, n: int):
        """``n`` generations from ``state`` with the search's key ``key``: (key after them, state, children
        [n, C] as numpy, raw fitness [n, C] float64 with -inf for the worst, complexity [n, C], best and median
        selection fitness of the population after each generation [n])."""
        (key, state), out = self._block(key, state, n, self.instances)
        children, fit, cplx, best, median = jax.device_get(out[:5])
        return key, state, children, np.asarray(fit, np.float64), np.asarray(cplx, np.int64), best, median

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


__all__ = ["DeviceGenerations"]
