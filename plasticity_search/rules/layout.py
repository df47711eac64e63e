"""Re-expressing a program in the layout of another space (:func:`pad`): same rule, other registers and sizes.

It sits above both the program arrays and the formula compiler, since a program that uses an op the target space
lacks is recompiled from its sympy form.
"""
from __future__ import annotations

import numpy as np

from .formula import from_sympy, to_sympy_raw
from .ops import OP_BY_NAME
from .program import TARGET_ELIG, Program, RuleError, Space, liveness

__all__ = ["pad"]


def pad(prog: Program, src: Space, dst: Space) -> Program:
    """Re-express ``prog`` (written in ``src``) in the layout of ``dst``.

    Instructions, variables and synapse factors are mapped by name; where ``dst`` lacks an op that the program
    uses (e.g. ``square`` in a space with only ``mul``), the rule is recompiled from its sympy form with the ops
    of ``dst``. A variable missing from ``dst`` or a program larger than ``dst`` allows is a RuleError.
    """
    try:
        return _pad_direct(prog, src, dst)
    except RuleError as exc:
        if "op '" not in str(exc):
            raise
        dw, de = to_sympy_raw(prog, src, digits=9)
        out, _ = from_sympy(dw, de, dst, fit=False)
        return out


def _pad_direct(prog: Program, src: Space, dst: Space) -> Program:
    prog = Program(*[np.asarray(x) for x in prog])
    live_post, live_pre, live_terms = liveness(prog, src)
    if live_post.sum() > dst.n_post or live_pre.sum() > dst.n_pre or live_terms.sum() > dst.n_terms:
        raise RuleError(
            f"rule needs {int(live_post.sum())}/{int(live_pre.sum())} post/pre instructions and "
            f"{int(live_terms.sum())} terms; space '{dst.name}' allows {dst.n_post}/{dst.n_pre} and {dst.n_terms}")
    out = dst.empty()
    out = out._replace(**{k: np.array(v) for k, v in out._asdict().items()})
    reg_maps = {}
    for side, live, n_dst in (("post", live_post, dst.n_post), ("pre", live_pre, dst.n_pre)):
        src_names = src.register_names(side)
        n_in_src, n_in_dst = src.n_inputs(side), dst.n_inputs(side)
        dst_names = dst.register_names(side)
        rmap = {}
        for r in range(n_in_src):
            name = src_names[r]
            if name not in dst_names[:n_in_dst]:
                used = _register_used(prog, src, side, r, live)
                if used:
                    raise RuleError(f"variable '{name}' is not available in space '{dst.name}'")
                continue
            rmap[r] = dst_names.index(name)
        op_f, a_f, b_f, c_f = (getattr(out, f"{side}_{x}") for x in ("op", "a", "b", "c"))
        sop, sa, sb, sc = (getattr(prog, f"{side}_{x}") for x in ("op", "a", "b", "c"))
        j = 0
        for i in np.nonzero(live)[0]:
            name = src.ops[int(sop[i])]
            if name not in dst.ops:
                raise RuleError(f"op '{name}' is not available in space '{dst.name}'")
            op_f[j] = dst.ops.index(name)
            arity = OP_BY_NAME[name].arity
            a_f[j] = rmap.get(int(sa[i]), 0) if arity >= 1 else 0
            b_f[j] = rmap.get(int(sb[i]), 0) if arity >= 2 else 0
            c_f[j] = sc[i]
            rmap[n_in_src + int(i)] = n_in_dst + j
            j += 1
        reg_maps[side] = rmap
    k = 0
    for t in np.nonzero(live_terms)[0]:
        sname = src.syn[int(prog.term_s[t])]
        if sname not in dst.syn:
            raise RuleError(f"synapse factor '{sname}' is not available in space '{dst.name}'")
        if int(prog.term_tgt[t]) == TARGET_ELIG and not dst.elig:
            raise RuleError(f"space '{dst.name}' has no eligibility trace")
        out.term_on[k] = True
        out.term_coef[k] = prog.term_coef[t]
        out.term_p[k] = reg_maps["post"][int(prog.term_p[t])]
        out.term_q[k] = reg_maps["pre"][int(prog.term_q[t])]
        out.term_s[k] = dst.syn.index(sname)
        out.term_tgt[k] = prog.term_tgt[t]
        k += 1
    return out


def _register_used(prog: Program, space: Space, side: str, r: int, live: np.ndarray) -> bool:
    on = np.asarray(prog.term_on)
    idx = np.asarray(prog.term_p if side == "post" else prog.term_q)
    if np.any(on & (idx == r)):
        return True
    op, a, b = (np.asarray(getattr(prog, f"{side}_{x}")) for x in ("op", "a", "b"))
    for i in np.nonzero(live)[0]:
        arity = OP_BY_NAME[space.ops[int(op[i])]].arity
        if (arity >= 1 and a[i] == r) or (arity >= 2 and b[i] == r):
            return True
    return False
