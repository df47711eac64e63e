"""`digits`: online classification of the scikit-learn 8x8 handwritten digits.

Data: `sklearn.datasets.load_digits` (1797 images of 8x8 pixels with values 0..16, 10 classes; the UCI "Optical
Recognition of Handwritten Digits" test set, Alpaydin & Kaynak 1998), shipped with scikit-learn, no download.
Inputs are the 64 pixels divided by 16 (so in [0, 1]); targets are one-hot over 10 classes.

Split (fixed permutation, seed `DIGITS_SPLIT_SEED`): three disjoint eval pools of 250 samples each, 'search',
'select' and 'final' (750 held out, ~42 %); the other 1047 form the training pool. See `pooled.py` for how streams
and eval sets are drawn.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .pooled import PooledTask, Pools, permutation_split

__all__ = ["DigitsTask", "load_digits_dataset", "DIGITS_SPLIT_SEED"]

DIGITS_SPLIT_SEED = 20_231_108


@functools.lru_cache(maxsize=1)
def load_digits_dataset() -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (1797, 64) in [0, 1], y int64 (1797,)) from scikit-learn; read-only, cached."""
    from sklearn.datasets import load_digits  # local import: scikit-learn is slow to import

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@functools.lru_cache(maxsize=4)
def _digits_pools(n_search: int, n_select: int, n_final: int) -> Pools:
    x, y = load_digits_dataset()
    train, search, select, final = permutation_split(len(y), n_search, n_select, n_final, DIGITS_SPLIT_SEED)
    return Pools(x[train], y[train], x[search], y[search], x[select], y[select], x[final], y[final])


@dataclass(frozen=True)
class DigitsTask(PooledTask):
    name: str = "digits"
    kind: str = field(default="rate", init=False)
    description: str = "scikit-learn 8x8 digits, 64 inputs in [0,1], 10 classes, online (epochs of shuffles)"
    n_in: int = field(default=64, init=False)
    n_out: int = field(default=10, init=False)
    objective: str = field(default="classification", init=False)
    default_steps: int = 1000
    n_eval: int = 250

    def pools(self) -> Pools:
        return _digits_pools(250, 250, 250)
