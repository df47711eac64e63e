"""`teacher_student`: online regression onto a random teacher network.

A classic setting for studying learning rules (e.g. Saad & Solla 1995; for local rules, Lillicrap et al. 2016,
"Random synaptic feedback weights support error backpropagation for deep learning", which trains on the outputs of a
random teacher network). Per (seed, split) a teacher is drawn:
    W1 ~ N(0, 1/n_in)   (n_hidden, n_in),   W2 ~ N(0, 1/n_hidden)   (n_out, n_hidden),
    y = W2 tanh(W1 x) + noise_std * N(0, 1),   x ~ N(0, I_{n_in}).
With these scalings the hidden pre-activations have unit variance (tanh moderately non-linear) and each output has
variance ~0.4. Stream and eval set are independent draws of x from the same teacher. The teacher differs between
seeds and between splits (disjoint seed ranges), so 'final' scores generalisation to unseen teachers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Task, TaskData, split_rngs

__all__ = ["TeacherStudentTask"]


@dataclass(frozen=True)
class TeacherStudentTask(Task):
    name: str = "teacher_student"
    kind: str = field(default="rate", init=False)
    description: str = "regression onto a random tanh teacher net (default 20-20-5, drawn per seed), Gaussian inputs"
    n_in: int = 20
    n_out: int = 5
    objective: str = field(default="regression", init=False)
    default_steps: int = 2000
    n_eval: int = 500
    n_hidden: int = 20
    noise_std: float = 0.0

    def teacher(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The teacher weights (W1, W2) of one (seed, split)."""
        teacher_rng = split_rngs(seed, split, 3)[0]
        w1 = teacher_rng.standard_normal((self.n_hidden, self.n_in)) / np.sqrt(self.n_in)
        w2 = teacher_rng.standard_normal((self.n_out, self.n_hidden)) / np.sqrt(self.n_hidden)
        return w1, w2

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        w1, w2 = self.teacher(seed, split)
        _, stream_rng, eval_rng = split_rngs(seed, split, 3)

        def draw(rng, n):
            x = rng.standard_normal((n, self.n_in))
            y = np.tanh(x @ w1.T) @ w2.T + self.noise_std * rng.standard_normal((n, self.n_out))
            return x.astype(np.float32), y.astype(np.float32)

        x_stream, y_stream = draw(stream_rng, steps)
        x_eval, y_eval = draw(eval_rng, self.n_eval)
        return TaskData(x_stream, y_stream, x_eval, y_eval, np.zeros(self.n_in, np.float32))
