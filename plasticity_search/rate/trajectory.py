"""The weight trajectory of one rule on one rate task: snapshots of every layer's weights during online learning.

::

    from plasticity_search import rate
    traj = rate.weight_trajectory("oja", "pca", seed=0, every=100)
    traj["update"]        # [T_snap] updates done at each snapshot: 0, 100, 200, ..., the last update
    traj["W0"]            # [T_snap, n_1, n_0 (+1 bias column)] the first layer's weights at each snapshot

The trajectory is computed by the rate inner loop itself (:class:`~.online.InnerLoop` ``init`` and ``step``) on the
data and initial weights the evaluator uses for that seed and split (:func:`~.rate_model.task_batch`,
:func:`~.rate_model.instance_keys`), so its first snapshot is the evaluator's initial weights and its last the weights
training ends with.
"""
from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .. import jit_options
from ..rules.program import RuleError
from ..limits import MAX_BATCH, MAX_STEPS, check_count, check_rate, check_run_args, check_widths
from ..rules.resolve import as_rule
from .mlp import NetworkConfig, default_network, parse_network_spec
from .online import InnerConfig, InnerLoop
from .rate_model import instance_keys, rate_task, task_batch

DEFAULT_SNAPSHOTS = 50


def trajectory_network(rule, task, network=None, feedback: str | None = None, lr: float | None = None,
                       batch_size: int | None = None) -> NetworkConfig:
    """The network a trajectory runs: a :class:`NetworkConfig` as given (``feedback``, ``lr``, ``batch_size``
    override it when given); otherwise the task's default network, or a spec string such as ``"64-100-10"``, under
    ``feedback`` (default ``fa``) with the rule's default learning rate and time constants (as ``evaluate``)."""
    lr = None if lr is None else check_rate("lr", lr, RuleError, zero=True)
    batch_size = None if batch_size is None else check_count("batch_size", batch_size, MAX_BATCH, RuleError)
    if isinstance(network, NetworkConfig):
        kw = {k: v for k, v in (("feedback", feedback), ("lr", lr), ("batch_size", batch_size)) if v is not None}
        net = network.with_(**kw) if kw else network
        check_widths("network", net.hidden, RuleError)
        return net
    if network is not None and not isinstance(network, str):
        raise RuleError(f"network must be a NetworkConfig or a spec string, got {type(network).__name__}")
    net = default_network(task.objective)
    if network:
        net = parse_network_spec(network, task.n_in, task.n_out, net)
        check_widths("network", net.hidden, RuleError)
    d = rule.defaults or {}
    return net.with_(feedback=feedback or "fa", lr=float(lr if lr is not None else d.get("lr", net.lr)),
                     batch_size=batch_size or 1, tau_mean=float(d.get("tau_mean", net.tau_mean)),
                     tau_theta=float(d.get("tau_theta", net.tau_theta)))


def weight_trajectory(rule, task, seed: int = 0, steps: int | None = None, every: int | None = None, *,
                      split: str = "final", network=None, feedback: str | None = None, lr: float | None = None,
                      batch_size: int | None = None, snapshots: int = DEFAULT_SNAPSHOTS) -> dict:
    """Every layer's weights while ``rule`` learns one instance of the rate ``task``.

    ``rule``: a resolved rule, a known rule name or a formula; ``task``: a rate task or its name; ``seed`` and
    ``split`` pick the instance (data and initial weights, as the evaluator draws them); ``steps``: samples in the
    stream (None: the task's default). A snapshot is taken before the first update, after every ``every`` updates
    (None: about ``snapshots`` snapshots in all) and after the last update. The network: see
    :func:`trajectory_network`.

    Returns ``{"update": [T_snap] int, "W0": [T_snap, n_1, n_0 (+1)], "W1": ..., ...}`` (numpy arrays; one
    ``W<l>`` per layer from the input, with the bias column last where the network has biases).
    """
    rule = as_rule(rule)
    task = rate_task(task)
    _, steps, _, _, _ = check_run_args(RuleError, steps=steps, split=split)
    if rule.model != "rate":
        raise RuleError(f"rule '{rule.name}' is a spiking rule; task '{task.name}' is a rate task")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2 ** 32:
        raise RuleError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    net = trajectory_network(rule, task, network, feedback, lr, batch_size)
    icfg = InnerConfig(network=net, steps=steps)
    data = task_batch(task, [seed], split, steps)
    key = instance_keys([seed], split)[0]
    B = net.batch_size
    n_updates = int(data.x_stream.shape[1]) // B
    if n_updates < 1:
        raise RuleError(f"the stream has {data.x_stream.shape[1]} samples: fewer than one batch of {B}")
    every = (max(1, math.ceil(n_updates / check_count("snapshots", snapshots, MAX_STEPS, RuleError)))
             if every is None else check_count("every", every, MAX_STEPS, RuleError))
    every = min(every, n_updates)
    n_chunks, rest = divmod(n_updates, every)
    xs = data.x_stream[0, : n_updates * B].reshape(n_updates, B, -1)
    ys = data.y_stream[0, : n_updates * B].reshape(n_updates, B, -1)
    loop, run = _compiled(rule.space, task, icfg, n_chunks, every)
    st0 = loop.init(key)
    Ws = run(jax.tree.map(jnp.asarray, rule.program), st0, xs, ys)
    updates = [0] + [every * (k + 1) for k in range(n_chunks)] + ([n_updates] if rest else [])
    out = {"update": np.asarray(updates, np.int64)}
    for l, (W0, Wk, Wlast) in enumerate(zip(st0.net.W, *Ws)):
        parts = [np.asarray(W0)[None], np.asarray(Wk)] + ([np.asarray(Wlast)[None]] if rest else [])
        out[f"W{l}"] = np.concatenate(parts)
    return out


@lru_cache(maxsize=8)
def _compiled(space, task, cfg: InnerConfig, n_chunks: int, every: int):
    """(loop, jit: (prog, state, xs [U, B, n_in], ys) -> (per layer [n_chunks, ...] weights after each chunk of
    ``every`` updates, per layer the final weights)), stepping with :meth:`InnerLoop.step` as :meth:`InnerLoop.run`
    does; compiled for a single use (:func:`..jit_options.one_shot`)."""
    loop = InnerLoop(space, task, cfg)

    def go(prog, st, xs, ys):
        def steps(s, d):
            return jax.lax.scan(lambda s2, d2: loop.step(prog, s2, d2[0], d2[1]), s, d)[0]

        head = n_chunks * every
        chunked = (xs[:head].reshape(n_chunks, every, *xs.shape[1:]), ys[:head].reshape(n_chunks, every, *ys.shape[1:]))
        def chunk(s, d):
            s = steps(s, d)
            return s, s.net.W

        st, Wk = jax.lax.scan(chunk, st, chunked)
        if head < xs.shape[0]:
            st = steps(st, (xs[head:], ys[head:]))
        return Wk, st.net.W

    return loop, jax.jit(go, compiler_options=jit_options.one_shot())


__all__ = ["trajectory_network", "weight_trajectory"]
