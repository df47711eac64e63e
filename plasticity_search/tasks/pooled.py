"""Classification tasks on a fixed data set, split once into a training pool and two held-out pools.

The data set is split a single time, by a fixed permutation, into
  * a training pool: the online stream of every split is drawn from it,
  * a 'select' pool: the eval set for splits 'search' and 'select',
  * a 'final' pool: the eval set for split 'final' only.

Stream: presented by epochs of shuffles of the training pool (each epoch is a new permutation drawn from the
(seed, split) generator; `steps` may be shorter or longer than one epoch), so no sample repeats within an epoch.
Eval set: `n_eval` samples of the eval pool without replacement, in an order drawn from the (seed, split) generator.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import Task, TaskData, TaskError, epoch_indices, one_hot, split_rngs

__all__ = ["Pools", "PooledTask", "permutation_split"]


class Pools(NamedTuple):
    """A fixed data set split into pools; `x_*` may be stored in any dtype (e.g. uint8), divided by `x_divisor`."""

    x_train: np.ndarray
    y_train: np.ndarray  # integer labels
    x_select: np.ndarray
    y_select: np.ndarray
    x_final: np.ndarray
    y_final: np.ndarray
    x_divisor: float = 1.0


def permutation_split(n: int, n_select: int, n_final: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, select, final) of a fixed random permutation of range(n): select and final come first."""
    if n_select + n_final >= n:
        raise TaskError(f"cannot hold out {n_select} + {n_final} of {n} samples")
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_select + n_final :], perm[:n_select], perm[n_select : n_select + n_final]


class PooledTask(Task):
    """Base class: subclasses implement `pools()` (cached; it may load data lazily)."""

    def pools(self) -> Pools:
        raise NotImplementedError

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        pools = self.pools()
        if split == "final":
            x_pool, y_pool = pools.x_final, pools.y_final
        else:
            x_pool, y_pool = pools.x_select, pools.y_select
        if len(y_pool) < self.n_eval:
            raise TaskError(f"task {self.name!r}: n_eval={self.n_eval} exceeds the {split} eval pool ({len(y_pool)})")
        stream_rng, eval_rng = split_rngs(seed, split, 2)
        i_stream = epoch_indices(stream_rng, len(pools.y_train), steps)
        i_eval = eval_rng.permutation(len(y_pool))[: self.n_eval]

        def inputs(x: np.ndarray) -> np.ndarray:
            return (x.astype(np.float32) / np.float32(pools.x_divisor)).reshape(len(x), -1)

        return TaskData(
            x_stream=inputs(pools.x_train[i_stream]),
            y_stream=one_hot(pools.y_train[i_stream], self.n_out),
            x_eval=inputs(x_pool[i_eval]),
            y_eval=one_hot(y_pool[i_eval], self.n_out),
            pc1=np.zeros(self.n_in, np.float32),
        )
