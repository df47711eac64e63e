"""Canonical programs and nice constants, for the hall of fame.

* :func:`canonical`: the program recompiled from its simplified formula when that computes the same update and is
  no more complex (equal formulas get equal complexity);
* :func:`expanded`: the program recompiled from its expanded formula, one term per monomial with a coefficient of
  its own (what a final refinement tunes: ``k*e*(e_pre - x)`` becomes ``a*e*e_pre - b*e*x``, two free constants);
* :func:`snap_variants`: rounded versions of a program's constants, nicest first (``hall_of_fame.snap``).
"""
from __future__ import annotations

import numpy as np

from ..rules.program import Program, Space, complexity, dce, stack
from .state import np_prog as _np_prog


def _recompiled(prog: Program, space: Space, rewrite, rtol: float) -> tuple[Program, Program | None]:
    """(the DCE'd program, the program recompiled from ``rewrite``-ed sympy of its update when that compiles in
    ``space`` and computes the same update on the probe batch, else None)."""
    from ..rules.fec import probe_outputs
    from ..rules.formula import from_sympy, to_sympy_raw
    from ..rules.program import RuleError
    prog = dce(_np_prog(prog), space)
    try:
        dw, de = to_sympy_raw(prog, space, digits=9)
        cand, _ = from_sympy(rewrite(dw), rewrite(de), space, fit=False)
    except (RuleError, TypeError, ValueError, ZeroDivisionError):
        return prog, None
    cand = dce(_np_prog(cand), space)
    a, b = probe_outputs(stack([prog, cand]), space)[0]
    if not (np.all(np.isfinite(a)) and np.allclose(a, b, rtol=rtol, atol=rtol * (np.abs(a).max() + 1e-30))):
        return prog, None
    return prog, cand


def canonical(prog: Program, space: Space, rtol: float = 1e-5) -> Program:
    """The program recompiled from its simplified formula when that is no more complex and computes the same
    update on the probe batch (so equal formulas get equal complexity); otherwise the DCE'd program."""
    from ..rules.formula import simplify_expr
    prog, cand = _recompiled(prog, space, simplify_expr, rtol)
    return cand if cand is not None and complexity(cand, space) <= complexity(prog, space) else prog


def expanded(prog: Program, space: Space, rtol: float = 1e-5) -> Program:
    """The program recompiled from its expanded formula (a sum of monomials, each its own term and coefficient)
    when that fits ``space`` and computes the same update on the probe batch; otherwise ``prog``."""
    import sympy
    prog, cand = _recompiled(prog, space, sympy.expand, rtol)
    return prog if cand is None else cand


def grown(prog: Program, space: Space, scale, swap: bool = False) -> list[Program]:
    """Expanded versions of ``prog`` with one more monomial ``+-scale * P * Q`` (P: 1 or a post variable, Q: 1 or
    a pre variable, synapse factor 1), one per monomial it lacks, sign and scale (``scale``: a number or a
    sequence of them), that fit ``space``: the structural step of a final refinement (the added term's constant
    is then tuned with the others). With ``swap`` the variants instead replace one of its monomials by one it
    lacks (for a program that has as many monomials as the space has terms, where no monomial can be added)."""
    return [p for _, p in grown_keyed(prog, space, scale, swap)]


def grown_keyed(prog: Program, space: Space, scale, swap: bool = False) -> list[tuple[tuple, Program]]:
    """:func:`grown` with each variant's structure: (the monomial dropped or None, the monomial added, its sign),
    equal for the variants that differ only in the added constant's size."""
    import sympy

    from ..rules.formula import from_sympy, symbol, to_sympy_raw
    from ..rules.program import RuleError
    try:
        dw, de = to_sympy_raw(dce(_np_prog(prog), space), space, digits=9)
    except (RuleError, TypeError, ValueError, ZeroDivisionError):
        return []
    dw, de = sympy.expand(dw), sympy.expand(de)
    present = dw.as_coefficients_dict()
    bases = [(None, dw)] if not swap else [(str(m), dw - c * m) for m, c in present.items()]
    scales = [float(scale)] if np.ndim(scale) == 0 else [float(v) for v in scale]
    out = []
    for dropped, base in bases:
        for p_name in ("1",) + tuple(space.post_vars):
            for q_name in ("1",) + tuple(space.pre_vars):
                m = (sympy.Integer(1) if p_name == "1" else symbol(p_name)) * \
                    (sympy.Integer(1) if q_name == "1" else symbol(q_name))
                if m in present:
                    continue
                for sign in (1.0, -1.0):
                    for size in scales:
                        try:
                            cand, _ = from_sympy(sympy.expand(base + sign * size * m), de, space, fit=False)
                        except (RuleError, TypeError, ValueError, ZeroDivisionError):
                            continue
                        out.append(((dropped, str(m), sign), dce(_np_prog(cand), space)))
    return out


THIRD_FACTOR_GROW = (1.0, 0.5, 0.25)    # sizes of a grown third-factor read, times the largest weight-slot constant


