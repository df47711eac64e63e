"""JAX, NumPy and PyTorch exports: a self-contained Python file with ``rule(<variables>, w, *, params=PARAMS)``.

The function has the semantics of ``Space.apply`` (post vectors [N] and pre vectors [M] meet as outer products,
globals are scalars, ``w``/``elig`` are [N, M]); ``PARAMS`` holds the rule's constants (term coefficients, then
instruction constants), so ``jax.grad`` / ``torch.autograd`` can tune them. Generating the torch file needs no torch.
See :mod:`plasticity_search.export.codegen`.
"""
from __future__ import annotations

from ..rules.resolve import ResolvedRule
from .codegen import array_source


def to_jax_source(rule: ResolvedRule) -> str:
    return array_source(rule, "jax")


def to_numpy_source(rule: ResolvedRule) -> str:
    return array_source(rule, "numpy")


def to_torch_source(rule: ResolvedRule) -> str:
    return array_source(rule, "torch")
