"""``metagrad``: one optax step of the meta-gradient (:mod:`..metagrad`) per generation, then the new constants
are evaluated like any candidate. :func:`build_metagrad` is shared with the hybrid's metagrad refinement."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...rate import METRIC_SIGN, InnerConfig, InnerLoop, instance_keys, task_batch
from ..fitness import json_float
from ..meta_gradient import MetaGrad
from .coefficients import Constants, Thetas


def build_metagrad(ctx, param) -> tuple[MetaGrad, tuple]:
    """(MetaGrad over ``param`` on the search tasks, its batch ((data, keys) per task))."""
    c = ctx.cfg.coefficients
    loops, batch = [], []
    for task, e in ctx.tasks["search"]:
        loops.append(InnerLoop(ctx.space, task, InnerConfig(network=ctx.network, steps=e.steps)))
        batch.append((task_batch(task, e.seed_list, "search", e.steps), instance_keys(e.seed_list, "search")))
    loss_name, fit = c.loss, ctx.fit
    if loss_name == "fitness":
        loss_fn = lambda m: -fit.per_instance(m, jnp)  # noqa: E731
    else:
        sign = float(METRIC_SIGN[loss_name])
        loss_fn = lambda m: -sign * m[loss_name]  # noqa: E731
    mg = MetaGrad(param, tuple(loops), loss_fn, c.optimizer, c.lr, c.clip_norm, c.truncation, c.meta_batch,
                  c.max_consecutive_errors)
    return mg, tuple(batch)


class MetaGradient(Constants):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.chunk = 1
        self._built = None

    def _mg(self):
        if self._built is None:
            mg, batch = build_metagrad(self.ctx, self.param)
            self._built = (mg, batch, jax.jit(mg.update))
        return self._built

    def initial(self, key) -> Thetas:
        self._mg()          # the task data before the first evaluation
        return super().initial(key)

    def init(self, key, x, ev):
        return self._mg()[0].init(x.evaluated[0])

    def ask(self, key, state):
        _, batch, update = self._mg()
        state, m = update(key, state, batch)
        return Thetas(np.asarray(state.theta)[None], metrics=m), state

    def report(self, state, x, ev):
        m = x.metrics
        return float(ev.fitness[0]), float(ev.fitness[0]), {
            "meta_loss": json_float(m["meta_loss"]), "grad_norm": json_float(m["grad_norm"]),
            "skipped": bool(m["skipped"])}


__all__ = ["MetaGradient", "build_metagrad"]
