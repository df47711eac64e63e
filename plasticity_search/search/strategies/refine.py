"""Local search for evolution (``hybrid``): refine the constants of one program, as hal-cgp's ``local_search``.

A local search is a callable ``(key, program, fitness, search_state, evaluator) -> (program or None, fitness)``;
every program it tries is evaluated through the evaluator (FEC cache, archive). :class:`..evolution.Evolution`
decides which members it gets and writes an improvement back (Lamarckian).

* ``hybrid.refine: evosax``: ``hybrid.steps`` generations of the evosax algorithm (population
  ``hybrid.population``) over the program's live constants, as relative perturbations of their current values;
* ``hybrid.refine: metagrad``: ``hybrid.steps`` meta-gradient steps on every constant of the space (one compiled
  step serves all programs: the base program is an argument).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...rules.program import index, stack
from ..coeffs import Parametrization
from ..fitness import WORST
from ..state import np_prog
from .coefficients import coeff_strategy
from .metagrad import build_metagrad


class ESRefine:
    def __init__(self, ctx):
        self.ctx, self.cfg = ctx, ctx.cfg

    def __call__(self, key, prog, base_fit, st, evaluator):
        h = self.cfg.hybrid
        param = Parametrization.from_program(prog, self.ctx.space)
        if param.n == 0:
            return None, WORST
        es = coeff_strategy(self.cfg, param.n, h.population)
        theta0 = jnp.asarray(param.theta0)
        scale = jnp.maximum(jnp.abs(theta0), 0.1)
        k0, key = jax.random.split(key)
        es_state = es.init(k0, jnp.zeros(param.n))
        best_fit, best_prog = base_fit, None
        for s in range(h.steps):
            ka, kt = jax.random.split(jax.random.fold_in(key, s))
            us, es_state = es.ask(ka, es_state)
            ev = evaluator.evaluate(st, np_prog(param.to_programs(theta0 + scale * us)), self.cfg.search.fec,
                                    chunk=h.population)
            fit = ev.fitness
            es_state, _ = es.tell(kt, es_state, us, jnp.asarray(np.where(np.isfinite(fit), fit, -np.inf),
                                                                  jnp.float32))
            j = int(np.argmax(np.where(np.isfinite(fit), fit, -np.inf)))
            if np.isfinite(fit[j]) and fit[j] > best_fit:
                best_fit, best_prog = float(fit[j]), index(ev.programs, j)
        return best_prog, best_fit


class MetaGradRefine:
    def __init__(self, ctx):
        self.ctx, self.cfg = ctx, ctx.cfg
        self._built = None

    def _mg(self):
        if self._built is None:
            space = self.ctx.space
            generic = Parametrization.from_program(space.empty(), space, all_constants=True)
            mg, batch = build_metagrad(self.ctx, generic)
            self._built = (mg, batch, jax.jit(lambda k, s, b, base: mg.update(k, s, b, base=base)))
        return self._built

    def __call__(self, key, prog, base_fit, st, evaluator):
        param = Parametrization.from_program(prog, self.ctx.space, all_constants=True)
        mg, batch, upd = self._mg()
        ms = mg.init(param.theta0)
        base = jax.tree.map(jnp.asarray, np_prog(prog))
        for s in range(self.cfg.hybrid.steps):
            ms, _ = upd(jax.random.fold_in(key, s), ms, batch, base)
        new = np_prog(param.to_program(ms.theta))
        ev = evaluator.evaluate(st, stack([new]), self.cfg.search.fec, chunk=1)
        return new, float(ev.fitness[0])


def make_local_search(ctx):
    return ESRefine(ctx) if ctx.cfg.hybrid.refine == "evosax" else MetaGradRefine(ctx)


__all__ = ["ESRefine", "MetaGradRefine", "make_local_search"]
