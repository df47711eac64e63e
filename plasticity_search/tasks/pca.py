"""`pca`: online principal component analysis (the setting of Oja's rule).

Reference: E. Oja, "A simplified neuron model as a principal component analyzer", J. Math. Biol. 15 (1982).
Per (seed, split) a covariance C = U diag(lam) U^T is drawn: U a uniformly random orthogonal matrix (QR of a Gaussian
matrix with the sign fix), lam_i = decay**i (geometric spectrum; with decay = 0.5 the leading eigenvalue is twice the
second). Inputs x ~ N(0, C), zero mean; there are no targets (y = zeros, n_out = 1). `pc1` is the leading eigenvector
U[:, 0] (unit norm, sign chosen so that its largest-magnitude entry is positive; a rule may converge to either sign).
A rule is scored on how well its weight vector aligns with pc1; x_eval are further samples of the same distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Task, TaskData, TaskError, split_rngs

__all__ = ["PCATask"]


@dataclass(frozen=True)
class PCATask(Task):
    name: str = "pca"
    kind: str = field(default="rate", init=False)
    description: str = "online PCA (Oja): zero-mean Gaussian, random basis, spectrum decay**i (default 10-d, 0.5**i)"
    n_in: int = 10
    n_out: int = field(default=1, init=False)
    objective: str = field(default="pca", init=False)
    default_steps: int = 2000
    n_eval: int = 500
    decay: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.decay < 1.0:
            raise TaskError(f"pca decay must be in (0, 1) so that the leading eigenvalue is unique, got {self.decay}")

    def covariance(self, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(eigenvalues (n_in,), descending; orthogonal eigenvectors U (n_in, n_in) as columns) of one instance."""
        basis_rng = split_rngs(seed, split, 3)[0]
        q, r = np.linalg.qr(basis_rng.standard_normal((self.n_in, self.n_in)))
        u = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
        lead = u[:, 0]
        u[:, 0] = lead * np.sign(lead[np.argmax(np.abs(lead))])
        return self.decay ** np.arange(self.n_in), u

    def _generate(self, seed: int, split: str, steps: int) -> TaskData:
        lam, u = self.covariance(seed, split)
        mix = u * np.sqrt(lam)  # x = mix @ z, z ~ N(0, I)  =>  cov(x) = U diag(lam) U^T
        _, stream_rng, eval_rng = split_rngs(seed, split, 3)
        x_stream = (stream_rng.standard_normal((steps, self.n_in)) @ mix.T).astype(np.float32)
        x_eval = (eval_rng.standard_normal((self.n_eval, self.n_in)) @ mix.T).astype(np.float32)
        return TaskData(
            x_stream=x_stream,
            y_stream=np.zeros((steps, 1), np.float32),
            x_eval=x_eval,
            y_eval=np.zeros((self.n_eval, 1), np.float32),
            pc1=(u[:, 0] / np.linalg.norm(u[:, 0])).astype(np.float32),
        )
