"""``random_search``: each generation ``search.children`` fresh random programs (``search.init_terms`` terms);
nothing is learned, the archive keeps the best. The baseline every learning strategy has to beat."""
from __future__ import annotations

import jax.numpy as jnp

from ..regevo import RegularizedEvolution, jitted
from ..state import np_prog
from .protocol import Strategy


class RandomSearch(Strategy):
    def __init__(self, ctx):
        super().__init__(ctx)
        s = self.cfg.search
        self.use_fec = s.fec
        self.sampler = RegularizedEvolution(ctx.space, s.children, init_terms=s.init_terms)

    def initial(self, key):
        return np_prog(jitted(self.sampler, "initialize")(key))

    def init(self, key, x, ev):
        return jnp.asarray(len(ev.fitness), jnp.int32)          # the state: programs drawn so far

    def ask(self, key, state):
        return self.initial(key), state

    def tell(self, key, state, x, ev):
        return state + len(ev.fitness)


__all__ = ["RandomSearch"]