def grown_third_factor_keyed(prog: Program, space: Space,
                             factors=THIRD_FACTOR_GROW) -> list[tuple[tuple, Program]]:
    """The structural step of a 'three_factor' space (where :func:`grown` does not apply: its dw is M * elig):
    ``prog`` with its third factor grown by one read, ``M +- f*c*X`` for each global X (and the constant 1 with
    ``space.m_offset``) that no active weight slot reads, ``c`` the largest constant of its weight slots and ``f``
    each of ``factors`` (a baseline is about as large as the reward it offsets); when every weight slot is in use,
    one of M's reads is swapped for X instead. Each variant is keyed by (the read dropped or None, X, sign) as
    :func:`grown_keyed` and typed as the space's programs (a read of 1 never in the last slot, which stays on);
    e.g. ``c*r*elig`` -> ``c*(r - 1)*elig``, a reward with a constant baseline."""
    from ..rules.program import TARGET_W
    if space.structure != "three_factor":
        return []
    prog = _np_prog(prog)
    K, J = space.n_terms, space.weight_terms
    slots = list(range(K - J, K))
    on = np.asarray(prog.term_on)
    names = space.register_names("post")
    n_pv = len(space.post_vars)
    have = [(int(prog.term_p[k]), float(prog.term_coef[k])) for k in slots if on[k]]
    c = max([abs(v) for _, v in have] + [1e-3])
    reads = ([0] if space.m_offset else []) + [1 + n_pv + g for g in range(len(space.global_vars))]
    full = len(have) == J
    i_elig = space.syn.index("elig")
    bases = [(names[have[d][0]], have[:d] + have[d + 1:]) for d in range(len(have))] if full else [(None, have)]
    out = []
    for dropped, kept in bases:
        for reg in reads:
            if reg in {p for p, _ in kept} or (dropped is not None and names[reg] == dropped):
                continue
            for sign in (1.0, -1.0):
                for f in factors:
                    entries = sorted(kept + [(reg, sign * c * float(f))], key=lambda e: e[0] != 0)  # 1 first
                    if entries[-1][0] == 0:
                        continue                                  # M would be a constant: not a third factor
                    cand = prog._replace(**{k: np.array(getattr(prog, k)) for k in (
                        "term_on", "term_p", "term_q", "term_s", "term_coef", "term_tgt")})
                    cand.term_on[slots] = False
                    for k, (p, v) in zip(slots[J - len(entries):], entries):
                        cand.term_on[k], cand.term_p[k], cand.term_q[k] = True, p, 0
                        cand.term_s[k], cand.term_tgt[k] = i_elig, TARGET_W
                        cand.term_coef[k] = np.float32(v)
                    out.append(((dropped, names[reg], sign), cand))
    return out


# --------------------------------------------------------------------------------------------------------------
# nice constants
# --------------------------------------------------------------------------------------------------------------
_NICE_RATIOS = np.array([0.0, 0.1, 0.2, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0])


def _round_sig(x: float, digits: int) -> float:
    if x == 0 or not np.isfinite(x):
        return 0.0
    return float(f"{x:.{digits}g}")


def _nice_ratio(r: float) -> float:
    s = np.sign(r)
    return float(s * _NICE_RATIOS[np.argmin(np.abs(_NICE_RATIOS - abs(r)))])


def snap_variants(prog: Program, space: Space, free: tuple | None = None) -> list[Program]:
    """Rounded versions of a program's live constants, nicest first: coefficients as nice ratios of the largest
    (rounded to 1 then 2 significant digits), then every constant to 2 significant digits. ``free``: (term,
    post-instruction, pre-instruction) masks of the slots whose constants may be rounded (a search's fixed part
    keeps its own: :meth:`.fixed.FixedPart.free`); None: all."""
    from ..rules.ops import OP_BY_NAME
    from ..rules.program import liveness
    prog = _np_prog(prog)
    live_post, live_pre, terms = liveness(prog, space)
    if free is not None:
        terms, live_post, live_pre = terms & free[0], live_post & free[1], live_pre & free[2]
    t_idx = np.nonzero(terms)[0]
    if len(t_idx) == 0:
        return []
    coef = prog.term_coef[t_idx].astype(np.float64)
    big = coef[np.argmax(np.abs(coef))]

    def with_consts(new_coef, const_fn):
        p = {f: np.array(getattr(prog, f)) for f in Program._fields}
        p["term_coef"][t_idx] = new_coef
        for side, live in (("post", live_post), ("pre", live_pre)):
            for i in np.nonzero(live)[0]:
                if OP_BY_NAME[space.ops[int(p[f"{side}_op"][i])]].uses_const:
                    p[f"{side}_c"][i] = const_fn(float(p[f"{side}_c"][i]))
        return Program(**{k: v.astype(getattr(prog, k).dtype) for k, v in p.items()})

    ratios = np.array([_nice_ratio(c / big) for c in coef])
    out = []
    for digits in (1, 2):
        out.append(with_consts(_round_sig(big, digits) * ratios, lambda c: _nice_ratio_const(c)))
    out.append(with_consts(np.array([_round_sig(c, 2) for c in coef]), lambda c: _round_sig(c, 2)))
    uniq, seen = [], set()
    for p in out:
        key = tuple(np.asarray(x).tobytes() for x in p)
        if key not in seen and key != tuple(np.asarray(x).tobytes() for x in prog):
            seen.add(key)
            uniq.append(p)
    return uniq


def _nice_ratio_const(c: float) -> float:
    """Instruction constants: the nearest of 0, +-0.5, +-1, +-2, ... if within 10 %, else 2 significant digits."""
    cands = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.25, -0.25]
    best = min(cands, key=lambda v: abs(v - c))
    if abs(best - c) <= 0.1 * max(abs(c), 1e-9):
        return best
    return _round_sig(c, 2)


__all__ = ["canonical", "snap_variants"]
