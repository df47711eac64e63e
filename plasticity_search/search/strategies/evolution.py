"""Regularized evolution over programs (:mod:`..regevo`), with restarts on stagnation and an optional local search.

* ``regularized_evolution``: per generation ``search.children`` candidates by tournament + mutation; FEC-cached.
  ``search.seed_rules`` take the last slots of the initial population (its youngest members). With
  ``search.restart_after`` a fresh random population replaces one that found no better member for that many
  generations.
* ``hybrid``: the same, with a local search plugged in (as hal-cgp's ``local_search``): every ``hybrid.every``
  generations the ``hybrid.top_k`` best distinct members are handed to :mod:`.refine`, and a refined program that is
  fitter replaces its parent in the population (Lamarckian). With ``hybrid.final_steps`` the search ends with a
  longer refinement (that many steps) of the ``hybrid.final_top_k`` best distinct programs of the run's archive,
  whose results are re-scored on the select tasks so that the hall of fame sees them, plus ``hybrid.final_grow``
  structural steps: the best program grown by the one monomial that helps it most (:func:`..canonical.grown`;
  a monomial swapped for another when the space has no room; in a 'three_factor' space its third factor grown by
  one read, :func:`..canonical.grown_third_factor_keyed`), refined the same way, and the result grown again
  while growing helps.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from ...rules.fec import fec_hashes
from ...rules.program import Program, index, stack
from ..canonical import expanded, grown_keyed, grown_third_factor_keyed
from ..fixed import search_fixed
from ..fitness import WORST
from ..hall_of_fame import top_distinct
from ..regevo import RegEvoState, RegularizedEvolution, jitted
from ..state import np_prog, take
from .protocol import Strategy
from .refine import make_local_search


GROW_SCALES = (0.3, 0.1, 0.03, 0.01)    # sizes of a structural step's new monomial, times the largest constant


class Evolution(Strategy):
    def __init__(self, ctx, local_search: Callable | None = None):
        super().__init__(ctx)
        s = self.cfg.search
        self.fixed = search_fixed(s, ctx.space)
        self.regevo = RegularizedEvolution(ctx.space, s.population, s.tournament, s.children,
                                           tuple(s.mutation[m] for m in s.mutation), s.aging, s.init_terms,
                                           self.fixed)
        self.use_fec = s.fec
        self.local_search = local_search    # (key, program, fitness, search_state, evaluator) -> (program, fitness)

    def initial(self, key) -> Program:
        pop = Program(*[np.array(x) for x in jitted(self.regevo, "initialize")(key)])
        seeds = self.ctx.seed_programs()
        for i, prog in enumerate(seeds, start=self.regevo.population_size - len(seeds)):
            # the last slots: the youngest members (births count up with the slot), so with aging the seed rules
            # are the last of the initial population to age out (the first slots were replaced by the first
            # generation's children, before a seed rule's offspring had a second chance)
            if self.fixed is not None:          # a seed rule keeps its other slots; the fixed ones are the part's
                prog = self.fixed.apply(prog)
            for dst, src in zip(pop, prog):
                dst[i] = np.asarray(src)
        return pop

    def init(self, key, x, ev) -> RegEvoState:
        return self.regevo.init(x, ev.selection)

    def check_state(self, state) -> None:
        n = np.shape(getattr(getattr(state, "population", None), "term_on", ()))[:-1]
        if n != (self.regevo.population_size,):
            raise ValueError(f"damaged search state: a population of {n}, the config says "
                             f"{self.regevo.population_size}")

    def ask(self, key, state):
        return np_prog(jitted(self.regevo, "ask")(key, state)), state

    def tell(self, key, state, x, ev):
        return jitted(self.regevo, "tell")(state, x, ev.selection)[0]

    def improve(self, key, search_state, evaluator) -> dict:
        extra = {}
        if self.local_search is not None and (search_state.generation + 1) % self.cfg.hybrid.every == 0:
            extra["n_refined"] = len(self._refine(search_state, jax.random.fold_in(key, 0), evaluator))
            for k in ("metagrad_steps", "metagrad_skipped"):          # hybrid.refine: metagrad, run totals
                if k in search_state.counters:
                    extra[k] = int(search_state.counters[k])
        self._maybe_restart(search_state, key, evaluator)
        return extra

    def finish(self, key, search_state, evaluator) -> dict:
        """``hybrid.final_steps``: refine the ``hybrid.final_top_k`` best distinct programs the run has kept (by
        select fitness when there are select tasks, else by search fitness; not the current population, which a
        restart may just have replaced), each in its expanded form (a coefficient per monomial, so that
        ``k*e*(e_pre - x)`` can become ``a*e*e_pre - b*e*x``), and re-score the improved ones on the select tasks."""
        h = self.cfg.hybrid
        if self.local_search is None or not h.final_steps:
            return {}
        st = search_state
        arch = st.select_archive if st.select else st.archive
        slots = [(c, j) for c in range(arch.levels) for j in range(arch.per)]
        fit = np.array([arch.fitness[c, j] for c, j in slots], np.float64)
        best = top_distinct(np.where(fit > WORST, fit, -np.inf), [arch.hashes[c][j] for c, j in slots],
                            h.final_top_k)
        typed = self.ctx.space.structure != "free"             # a typed program keeps its slots' layout
        picked = [(arch.hashes[c][j], np_prog(arch.program(c, j)) if typed else expanded(arch.program(c, j),
                                                                                         self.ctx.space))
                  for c, j in (slots[i] for i in best)]
        done = []
        for r, (old, prog) in enumerate(picked):
            base_fit = st.fec.get(old, WORST)
            new_prog, new_fit = self.local_search(jax.random.fold_in(key, r), prog, base_fit, st, evaluator,
                                                  h.final_steps)
            if new_prog is not None:
                done.append((old, np_prog(new_prog), new_fit))
        if done:
            self._take_places(st, evaluator, done)
        grew = 0
        prog = done[0][1] if done and done[0][0] == picked[0][0] else picked[0][1] if picked else None
        for g in range(h.final_grow if prog is not None else 0):
            prog = self._grow(jax.random.fold_in(key, len(picked) + g), st, evaluator, prog)
            if prog is None:
                break
            grew += 1
        return {"n_polished": len(done), "n_grown": grew}

    def _grow(self, key, st, evaluator, prog) -> Program | None:
        """One structural step of the final refinement: the program with one more monomial (each it lacks, both
        signs, at 30%, 10%, 3% and 1% of its largest constant: monomials differ in size by orders of magnitude;
        or, when the space has no room for one more, one of its monomials replaced by one it lacks; in a
        'three_factor' space its third factor M with one more read: a global, or 1 with ``space.m_offset``),
        screened on the refinement's instances; the ``hybrid.grow_top_k`` best structures (each at its best
        screened size) are refined like the others, and the best of them is offered to the archives (re-scored on
        select) if it then beats the program it grew from there. Returns that program if it did, else None."""
        h = self.cfg.hybrid
        judge = evaluator.refine_split(h.population) or evaluator.split("search", h.population)
        if self.ctx.space.structure != "free":                  # dw = M * elig: grow the third factor M
            keyed = grown_third_factor_keyed(prog, self.ctx.space)
        else:
            coef = np.abs(np.asarray(prog.term_coef)[np.asarray(prog.term_on)])
            scales = (float(coef.max()) if coef.size else 1.0) * np.array(GROW_SCALES)
            keyed = grown_keyed(prog, self.ctx.space, scales) or grown_keyed(prog, self.ctx.space, scales, swap=True)
        if not keyed:
            return None
        base = float(judge.evaluate(stack([prog]))[0][0])
        screen = np.asarray(judge.evaluate(stack([p for _, p in keyed]))[0], np.float64)
        picked = [keyed[j][1] for j in top_distinct(screen, [k for k, _ in keyed], h.grow_top_k)]
        best, best_fit = None, base
        for r, cand in enumerate(picked):
            new_prog, _ = self.local_search(jax.random.fold_in(key, r), cand,
                                            st.fec.get(fec_hashes(stack([cand]), self.ctx.space)[0], WORST),
                                            st, evaluator, h.final_steps)
            out = np_prog(new_prog) if new_prog is not None else cand
            fit = float(judge.evaluate(stack([out]))[0][0])
            if fit > best_fit:
                best, best_fit = out, fit
        if best is None:
            return None
        progs = stack([best])
        ev = evaluator.evaluate(st, progs, self.cfg.search.fec, chunk=1)       # search fitness, archive offer
        evaluator.rescore_select(st, progs, ev.selection, ev.hashes, k=1)
        return best

    def _take_places(self, st, evaluator, done) -> None:
        """Each refined program takes its original's slots in the archives (the refinement's evidence, on more
        instances than a generation's, outranks the archives' few-instance scores), with its own search fitness
        and its select fitness (re-scored here), so that the hall of fame re-scores it in the original's place."""
        progs = stack([p for _, p, _ in done])
        hashes = fec_hashes(progs, self.ctx.space)
        sel = evaluator.split("select")
        sel_fit = sel.evaluate(progs)[0] if sel is not None else None
        for i, (old, _, fit) in enumerate(done):
            st.archive.replace(old, progs, i, fit, hashes[i])
            if sel_fit is not None:
                st.select_archive.replace(old, progs, i, sel_fit[i], hashes[i])
                st.select[hashes[i]] = float(sel_fit[i])

    def select_pool(self, state, ev):
        pop = np_prog(state.population)
        pop_fit = np.asarray(state.fitness, np.float64)
        top = np.argsort(-np.where(np.isfinite(pop_fit), pop_fit, -np.inf), kind="stable")
        top = top[:max(1, 2 * self.cfg.hall_of_fame.select_top_k)]
        return take(pop, top), pop_fit[top], fec_hashes(take(pop, top), self.ctx.space)

    def report(self, state, x, ev):
        pop_fit = np.asarray(state.fitness, np.float64)
        return float(np.max(pop_fit)), float(np.median(pop_fit)), {}

    # --- restarts -------------------------------------------------------------------------------------------------
    def _maybe_restart(self, st, key, evaluator) -> None:
        """A fresh random population after ``restart_after`` generations without a new best (drawn with
        ``fold_in(key, 1)``)."""
        after = self.cfg.search.restart_after
        if after is None:
            return
        c = st.counters
        best = float(np.max(np.asarray(st.strategy.fitness, np.float64)))
        if best > c.get("restart_best", -np.inf):
            c["restart_best"], c["restart_gen"] = best, st.generation + 1
            return
        if st.generation + 1 - c.get("restart_gen", 0) < after:
            return
        key = jax.random.fold_in(key, 1)      # (only when it restarts: an eager fold_in costs 0.8 ms on the CPU)
        ev = evaluator.evaluate(st, np_prog(jitted(self.regevo, "initialize")(key)), self.use_fec)
        st.strategy = self.regevo.init(ev.programs, ev.selection)
        c["restart_best"], c["restart_gen"] = float("-inf"), st.generation + 1
        c["n_restarts"] = c.get("n_restarts", 0) + 1

    # --- Lamarckian local search on the best distinct members ----------------------------------------------------
    def _refine(self, st, key, evaluator, top_k: int | None = None, steps: int | None = None) -> list:
        """Local search on the ``top_k`` (default ``hybrid.top_k``) best distinct members; the improved programs."""
        top_k = self.cfg.hybrid.top_k if top_k is None else top_k
        pop = np_prog(st.strategy.population)
        pf = np.asarray(st.strategy.fitness, np.float64)
        hashes = fec_hashes(pop, self.ctx.space)
        picked = top_distinct(pf, hashes, top_k)
        improved = []
        for r, i in enumerate(picked):
            base_fit = st.fec.get(hashes[i], WORST)
            new_prog, new_fit = self.local_search(jax.random.fold_in(key, r), index(pop, i), base_fit, st, evaluator,
                                                  steps)
            if new_prog is not None:           # the local search returns a program only when it improved
                new = stack([new_prog])
                sel = self.ctx.fit.penalized(np.array([new_fit]), evaluator.complexities(new))
                st.strategy = self.regevo.replace_members(st.strategy, np.array([i]), new, sel)
                improved.append(np_prog(new_prog))
        st.counters["n_refined"] = st.counters.get("n_refined", 0) + len(improved)
        return improved


class Hybrid(Evolution):
    """Regularized evolution with constant refinement (``hybrid.refine``: evosax or metagrad) as local search."""

    def __init__(self, ctx):
        super().__init__(ctx, make_local_search(ctx))


__all__ = ["Evolution", "Hybrid"]
