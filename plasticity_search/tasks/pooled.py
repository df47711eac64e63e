"""Classification tasks on a fixed data set, split once into a training pool and three held-out eval pools.

The data set is split a single time, by a fixed permutation, into
  * a training pool: the online stream of every split is drawn from it,
  * a 'search' pool: the eval set of split 'search' only,
  * a 'select' pool: the eval set of split 'select' only,
  * a 'final' pool: the eval set of split 'final' only.
The three eval pools are disjoint from each other and from the training pool, so a number measured on 'select'
(or 'final') never comes from an eval sample that the search scored candidates on.

Stream: presented by epochs of shuffles of the training pool (each epoch is a new permutation drawn from the
(seed, split) generator; `steps` may be shorter or longer than one epoch), so no sample repeats within an epoch.
The training pool is shared by the splits (it is training data, never scored); the streams of different splits come
from independent generators (per-split seed ranges, see `base.py`), so they present different orders and subsets.
Eval set: `n_eval` samples of the split's eval pool without replacement, in an order drawn from the (seed, split)
generator.
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
    x_search: np.ndarray
    y_search: np.ndarray
    x_select: np.ndarray
    y_select: np.ndarray
    x_final: np.ndarray
    y_final: np.ndarray
    x_divisor: float = 1.0

    def eval_pool(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the held-out eval pool of `split`."""
        return {
            "search": (self.x_search, self.y_search),
            "select": (self.x_select, self.y_select),
            "final": (self.x_final, self.y_final),
        }[split]


def permutation_split(
    n: int, n_search: int, n_select: int, n_final: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, search, select, final) of a fixed random permutation of range(n), disjoint.

    Layout of the permutation: select, final, search, then train. (Select and final come first so that they are
    the pools of earlier versions, which held out only those two; the search pool was taken from the training pool.)
    """
    held = n_search + n_select + n_final
    if min(n_search, n_select, n_final) < 0 or held >= n:
        raise TaskError(f"cannot hold out {n_search} + {n_select} + {n_final} of {n} samples")
    perm = np.random.default_rng(seed).permutation(n)
    select = perm[:n_select]
    final = perm[n_select : n_select + n_final]
    search = perm[n_select + n_final : held]
    return perm[held:], search, select, final


class PooledTask(Task):
    """Base class: subclasses implement `pools()` (cached; it may load data lazily)."""

    def pools(self) -> Pools:
        raise NotImplementedError

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        pools = self.pools()
        x_pool, y_pool = pools.eval_pool(split)
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
