"""A task of a user's own, named by import path in tests (``user_tasks:make_task``): two Gaussian blobs to tell apart
online. Only for tests/test_cli_ux.py (the directory is put on PYTHONPATH / sys.path there)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from plasticity_search.tasks import Task, TaskData
from plasticity_search.tasks.base import one_hot, split_rngs


@dataclass(frozen=True)
class BlobsTask(Task):
    name: str = "blobs"
    kind: str = field(default="rate", init=False)
    description: str = "two Gaussian blobs in n_in dimensions, online"
    n_in: int = 4
    n_out: int = 2
    objective: str = field(default="classification", init=False)
    default_steps: int = 20
    n_eval: int = 16
    separation: float = 2.0

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        centre_rng, stream_rng, eval_rng = split_rngs(seed, split, 3)
        centres = centre_rng.standard_normal((self.n_out, self.n_in)) * self.separation

        def draw(rng, n):
            labels = rng.integers(0, self.n_out, n)
            x = centres[labels] + rng.standard_normal((n, self.n_in))
            return x.astype(np.float32), one_hot(labels, self.n_out).astype(np.float32)

        xs, ys = draw(stream_rng, steps)
        xe, ye = draw(eval_rng, self.n_eval)
        return TaskData(xs, ys, xe, ye, np.zeros(self.n_in, np.float32))


def make_task() -> BlobsTask:
    return BlobsTask()


BLOBS = BlobsTask(name="blobs_instance", n_in=3)
NOT_A_TASK = 3


def returns_a_number() -> Task:       # declares a Task, returns something else
    return 42


def undeclared():                      # no return annotation: never called
    raise AssertionError("called")


def broken() -> Task:
    raise RuntimeError("the data file is missing")
