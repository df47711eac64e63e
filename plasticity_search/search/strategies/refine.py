"""Local search for evolution (``hybrid``): refine the constants of one program, as hal-cgp's ``local_search``.

A local search is a callable ``(key, program, fitness, search_state, evaluator, steps=None) -> (program or None,
fitness)`` (``steps``: instead of ``hybrid.steps``):
a program only when it improves on ``program`` (it then replaces it), with its search fitness. Every program it
tries is evaluated through the evaluator (FEC cache, archive). :class:`..evolution.Evolution` decides which members
it gets and writes an improvement back (Lamarckian).

* ``hybrid.refine: evosax``: ``hybrid.steps`` generations of the evosax algorithm (population
  ``hybrid.population``) over the program's live constants, as relative perturbations of their current values.
  With ``hybrid.seeds`` the candidates (and the program itself) are judged on that many search seeds per task
  instead of the generations' few, so the constants follow the rule rather than the noise of a few episodes; an
  improvement there enters the population with its ordinary search fitness;
* ``hybrid.refine: metagrad``: ``hybrid.steps`` meta-gradient steps on every constant of the space (one compiled
  step serves all programs: the base program is an argument).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...rules.program import index, stack
from ..coeffs import Parametrization
from ..fixed import search_fixed
from ..fitness import WORST
from ..state import np_prog
from .coefficients import coeff_strategy
from .metagrad import build_metagrad


class ESRefine:
    def __init__(self, ctx):
        self.ctx, self.cfg = ctx, ctx.cfg
        self.fixed = search_fixed(ctx.cfg.search, ctx.space)     # search.fixed: its constants are not tuned

    def __call__(self, key, prog, base_fit, st, evaluator, steps: int | None = None):
        h = self.cfg.hybrid
        free = None if self.fixed is None else self.fixed.free(np_prog(prog))
        param = Parametrization.from_program(prog, self.ctx.space, free=free)
        if param.n == 0:
            return None, WORST
        own = evaluator.refine_split(h.population)        # None: judge on the search fitness itself
        if own is not None:
            base_fit = float(own.evaluate(stack([np_prog(prog)]))[0][0])
        es = coeff_strategy(self.cfg, param.n, h.population)
        theta0 = jnp.asarray(param.theta0)
        scale = jnp.maximum(jnp.abs(theta0), 0.1)
        k0, key = jax.random.split(key)
        es_state = es.init(k0, jnp.zeros(param.n))
        best_fit, best_prog = base_fit, None
        for s in range(h.steps if steps is None else steps):
            ka, kt = jax.random.split(jax.random.fold_in(key, s))
            us, es_state = es.ask(ka, es_state)
            progs = np_prog(param.to_programs(theta0 + scale * us))
            if own is None:
                ev = evaluator.evaluate(st, progs, self.cfg.search.fec, chunk=h.population)
                fit, progs = ev.fitness, ev.programs
            else:
                fit = own.evaluate(progs)[0]
            es_state, _ = es.tell(kt, es_state, us, jnp.asarray(np.where(np.isfinite(fit), fit, -np.inf),
                                                                  jnp.float32))
            j = int(np.argmax(np.where(np.isfinite(fit), fit, -np.inf)))
            if np.isfinite(fit[j]) and fit[j] > best_fit:
                best_fit, best_prog = float(fit[j]), index(progs, j)
        if best_prog is None or own is None:
            return best_prog, best_fit
        ev = evaluator.evaluate(st, stack([best_prog]), self.cfg.search.fec, chunk=1)
        return best_prog, float(ev.fitness[0])


class MetaGradRefine:
    def __init__(self, ctx):
        self.ctx, self.cfg = ctx, ctx.cfg
        self._built = None
        self.fixed = search_fixed(ctx.cfg.search, ctx.space)

    def _mg(self):
        if self._built is None:
            space = self.ctx.space
            generic = Parametrization.from_program(space.empty(), space, all_constants=True)
            mg, batch = build_metagrad(self.ctx, generic)
            self._built = (mg, batch, jax.jit(lambda k, s, b, base: mg.update(k, s, b, base=base)))
        return self._built

    def __call__(self, key, prog, base_fit, st, evaluator, steps: int | None = None):
        param = Parametrization.from_program(prog, self.ctx.space, all_constants=True)
        mg, batch, upd = self._mg()
        ms = mg.init(param.theta0)
        base = jax.tree.map(jnp.asarray, np_prog(prog))
        n_steps = self.cfg.hybrid.steps if steps is None else steps
        for s in range(n_steps):
            ms, _ = upd(jax.random.fold_in(key, s), ms, batch, base)
        # steps with a non-finite meta-gradient (a rule that diverged on some instance) are skipped by MetaGrad;
        # the run's metrics count them (metagrad_skipped of metagrad_steps)
        st.counters["metagrad_steps"] = st.counters.get("metagrad_steps", 0) + n_steps
        st.counters["metagrad_skipped"] = st.counters.get("metagrad_skipped", 0) + int(ms.skipped)
        new = np_prog(param.to_program(ms.theta))
        if self.fixed is not None and self.fixed.holds(np_prog(prog)):    # the fixed part's constants stay
            new = np_prog(self.fixed.apply(new))
        ev = evaluator.evaluate(st, stack([new]), self.cfg.search.fec, chunk=1)
        fit = float(ev.fitness[0])
        return (new, fit) if fit > base_fit else (None, fit)


def make_local_search(ctx):
    return ESRefine(ctx) if ctx.cfg.hybrid.refine == "evosax" else MetaGradRefine(ctx)


__all__ = ["ESRefine", "MetaGradRefine", "make_local_search"]
