"""Task API: a `Task` is static configuration; `Task.sample(seed, split)` returns one `TaskData` instance.

Modelled on learned_optimization `tasks/base.py` (a task is a recipe, the data come from a seed) and on AutoML-Zero's
separate search / select / final task sets (`run_demo.sh`): every task samples from three disjoint splits, so that a
number reported on 'final' never comes from data that the search or the model selection has seen.

Splits and seeds
----------------
* 'search': the data a rule search trains and scores candidates on.
* 'select': used to pick among the best candidates (hall of fame re-ranking, early stopping).
* 'final':  reported numbers only.

Seeds are integers in ``[0, MAX_SEED)``. All randomness of one instance comes from
``numpy.random.SeedSequence(seed + SPLIT_OFFSETS[split])``, so procedural tasks (pca, teacher_student, yinyang) use
disjoint seed ranges per split, and the same (seed, split, steps) always gives bit-identical arrays.
Tasks built on a fixed data set (digits, mnist1d, idx) additionally split the samples once, with a fixed permutation,
into a training pool and three disjoint held-out eval pools, one per split (see `pooled.py`); few-shot episodes draw
each split's support and query samples from a disjoint third of every class (see `fewshot.py`).

Everything here is plain numpy (float32 arrays); the inner loop converts to JAX arrays itself.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

__all__ = [
    "CURVE_METRIC",
    "CURVE_POINTS",
    "MAX_SEED",
    "OBJECTIVES",
    "SPLITS",
    "SPLIT_OFFSETS",
    "Task",
    "TaskData",
    "TaskError",
    "check_seed",
    "check_split",
    "epoch_indices",
    "one_hot",
    "split_rngs",
]

SPLITS = ("search", "select", "final")
SPLIT_OFFSETS = {"search": 0, "select": 1_000_003, "final": 2_000_003}
MAX_SEED = 1_000_003  # seeds live in [0, MAX_SEED) so that the per-split seed ranges never overlap
OBJECTIVES = ("classification", "regression", "pca")


class TaskError(ValueError):
    """A task name, path, argument or file is invalid. The message is one line, meant for the user."""


class TaskData(NamedTuple):
    """One task instance; all fields are float32 numpy arrays."""

    x_stream: np.ndarray  # (steps, n_in) online training stream, in presentation order
    y_stream: np.ndarray  # (steps, n_out) one-hot (classification), real (regression), zeros (pca)
    x_eval: np.ndarray  # (n_eval, n_in) held-out evaluation inputs
    y_eval: np.ndarray  # (n_eval, n_out)
    pc1: np.ndarray  # (n_in,) unit-norm first principal component of the input distribution (pca); zeros otherwise


class Instances(NamedTuple):
    """Task instances as a model evaluates them (the evaluator contract, :mod:`plasticity_search.models`): the
    task's :class:`TaskData` stacked over S seeds (arrays with a leading axis S) and the S instance keys (JAX PRNG
    keys; how a key derives from (seed, split) is the model's)."""

    data: TaskData
    keys: object


# the inner loops' learning curves (rate: rate/online.py; spiking: spiking/online_curves.py): how many windows of the
# training stream, and what they measure, by objective
CURVE_POINTS = 20
CURVE_METRIC = {"classification": "online accuracy", "regression": "online MSE", "pca": "PC1 alignment",
                "detection": "online detection (hits - false alarms)", "reward": "rewarded trials (fraction)"}


@dataclass(frozen=True)
class Task:
    """Static, hashable description of a task family; one per registered name.

    Subclasses implement `_generate(seed, split, steps) -> TaskData`; `sample` validates the arguments before and
    the shapes after. Subclasses usually re-declare the fields with defaults (and `field(init=False)` for the ones
    that follow from the others), so that `SomeTask()` gives the registered configuration.
    """

    name: str
    kind: str  # 'rate' or 'spiking'
    description: str  # one line, shown by `plasticity-search tasks`
    n_in: int
    n_out: int
    objective: str  # rate tasks: one of OBJECTIVES; other kinds may define their own
    default_steps: int
    n_eval: int

    @property
    def steps_unit(self) -> str:
        """What one of the task's ``steps`` is (the x axis of its learning curves)."""
        return "online updates"

    @property
    def curve_metric(self) -> str:
        """What the task's learning curves measure (:data:`CURVE_METRIC` by objective)."""
        return CURVE_METRIC.get(self.objective, "score")

    def sample(self, seed: int, split: str, steps: int | None = None) -> TaskData:
        """Sample one instance: the online stream of `steps` (default `default_steps`) samples and the eval set."""
        seed = check_seed(seed)
        split = check_split(split)
        steps = self.default_steps if steps is None else _check_steps(steps)
        data = self._generate(seed, split, steps)
        self._check_data(data, steps)
        return data

    def sample_batch(self, seeds: Sequence[int], split: str, steps: int | None = None) -> TaskData:
        """`sample` for each seed, stacked along a new leading axis (ready for `jax.vmap` over seeds)."""
        seeds = list(seeds)
        if not seeds:
            raise TaskError(f"task {self.name!r}: sample_batch needs at least one seed")
        items = [self.sample(s, split, steps) for s in seeds]
        return TaskData(*(np.stack(arrays) for arrays in zip(*items)))

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        raise NotImplementedError(f"{type(self).__name__} must implement _generate(seed, split, steps)")

    def _check_data(self, data: TaskData, steps: int) -> None:
        expected = TaskData(
            x_stream=(steps, self.n_in),
            y_stream=(steps, self.n_out),
            x_eval=(self.n_eval, self.n_in),
            y_eval=(self.n_eval, self.n_out),
            pc1=(self.n_in,),
        )
        for field_name, array, shape in zip(TaskData._fields, data, expected):
            if array.shape != shape or array.dtype != np.float32:
                raise TaskError(
                    f"task {self.name!r}: {field_name} is {array.dtype}{list(array.shape)}, "
                    f"expected float32{list(shape)}"
                )


def check_seed(seed: int) -> int:
    """Return `seed` as a Python int, or raise TaskError unless it is an integer in [0, MAX_SEED)."""
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TaskError(f"seed must be an integer, got {seed!r}") from None
    if not 0 <= seed < MAX_SEED:
        raise TaskError(f"seed must be in [0, {MAX_SEED}), got {seed}")
    return seed


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise TaskError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def _check_steps(steps: int) -> int:
    try:
        steps = operator.index(steps)
    except TypeError:
        raise TaskError(f"steps must be an integer, got {steps!r}") from None
    if steps < 1:
        raise TaskError(f"steps must be >= 1, got {steps}")
    return steps


def split_rngs(seed: int, split: str, n: int) -> list[np.random.Generator]:
    """`n` independent generators for one (seed, split), e.g. [task parameters, stream, eval].

    Separate generators keep e.g. the eval set independent of the number of stream steps.
    """
    root = np.random.SeedSequence(check_seed(seed) + SPLIT_OFFSETS[check_split(split)])
    return [np.random.default_rng(child) for child in root.spawn(n)]


def epoch_indices(rng: np.random.Generator, pool_size: int, steps: int) -> np.ndarray:
    """`steps` indices into a pool, presented by epochs: each epoch is a fresh random permutation of the pool."""
    n_epochs = -(-steps // pool_size)
    return np.concatenate([rng.permutation(pool_size) for _ in range(n_epochs)])[:steps]


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """float32 one-hot rows for integer labels in [0, n_classes)."""
    return np.eye(n_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
