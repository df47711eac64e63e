"""A part of every candidate that the search holds fixed (``search.fixed``): search the rest of a rule.

Jordan et al. (2021) search the reward-driven rule as ``f(R, E)`` over a given eligibility trace E; Confavreux et
al. (2020) and others search around a known term. ``search.fixed`` is such a given part, written as a formula (for
a three-factor space its eligibility: ``"delig = sy*tx - 0.01*v*v*tx"``). It is compiled into the first term slots
and instruction slots of the search space; random programs and every mutation are projected onto it (those slots
set back to the fixed values), and the constant refinement of ``hybrid`` does not tune its constants. The search
chooses the remaining slots, which may read the fixed instructions (e.g. ``v*v``). A program keeps the fixed part
as ordinary terms, so formulas, exports and the hall of fame show the whole rule.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ..rules.formula import compile_formula, parse_formula
from ..rules.program import Program, RuleError, Space

@dataclass(frozen=True)
class FixedPart:
    """The fixed slots of a space's programs and their values (tuples: hashable, a static part of a strategy)."""

    formula: str
    values: tuple               # per Program field, its full-length values (fixed slots hold the fixed part)
    n_terms: int                # term slots 0..n_terms-1 are fixed
    n_post: int                 # post instructions 0..n_post-1 are fixed
    n_pre: int

    def _mask(self, field: str, length: int) -> np.ndarray:
        n = self.n_terms if field.startswith("term_") else self.n_post if field.startswith("post_") else self.n_pre
        return np.arange(length) < n

    def apply(self, prog: Program) -> Program:
        """``prog`` (one program; JAX or numpy) with the fixed slots set to the fixed part (pure, jittable)."""
        import jax.numpy as jnp
        out = []
        for f, x, v in zip(Program._fields, prog, self.values):
            x = jnp.asarray(x)
            out.append(jnp.where(jnp.asarray(self._mask(f, x.shape[-1])), jnp.asarray(v, x.dtype), x))
        return Program(*out)

    def holds(self, prog: Program) -> bool:
        """Whether one program (numpy) carries the fixed part in the fixed slots (canonical or grown programs of
        the hall of fame may hold it elsewhere: they are the same rule, laid out differently)."""
        for f, x, v in zip(Program._fields, prog, self.values):
            x = np.asarray(x)
            m = self._mask(f, x.shape[-1])
            if not np.array_equal(x[m], np.asarray(v, x.dtype)[m]):
                return False
        return True

    def free(self, prog: Program) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term, post-instruction, pre-instruction) masks of the slots a constant refinement may tune: all of
        them when ``prog`` does not hold the fixed part in the fixed slots."""
        k, lp, lq = (int(np.shape(prog.term_on)[-1]), int(np.shape(prog.post_op)[-1]),
                     int(np.shape(prog.pre_op)[-1]))
        if not self.holds(prog):
            return np.ones(k, bool), np.ones(lp, bool), np.ones(lq, bool)
        return (~self._mask("term_on", k), ~self._mask("post_op", lp), ~self._mask("pre_op", lq))


@lru_cache(maxsize=16)
def fixed_part(formula: str, space: Space) -> FixedPart:
    """Compile ``formula`` into the first slots of ``space``. RuleError (one line) when it does not fit: more
    terms or instructions than the space has, or, in a three-factor space, a weight part (the fixed part of
    such a space is (part of) its eligibility: the weight slots are the search's)."""
    if not isinstance(formula, str) or not formula.strip():
        raise RuleError("fixed part: expected a formula, e.g. 'delig = sy*tx - 0.01*v*v*tx'")
    dw, _ = parse_formula(formula, space)
    if space.structure == "three_factor" and dw != 0:
        raise RuleError("fixed part: a three_factor space fixes (part of) the eligibility ('delig = ...'); its "
                        "weight slots are searched")
    untyped = replace(space, structure="free", weight_terms=1, m_offset=False)
    _, small = compile_formula(formula, untyped, fit=True)   # its size
    n_free_terms = space.n_terms - (space.weight_terms if space.structure == "three_factor" else 0)
    if small.n_terms > n_free_terms:
        where = "eligibility slots" if space.structure == "three_factor" else "term slots"
        raise RuleError(f"fixed part: needs {small.n_terms} terms, the space has {n_free_terms} {where}")
    if space.structure == "free" and small.n_terms >= space.n_terms:
        raise RuleError(f"fixed part: needs {small.n_terms} terms and leaves none of the space's {space.n_terms} "
                        "to the search")
    try:
        prog, _ = compile_formula(formula, space, fit=False)
    except RuleError as exc:
        raise RuleError(f"fixed part: {str(exc).splitlines()[0]}") from None
    part = FixedPart(formula, tuple(tuple(np.asarray(x).tolist()) for x in prog), small.n_terms, small.n_post,
                     small.n_pre)
    if space.structure != "free" and not part.holds(Program(*[np.asarray(x) for x in space.constrain(prog)])):
        raise RuleError("fixed part: its terms do not fit the space's typed slots (an eligibility term reads "
                        "pre x post quantities, not r or rbar directly)")
    return part


def search_fixed(search, space: Space) -> FixedPart | None:
    """The fixed part of a config's search section (``search.fixed``) in ``space``, or None."""
    return None if search.fixed is None else fixed_part(search.fixed, space)


__all__ = ["FixedPart", "fixed_part", "search_fixed"]
