"""Meta-gradient over a rule's constants: the meta-loss is differentiated through the unrolled online inner loop.

``loss(theta) = mean over instances (tasks x seeds) of L(metrics after online training with the rule(theta))``,
with ``L`` a differentiable metric (``final_loss`` on the held-out / query set by default) or ``-fitness``.
Gradients flow through ``InnerLoop.run`` (a ``lax.scan`` over the stream): rate networks only.

* Truncated unrolls (``truncation=L``): the stream is cut into segments of L updates; the state entering a segment
  is ``stop_gradient``-ed, each segment's loss is measured at its end, and the meta-gradient is the mean of the
  segment gradients (memory and gradient variance bounded by L instead of the stream length).
* Optimizer: ``optax.apply_if_finite(optax.chain(zero_nans, clip_by_global_norm(clip), <optimizer>(lr)))``:
  a step whose gradient is non-finite (a rule that diverged on some instance) is skipped; ``metrics['skipped']``.
* ``init / update`` are pure (key first for the meta-batch subsample) and run inside ``lax.scan``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..rate.online import InnerLoop
from .coeffs import Parametrization


class MetaGradState(NamedTuple):
    theta: jax.Array        # float32 [n]
    opt_state: optax.OptState
    step: jax.Array         # int32 []
    skipped: jax.Array      # int32 [], non-finite steps skipped so far


def make_optimizer(name: str = "adam", lr: float = 0.01, clip_norm: float = 1.0,
                   max_consecutive_errors: int = 5) -> optax.GradientTransformation:
    inner = optax.chain(optax.zero_nans(), optax.clip_by_global_norm(clip_norm), getattr(optax, name)(lr))
    return optax.apply_if_finite(inner, max_consecutive_errors)


class MetaGrad:
    """Meta-gradient descent on ``theta`` of a :class:`Parametrization`, over one or more inner loops (tasks)."""

    def __init__(self, param: Parametrization, loops: tuple[InnerLoop, ...], loss_fn: Callable,
                 optimizer: str = "adam", lr: float = 0.01, clip_norm: float = 1.0,
                 truncation: int | None = None, meta_batch: int | None = None, max_consecutive_errors: int = 5):
        self.param, self.loops, self.loss_fn = param, tuple(loops), loss_fn
        self.truncation, self.meta_batch = truncation, meta_batch
        self.tx = make_optimizer(optimizer, lr, clip_norm, max_consecutive_errors)

    def init(self, theta0) -> MetaGradState:
        theta = jnp.asarray(theta0, jnp.float32)
        return MetaGradState(theta, self.tx.init(theta), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    # --- losses -------------------------------------------------------------------------------------------------
    def _task_loss_full(self, loop: InnerLoop, theta, data, keys, base=None):
        prog = self.param.to_program(theta, base)

        def one(d, k):
            st = loop.init(k)
            st, (scores, _) = loop.run(prog, st, d.x_stream, d.y_stream)
            return loop.final_metrics(st, d, scores)

        m = jax.vmap(one)(data, keys)
        return jnp.mean(self.loss_fn(m))

    def _task_value_and_grad(self, loop: InnerLoop, theta, data, keys, base=None):
        if self.truncation is None:
            return jax.value_and_grad(lambda th: self._task_loss_full(loop, th, data, keys, base))(theta)
        B = loop.cfg.network.batch_size
        T = data.x_stream.shape[1] // B * B
        L = self.truncation * B
        states = jax.vmap(loop.init)(keys)
        total_l, total_g, n = 0.0, jnp.zeros_like(theta), 0
        for start in range(0, T, L):
            stop = min(start + L, T)

            def seg_loss(th, st0, start=start, stop=stop):
                prog = self.param.to_program(th, base)

                def one(st, d):
                    st, (scores, _) = loop.run(prog, st, d.x_stream[start:stop], d.y_stream[start:stop])
                    return st, loop.final_metrics(st, d, scores)

                st1, m = jax.vmap(one)(st0, data)
                return jnp.mean(self.loss_fn(m)), st1

            (l, states), g = jax.value_and_grad(seg_loss, has_aux=True)(theta, jax.lax.stop_gradient(states))
            total_l, total_g, n = total_l + l, total_g + g, n + 1
        return total_l / n, total_g / n

    def loss_and_grad(self, key, theta, batch, base=None):
        """Mean meta-loss and its gradient over the tasks; ``batch`` = ((data, keys), ...) per inner loop."""
        losses, grads = [], []
        for i, (loop, (data, keys)) in enumerate(zip(self.loops, batch)):
            S = keys.shape[0]
            if self.meta_batch is not None and self.meta_batch < S:
                idx = jax.random.choice(jax.random.fold_in(key, i), S, (self.meta_batch,), replace=False)
                data = jax.tree.map(lambda x: x[idx], data)
                keys = keys[idx]
            l, g = self._task_value_and_grad(loop, theta, data, keys, base)
            losses.append(l)
            grads.append(g)
        return sum(losses) / len(losses), sum(grads) / len(grads)

    # --- one meta-step ------------------------------------------------------------------------------------------
    def update(self, key, state: MetaGradState, batch, base=None) -> tuple[MetaGradState, dict]:
        """One meta-step (pure). ``base``: optional program (traced) for ``all_constants`` parametrizations."""
        loss, grad = self.loss_and_grad(key, state.theta, batch, base)
        finite = jnp.isfinite(loss) & jnp.all(jnp.isfinite(grad))
        grad = jnp.where(finite, grad, jnp.nan)        # a non-finite loss also skips the step
        updates, opt_state = self.tx.update(grad, state.opt_state, state.theta)
        theta = optax.apply_updates(state.theta, updates)
        new = MetaGradState(theta.astype(jnp.float32), opt_state, state.step + 1,
                            state.skipped + (~finite).astype(jnp.int32))
        return new, {"meta_loss": loss, "grad_norm": optax.tree.norm(grad), "skipped": ~finite}


__all__ = ["MetaGrad", "MetaGradState", "make_optimizer"]
