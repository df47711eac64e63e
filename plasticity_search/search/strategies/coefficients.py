"""Strategies over the constants of one fixed rule structure (``coefficients.structure``).

:class:`Constants` is the shared part: the :class:`..coeffs.Parametrization`, the start ``theta0`` and the
genotype :class:`Thetas` (constant vectors; the programs are ``param.to_programs``). Constants change every
generation, so the FEC cache is bypassed.

* ``evosax`` (:class:`CoeffES`): any distribution-based evosax algorithm; each generation evaluates the ES
  population and its current mean (the last candidate).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..coeffs import coeff_es, structure_parametrization
from ..fitness import json_float
from ..state import np_prog
from .protocol import Strategy


class Thetas(NamedTuple):
    evaluated: Any              # [n_candidates, n_constants]: what the engine evaluates
    asked: Any = None           # the ES population (evaluated minus the mean), for ``tell``
    metrics: Any = None         # the meta-gradient step's diagnostics


def coeff_strategy(cfg, n: int, population: int):
    """The run's evosax algorithm (``coefficients.algorithm``) over ``n`` constants; shared, compiled once."""
    c = cfg.coefficients
    return coeff_es(c.algorithm, population, n, float(c.std_init), tuple(sorted(c.es_params.items())))


class Constants(Strategy):
    use_fec = False

    def __init__(self, ctx):
        super().__init__(ctx)
        self.param = ctx.param

    @classmethod
    def parametrization(cls, cfg):
        return structure_parametrization(cfg.coefficients.structure)

    def theta0(self) -> np.ndarray:
        c = self.cfg.coefficients
        return np.asarray(c.init if c.init is not None else self.param.theta0, np.float32)

    def initial(self, key) -> Thetas:
        return Thetas(self.theta0()[None])

    def programs(self, x: Thetas):
        return np_prog(self.param.to_programs(jnp.asarray(x.evaluated)))


class CoeffES(Constants):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.chunk = self.cfg.search.population + 1

    @property
    def es(self):
        return coeff_strategy(self.cfg, self.param.n, self.cfg.search.population)

    def init(self, key, x, ev):
        return self.es.init(key, x.evaluated[0])

    def ask(self, key, state):
        k_ask, _ = jax.random.split(key)
        mean = self.es.mean(state)
        thetas, state = self.es.ask(k_ask, state)
        return Thetas(jnp.concatenate([thetas, mean[None]], 0), thetas), state

    def tell(self, key, state, x, ev):
        _, k_tell = jax.random.split(key)
        return self.es.tell(k_tell, state, x.asked, jnp.asarray(ev.fitness[:-1], jnp.float32))[0]

    def report(self, state, x, ev):
        best, median, _ = super().report(state, x, ev)
        return best, median, {"mean_fitness": json_float(ev.fitness[-1])}


__all__ = ["Thetas", "Constants", "CoeffES", "coeff_strategy"]
