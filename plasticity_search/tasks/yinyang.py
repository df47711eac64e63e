"""`yinyang`: the Yin-Yang classification data set.

Reference: L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", NICE 2022, arXiv:2102.08211
(github.com/lkriener/yin_yang_data_set). Points (x, y) are drawn uniformly in the disk of radius `r_big` centred at
(r_big, r_big) and labelled by the reference `which_class`: 2 ("dot") inside either small circle of radius `r_small`
centred at (0.5 r_big, r_big) and (1.5 r_big, r_big); otherwise 1 where the reference's `is_yin` criterion holds and
0 elsewhere. As in the reference, classes are balanced by rejection sampling: each sample first draws its goal class
uniformly from {0, 1, 2}, then points are drawn until one of that class comes up. Inputs are (x, y, 1-x, 1-y), so
n_in = 4 and, with r_big = 0.5, all inputs lie in [0, 1].

Procedural: stream and eval set are fresh samples from per-(seed, split) generators (disjoint seed ranges per split).
Defaults follow the reference sizes: 5000 training samples (steps), 1000 test samples (n_eval).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Task, TaskData, one_hot, split_rngs

__all__ = ["YinYangTask", "yinyang_class", "yinyang_points"]


def yinyang_class(x: np.ndarray, y: np.ndarray, r_small: float = 0.1, r_big: float = 0.5) -> np.ndarray:
    """Vectorised reference `which_class` (points assumed inside the big circle)."""
    d_right = np.hypot(x - 1.5 * r_big, y - r_big)
    d_left = np.hypot(x - 0.5 * r_big, y - r_big)
    is_yin = (
        (d_right <= r_small)
        | ((d_left > r_small) & (d_left <= 0.5 * r_big))
        | ((y > r_big) & (d_right > 0.5 * r_big))
    )
    is_dot = (d_right < r_small) | (d_left < r_small)
    return np.where(is_dot, 2, is_yin.astype(np.int64))


def yinyang_points(
    rng: np.random.Generator, n: int, r_small: float = 0.1, r_big: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2) and labels (n,), balanced by rejection sampling towards uniformly drawn goal classes."""
    goals = rng.integers(3, size=n)
    xy = np.empty((n, 2))
    for c in range(3):
        slots = np.flatnonzero(goals == c)
        found: list[np.ndarray] = []
        n_found = 0
        while n_found < len(slots):
            cand = rng.random((max(256, 8 * (len(slots) - n_found)), 2)) * 2.0 * r_big
            inside = np.hypot(cand[:, 0] - r_big, cand[:, 1] - r_big) <= r_big
            cand = cand[inside]
            cand = cand[yinyang_class(cand[:, 0], cand[:, 1], r_small, r_big) == c]
            found.append(cand)
            n_found += len(cand)
        xy[slots] = np.concatenate(found)[: len(slots)]
    return xy, goals


@dataclass(frozen=True)
class YinYangTask(Task):
    name: str = "yinyang"
    kind: str = field(default="rate", init=False)
    description: str = "Yin-Yang (Kriener et al. 2021), inputs (x, y, 1-x, 1-y), 3 balanced classes"
    n_in: int = field(default=4, init=False)
    n_out: int = field(default=3, init=False)
    objective: str = field(default="classification", init=False)
    default_steps: int = 5000
    n_eval: int = 1000
    r_small: float = 0.1
    r_big: float = 0.5

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        stream_rng, eval_rng = split_rngs(seed, split, 2)

        def draw(rng, n):
            xy, c = yinyang_points(rng, n, self.r_small, self.r_big)
            x = np.concatenate([xy, 1.0 - xy], axis=1).astype(np.float32)
            return x, one_hot(c, 3)

        x_stream, y_stream = draw(stream_rng, steps)
        x_eval, y_eval = draw(eval_rng, self.n_eval)
        return TaskData(x_stream, y_stream, x_eval, y_eval, np.zeros(4, np.float32))
