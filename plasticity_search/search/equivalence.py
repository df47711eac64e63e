"""Is a found rule a known rule up to a positive factor? (The rediscovery criterion of BENCHMARKS.md.)

Numerically: both rules are applied to the same random local quantities (by variable name; a variable one rule
does not read is still drawn); ``dW_found = k * dW_known`` must hold with ``k > 0`` and a relative residual below
``rtol``. Symbolically: ``simplify(found / known)`` must be a positive number (reported alongside).
"""
from __future__ import annotations

import numpy as np

from ..rules.formula import compile_formula, to_sympy
from ..rules.program import Program, Space
from ..rules.known import RATE_SPACE, RULES
from ..rules.variables import VARIABLES


def _compile_known(formula: str):
    if formula in RULES:
        return RULES[formula].compile()
    return compile_formula(formula, RATE_SPACE)


def positive_factor(prog: Program, space: Space, known: str, n_post: int = 9, n_pre: int = 7,
                    seed: int = 0) -> tuple[float, float]:
    """(k, relative residual) of the least-squares fit dW_found ~ k dW_known on random probe values."""
    import jax.numpy as jnp
    kprog, kspace = _compile_known(known)
    rng = np.random.default_rng(seed)
    values = {}
    for name, v in VARIABLES.items():
        if v.side == "post":
            values[name] = rng.normal(size=n_post).astype(np.float32)
        elif v.side == "pre":
            values[name] = rng.normal(size=n_pre).astype(np.float32)
        elif v.side == "global":
            values[name] = np.float32(rng.normal())
    w = rng.normal(size=(n_post, n_pre)).astype(np.float32)
    a = np.asarray(space.apply(prog, values, jnp.asarray(w))[0], np.float64).ravel()
    b = np.asarray(kspace.apply(kprog, values, jnp.asarray(w))[0], np.float64).ravel()
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or not np.any(b):
        return float("nan"), float("inf")
    k = float(a @ b / (b @ b))
    res = float(np.linalg.norm(a - k * b) / max(np.linalg.norm(a), 1e-30))
    return k, res


def equivalent_up_to_positive_factor(prog: Program, space: Space, known: str, rtol: float = 1e-3) -> bool:
    k, res = positive_factor(prog, space, known)
    return bool(np.isfinite(k) and k > 0 and res <= rtol)


def symbolic_ratio(prog: Program, space: Space, known: str):
    """sympy: simplify(found / known) (a positive number when the rules agree up to a positive factor)."""
    import sympy as sp

    kprog, kspace = _compile_known(known)
    found, ref = to_sympy(prog, space), to_sympy(kprog, kspace)
    if isinstance(found, tuple) or isinstance(ref, tuple) or ref == 0:
        return None
    return sp.simplify(found / ref)


__all__ = ["positive_factor", "equivalent_up_to_positive_factor", "symbolic_ratio"]
