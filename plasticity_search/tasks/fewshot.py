"""`digits_fewshot` / `mnist1d_fewshot`: K-way N-shot online learning episodes.

Protocol after Shervani-Tabar & Rosenbaum, "Meta-learning biologically plausible plasticity rules with random
feedback pathways", Nature Communications 14, 1805 (2023): each task instance is one episode. K classes are drawn
from the data set, labels are relabelled 0..K-1 (in the random order the classes were drawn), N training samples
per class are presented online in shuffled order (steps = K*N), and Q query samples per class (K*Q, shuffled) form
the eval set. Their EMNIST protocol is 5-way, 50 train + 10 query; the offline defaults here are K=5, N=20, Q=5.
If `steps` exceeds K*N, the support set is presented again by epochs of shuffles.

Disjoint splits: the samples of every class are split once (fixed permutation) into a 'search' pool (50 %),
a 'select' pool (25 %) and a 'final' pool (25 %); an episode of a split draws its support and query samples only
from that split's pool (support and query disjoint), with a per-split seed (see `base.py`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .base import SPLITS, Task, TaskData, TaskError, epoch_indices, one_hot, split_rngs
from .digits import load_digits_dataset
from .mnist1d import MNIST1D_ARGS, make_mnist1d

__all__ = ["FewShotTask", "FEWSHOT_DATASETS", "FEWSHOT_SPLIT_SEED"]

FEWSHOT_SPLIT_SEED = 20_230_310
_POOL_FRACTIONS = {"search": 0.5, "select": 0.25, "final": 0.25}


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    return load_digits_dataset()


def _load_mnist1d() -> tuple[np.ndarray, np.ndarray]:
    return make_mnist1d(MNIST1D_ARGS["num_samples"], MNIST1D_ARGS["seed"])


# name -> (n_in, n_classes, loader)
FEWSHOT_DATASETS = {
    "digits": (64, 10, _load_digits),
    "mnist1d": (40, 10, _load_mnist1d),
}


@functools.lru_cache(maxsize=len(FEWSHOT_DATASETS))
def _class_pools(dataset: str) -> dict[str, list[np.ndarray]]:
    """split -> per-class arrays of sample indices; the per-class split is fixed and disjoint across splits."""
    _, n_classes, load = FEWSHOT_DATASETS[dataset]
    _, y = load()
    rng = np.random.default_rng(FEWSHOT_SPLIT_SEED)
    pools: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(y == c))
        n_search = int(len(members) * _POOL_FRACTIONS["search"])
        n_select = int(len(members) * _POOL_FRACTIONS["select"])
        pools["search"].append(members[:n_search])
        pools["select"].append(members[n_search : n_search + n_select])
        pools["final"].append(members[n_search + n_select :])
    return pools


@dataclass(frozen=True)
class FewShotTask(Task):
    """K-way (`k_way`), N-shot (`n_shot`) episodes with `n_query` queries per class, on `dataset`."""

    name: str = "digits_fewshot"
    kind: str = field(default="rate", init=False)
    description: str = field(init=False)
    n_in: int = field(init=False)
    n_out: int = field(init=False)
    objective: str = field(default="classification", init=False)
    default_steps: int = field(init=False)
    n_eval: int = field(init=False)
    dataset: str = "digits"
    k_way: int = 5
    n_shot: int = 20
    n_query: int = 5

    def __post_init__(self):
        if self.dataset not in FEWSHOT_DATASETS:
            raise TaskError(f"few-shot dataset {self.dataset!r} unknown; expected one of {', '.join(FEWSHOT_DATASETS)}")
        n_in, n_classes, _ = FEWSHOT_DATASETS[self.dataset]
        if not 2 <= self.k_way <= n_classes:
            raise TaskError(f"k_way must be in [2, {n_classes}] for {self.dataset}, got {self.k_way}")
        if self.n_shot < 1 or self.n_query < 1:
            raise TaskError(f"n_shot and n_query must be >= 1, got {self.n_shot} and {self.n_query}")
        object.__setattr__(
            self,
            "description",
            f"few-shot episodes on {self.dataset}: {self.k_way}-way, {self.n_shot} shots online, "
            f"{self.n_query} queries per class (Shervani-Tabar & Rosenbaum 2023)",
        )
        object.__setattr__(self, "n_in", n_in)
        object.__setattr__(self, "n_out", self.k_way)
        object.__setattr__(self, "default_steps", self.k_way * self.n_shot)
        object.__setattr__(self, "n_eval", self.k_way * self.n_query)

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        x, _ = FEWSHOT_DATASETS[self.dataset][2]()
        pools = _class_pools(self.dataset)[split]
        need = self.n_shot + self.n_query
        smallest = min(len(p) for p in pools)
        if smallest < need:
            raise TaskError(
                f"task {self.name!r}: n_shot + n_query = {need} exceeds the smallest per-class "
                f"{split} pool ({smallest})"
            )
        episode_rng, stream_rng, eval_rng = split_rngs(seed, split, 3)
        classes = episode_rng.choice(len(pools), self.k_way, replace=False)
        support, query = [], []
        for c in classes:
            chosen = episode_rng.choice(pools[c], need, replace=False)
            support.append(chosen[: self.n_shot])
            query.append(chosen[self.n_shot :])
        support_x = x[np.concatenate(support)]
        support_y = np.repeat(np.arange(self.k_way), self.n_shot)  # relabelled 0..K-1
        query_x = x[np.concatenate(query)]
        query_y = np.repeat(np.arange(self.k_way), self.n_query)

        i_stream = epoch_indices(stream_rng, len(support_y), steps)
        i_eval = eval_rng.permutation(len(query_y))
        return TaskData(
            x_stream=support_x[i_stream].astype(np.float32),
            y_stream=one_hot(support_y[i_stream], self.k_way),
            x_eval=query_x[i_eval].astype(np.float32),
            y_eval=one_hot(query_y[i_eval], self.k_way),
            pc1=np.zeros(self.n_in, np.float32),
        )
