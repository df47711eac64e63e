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
  not depend on K; its results do (the select re-scoring runs every K generations, and the search is not FEC-cached);
* calls end at multiples of K (and at the budget's end), so a run extended with ``--generations`` from a budget
  that is a multiple of K makes the calls the longer run makes.

Only regularized evolution without hurdle, restarts or a device mesh, in one process; the batch of children must
fit one call (``budget.chunk``, lowered to what fits in memory). The compiled block is pure:
``(key, regevo_state, n, instances) -> ((key, regevo_state), per-generation outputs)``; :meth:`DeviceGenerations.steps`
does a call's host work.
"""
from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..rules.fec import fec_hashes
from ..rules.program import Program, complexities_traced
from .fitness import WORST, json_float
from .regevo import RegEvoState, RegularizedEvolution
from .state import copy_state, take


class DeviceGenerations:
    """The compiled block of ``per_call`` generations for one search (its regularized evolution and search split).
    A call runs the block's generations ``j < n`` (``n`` a traced argument: one compile for every call, the last
    call of a budget that is no multiple of K included; the generations past ``n`` leave key and population as they
    are, are not computed, and their outputs are dropped)."""

    def __init__(self, regevo: RegularizedEvolution, split, space, fitness, per_call: int):
        self.regevo, self.space, self.fitness, self.per_call = regevo, space, fitness, int(per_call)
        self.fns = [fn for _, fn, _ in split.items]
        self.instances = [inst for _, _, inst in split.items]
        # jitted per instance (not a class-level jit with ``self`` static, whose cache would keep every search,
        # its task data and compiled evaluators alive for the life of the process)
        self._block = jax.jit(self._block_fn)

    def _generation(self, carry, j, n, instances):
        """Generation ``j`` of the block: run when ``j < n``, else skipped (a real conditional: a call of fewer
        generations computes only those; key and population unchanged, outputs zero)."""
        run = partial(self._one_generation, instances=instances)
        shapes = jax.eval_shape(run, carry)[1]

        def skip(c):
            return c, jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)

        return jax.lax.cond(j < n, run, skip, carry)

    def _one_generation(self, carry, instances):
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
        mean = jnp.mean(jnp.where(jnp.isfinite(allf), allf, 0.0), axis=1)
        ok = jnp.all(jnp.isfinite(allf), axis=1) & jnp.isfinite(mean)     # a float32 sum may overflow: the worst
        fit = jnp.where(ok, mean, -jnp.inf)
        cplx = complexities_traced(children, self.space)
        sel = jnp.where(ok, fit - jnp.float32(self.fitness.complexity_penalty) * cplx.astype(jnp.float32), -jnp.inf)
        state, m = self.regevo.tell(state, children, sel)
        # every metric is an output of the call, although only the fitness is used: with the others dead, XLA's
        # CPU compiler fused the inner loop differently and a generation's evaluation took 1.7-2x as long (digits
        # 64-8-10, 1024 children: 35-44 ms against 19-21 ms with every metric kept; BENCHMARKS.md, issue 13)
        return (key, state), (children, fit, cplx, m["best_fitness"], m["median_fitness"], every)

    def steps(self, search, state):
        """One call for :meth:`..engine.Search.steps` (``search``: the engine): up to K generations on the device
        (calls end at multiples of K and at the budget's end), then the host's work once: every child offered to
        the archive generation by generation, the select re-scoring, the early-stop statistic. Returns the new
        state and one metrics dict per generation."""
        t0 = time.perf_counter()
        between = t0 - search.last_end if search.last_end is not None else 0.0
        state = copy_state(state)
        g0 = state.generation
        n = max(1, min(self.per_call - g0 % self.per_call, search.cfg.generations - g0))
        key, state.strategy, children, fit, cplx, best, median = self.run(state.key, state.strategy, n)
        state.key = key
        c = state.counters
        ever = []
        for j in range(n):
            progs = Program(*[x[j] for x in children])
            can = np.flatnonzero(state.archive.can_enter(fit[j], cplx[j]))
            hashes: list = [None] * len(fit[j])         # hashed only where add looks: the few that can enter
            for i, h in zip(can, fec_hashes(take(progs, can), self.space) if can.size else ()):
                hashes[i] = h
            state.archive.add(progs, fit[j], cplx[j], hashes)
            ever.append(state.archive.best())
        n_children = int(fit.shape[1])
        c["n_candidates"] = c.get("n_candidates", 0) + n * n_children
        c["n_evaluated"] = c.get("n_evaluated", 0) + n * n_children
        select_before = json_float(max(state.select.values()) if state.select else WORST)
        search.evaluators.rescore_select(state, *search.strategy.select_pool(state.strategy, None))
        state.generation = g0 + n
        search.track_best(state)
        dt = time.perf_counter() - t0
        c["elapsed_s"] = c.get("elapsed_s", 0.0) + between + dt
        select_after = json_float(max(state.select.values()) if state.select else WORST)
        metrics = []
        for j in range(n):
            metrics.append({
                "generation": g0 + j + 1,
                "best_fitness": json_float(best[j]),
                "median_fitness": json_float(median[j]),
                "best_fitness_ever": json_float(ever[j][0]),
                "best_complexity": ever[j][1],
                "best_select_fitness": select_after if j == n - 1 else select_before,
                "fec_hit_rate": 0.0,
                "candidates_per_s": n * n_children / dt if dt > 0 else 0.0,
                "n_evaluated": int(c["n_evaluated"]) - (n - 1 - j) * n_children,
                "wall_time_s": dt / n,           # the call's time, shared evenly by its generations
                "generations_per_call": n,
            })
        search.last_end = time.perf_counter()
        return state, metrics

    def _block_fn(self, key, state: RegEvoState, n, instances):
        return jax.lax.scan(partial(self._generation, n=n, instances=instances), (key, state),
                            jnp.arange(self.per_call, dtype=jnp.int32))

    def run(self, key, state: RegEvoState, n: int):
        """``n`` (1..per_call) generations from ``state`` with the search's key ``key``: (key after them, state,
        children [n, C] as numpy, raw fitness [n, C] float64 with -inf for the worst, complexity [n, C], best and
        median selection fitness of the population after each generation [n])."""
        if not 1 <= n <= self.per_call:
            raise ValueError(f"generations in a call: 1..{self.per_call}, got {n}")
        (key, state), out = self._block(key, state, jnp.int32(n), self.instances)
        children, fit, cplx, best, median = jax.device_get(out[:5])
        children = type(children)(*[x[:n] for x in children])
        return (key, state, children, np.asarray(fit[:n], np.float64), np.asarray(cplx[:n], np.int64), best[:n],
                median[:n])


__all__ = ["DeviceGenerations"]
