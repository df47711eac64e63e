"""`mnist1d`: MNIST-1D, a procedurally generated 40-dimensional, 10-class stand-in for MNIST.

Reference: S. Greydanus, "Scaling down deep learning" (2020), arXiv:2011.14439; package `mnist1d`.
This is an independent numpy re-implementation of the published recipe (no download, no dependency beyond numpy):
each of 10 hand-designed 1-D templates (12 points, one per digit) is
  1. padded with a random number (36..60) of zeros and linearly interpolated to 72 points,
  2. scaled by a random factor in [0.8, 1.2] and circularly translated by 0..47 points,
  3. given smooth correlated noise (Gaussian-filtered, sigma 2, scale 0.25) where it is zero, and white noise
     (scale 0.02) everywhere,
  4. sheared (a random linear ramp with slope in [-0.375, 0.375]) and linearly subsampled to 40 points.
The 5000 samples (500 per class) are shuffled and standardised by the global mean and std of the data set, as in
the reference. Hyper-parameters are the reference defaults; the random draws use our own generator, so the samples
are statistically the same as, but not bit-identical to, the reference pickle.

Split: the reference train/test split (first 4000 / last 1000 of the shuffled data); the 1000 test samples are the
'select' pool (first 500) and the 'final' pool (last 500); the last 500 reference training samples are held out as
the 'search' eval pool, so the training pool is the first 3500. See `pooled.py` for streams and eval sets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .pooled import PooledTask, Pools

__all__ = ["MNIST1DTask", "MNIST1D_ARGS", "make_mnist1d", "mnist1d_templates"]

MNIST1D_ARGS = dict(
    num_samples=5000,
    train_split=0.8,
    template_len=12,
    padding=(36, 60),
    scale_coeff=0.4,
    max_translation=48,
    corr_noise_scale=0.25,
    iid_noise_scale=2e-2,
    shear_scale=0.75,
    final_seq_length=40,
    seed=42,
)


def mnist1d_templates() -> np.ndarray:
    """The 10 digit templates (10, 12): whitened, starting at 0, divided by 6 (as in the reference)."""
    x = np.array(
        [
            [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],  # 0
            [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],  # 1
            [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],  # 2
            [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],  # 3
            [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],  # 4
            [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],  # 5
            [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],  # 6
            [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],  # 7
            [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],  # 8
            [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],  # 9
        ]
    )
    x = x - x.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    x = x - x[:, :1]
    return x / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of a signal onto n equally spaced points spanning the same interval."""
    return np.interp(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, len(x)), x)


def _gaussian_smooth(x: np.ndarray, sigma: float = 2.0, truncate: float = 4.0) -> np.ndarray:
    """1-D Gaussian filter with mirror ('reflect') boundaries, like scipy.ndimage.gaussian_filter."""
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(x, radius, mode="symmetric")
    return np.convolve(padded, taps / taps.sum(), mode="valid")


def _transform(template: np.ndarray, rng: np.random.Generator, a: dict) -> np.ndarray:
    """One random MNIST-1D sample from a template (the reference `transform`)."""
    low, high = a["padding"]
    x = np.concatenate([template + 1e-8, np.zeros(rng.integers(low, high + 1))])  # pad (eps marks the signal)
    x = _resample(x, a["template_len"] + high)  # dilate
    x = x * (1.0 + a["scale_coeff"] * (rng.random() - 0.5))  # scale
    x = np.roll(x, rng.integers(a["max_translation"]))  # translate
    signal = x != 0
    x = np.where(signal, x, _gaussian_smooth(a["corr_noise_scale"] * rng.standard_normal(len(x))))
    x = x + a["iid_noise_scale"] * rng.standard_normal(len(x))
    x = x - a["shear_scale"] * (rng.random() - 0.5) * np.linspace(-0.5, 0.5, len(x))  # shear
    return _resample(x, a["final_seq_length"])  # subsample


@functools.lru_cache(maxsize=2)
def make_mnist1d(num_samples: int = 5000, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (num_samples, 40), y int64 (num_samples,)), shuffled and standardised; read-only, cached."""
    a = dict(MNIST1D_ARGS, num_samples=num_samples, seed=seed)
    rng = np.random.default_rng(seed)
    templates = mnist1d_templates()
    per_class = num_samples // len(templates)
    xs = [_transform(templates[c], rng, a) for c in range(len(templates)) for _ in range(per_class)]
    ys = np.repeat(np.arange(len(templates)), per_class)
    order = rng.permutation(len(ys))
    x = np.stack(xs)[order]
    x = ((x - x.mean()) / x.std()).astype(np.float32)
    y = ys[order].astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@functools.lru_cache(maxsize=1)
def _mnist1d_pools() -> Pools:
    x, y = make_mnist1d(MNIST1D_ARGS["num_samples"], MNIST1D_ARGS["seed"])
    n_ref_train = int(len(y) * MNIST1D_ARGS["train_split"])
    n_select = (len(y) - n_ref_train) // 2
    n_train = n_ref_train - n_select  # the search pool (same size as select) comes out of the reference train set
    tr, sea = slice(None, n_train), slice(n_train, n_ref_train)
    sel, fin = slice(n_ref_train, n_ref_train + n_select), slice(n_ref_train + n_select, None)
    return Pools(x[tr], y[tr], x[sea], y[sea], x[sel], y[sel], x[fin], y[fin])


@dataclass(frozen=True)
class MNIST1DTask(PooledTask):
    name: str = "mnist1d"
    kind: str = field(default="rate", init=False)
    description: str = "MNIST-1D (Greydanus 2020), 40 standardised inputs, 10 classes, 3500 train / 500 / 500 / 500"
    n_in: int = field(default=40, init=False)
    n_out: int = field(default=10, init=False)
    objective: str = field(default="classification", init=False)
    default_steps: int = 4000
    n_eval: int = 500

    def pools(self) -> Pools:
        return _mnist1d_pools()
