"""Functional-equivalence hashing (AutoML-Zero's FEC cache).

Two programs that compute the same weight update on a fixed probe batch (random local quantities, fixed seed)
get the same hash, so a child equal to an already evaluated program can reuse its fitness.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .program import Program, Space

PROBE_POST, PROBE_PRE = 7, 5


@lru_cache(maxsize=64)
def _probe(space: Space, seed: int = 12345):
    rng = np.random.default_rng(seed)
    n_post = len(space.post_vars) + len(space.global_vars)
    n_pre = len(space.pre_vars) + len(space.global_vars)
    post = rng.normal(size=(n_post, PROBE_POST)).astype(np.float32)
    pre = rng.normal(size=(n_pre, PROBE_PRE)).astype(np.float32)
    # globals are the same scalar on both sides
    for j in range(len(space.global_vars)):
        g = rng.normal()
        post[len(space.post_vars) + j] = g
        pre[len(space.pre_vars) + j] = g
    w = rng.normal(size=(PROBE_POST, PROBE_PRE)).astype(np.float32)
    elig = rng.normal(size=(PROBE_POST, PROBE_PRE)).astype(np.float32)
    return post, pre, w, elig


@lru_cache(maxsize=64)
def _probe_fn(space: Space):
    post, pre, w, elig = (jnp.asarray(x) for x in _probe(space))

    def one(prog):
        P, Q = space.term_vectors(prog, space.post_registers(prog, post), space.pre_registers(prog, pre))
        return space.combine(prog, P, Q, w, elig)

    return jax.jit(jax.vmap(one))


def probe_outputs(pop: Program, space: Space) -> tuple[np.ndarray, np.ndarray]:
    """(dW, dElig) of every program in the population on the probe batch, [P, 7, 5] each."""
    dw, de = _probe_fn(space)(pop)
    return np.asarray(dw), np.asarray(de)


def _quantize(x: np.ndarray, bits: int = 14) -> np.ndarray:
    x = np.asarray(x, np.float64)
    finite = np.isfinite(x)
    mant, expo = np.frexp(np.where(finite, x, 0.0))
    q = np.round(mant * (1 << bits)).astype(np.int64)
    # values within rounding noise of zero hash as zero
    tiny = np.abs(x) < 1e-6
    q = np.where(tiny, 0, q)
    expo = np.where(tiny, 0, expo).astype(np.int64)
    sign = np.sign(np.where(np.isnan(x), 0.0, x)).astype(np.int64)        # (NaN has no sign to cast)
    q = np.where(finite, q, np.where(np.isnan(x), 7 << 40, sign << 41))
    return np.stack([q, expo], -1)


def fec_hashes(pop: Program, space: Space) -> list[str]:
    """One hex digest per program in the population (the quantisation runs on the whole batch at once; each
    program's bytes are those of ``_quantize(dw[i])``)."""
    dw, de = probe_outputs(pop, space)
    qw = np.ascontiguousarray(_quantize(dw))
    qe = np.ascontiguousarray(_quantize(de)) if space.elig else None
    out = []
    for i in range(dw.shape[0]):
        h = hashlib.blake2b(qw[i].tobytes(), digest_size=12)
        if qe is not None:
            h.update(qe[i].tobytes())
        out.append(h.hexdigest())
    return out
