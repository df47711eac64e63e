"""Formulas: text <-> sympy <-> program.

* :func:`parse_formula` turns formula text (``"e * x - y**2 * w"``) into sympy expressions with a small
  hand-written tokenizer and Pratt parser. It never evaluates Python: only numbers, the names of the space's
  variables, named parameters and a whitelist of functions are accepted; anything else is a one-line RuleError.
* :func:`from_sympy` compiles expressions into a program in the canonical separable form, keeping side-pure
  factors such as ``(y - ybar)`` intact and expanding only where post and pre quantities are mixed.
* :func:`to_sympy`, :func:`to_text`, :func:`to_latex` go the other way, with simplification.

A rule with an eligibility trace is written as two statements: ``"dw = (r - rbar) * elig; delig = sy*tx - ty*sx"``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from ..limits import FLOAT32_MAX, FLOAT32_NORMAL_MIN
from .ops import OP_BY_NAME, SYMPY_HEADS, formula_functions
from .program import TARGET_ELIG, TARGET_W, Program, RuleError, Space, liveness
from .variables import VARIABLES, rule_equation  # noqa: F401 (re-exported; rule_equation is text only)

MAX_FORMULA_CHARS = 4000
MAX_DEPTH = 64
MAX_POWER = 16                # |integer exponent| of a power of a variable: x**16 at most (x**-16 at least)
MAX_EXPANDED_TERMS = 2000     # terms of the fully expanded formula (bounds sympy's expand before it runs)
FLOAT32_TINY = float(np.finfo(np.float32).smallest_subnormal)


def symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _sigmoid(a):
    return 1 / (1 + sp.exp(-a))


FUNCTIONS = formula_functions()   # name -> (arity, sympy function), from the op table (``Op.names``)
_VARIADIC = {name for name in FUNCTIONS if name.lower() in ("max", "min")}     # n arguments: nested pairs

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
                    r"|(?P<op>\*\*|[-+*/^(),;=]))", re.ASCII)


def _check_const(value: sp.Expr) -> sp.Expr:
    """A numeric constant must be finite and representable in float32 (rules run in float32), and 0 or at least
    float32's smallest normal number: the compiled rules flush subnormal numbers to zero (XLA on the CPU), so a
    smaller constant would act as 0 there and as itself in the exports."""
    if value.is_Number and not value.is_zero:
        m = abs(float(value)) if value.is_finite else float("inf")
        if not FLOAT32_NORMAL_MIN <= m <= FLOAT32_MAX:
            shown = str(sp.N(value, 4)) if value.is_finite else "infinity"
            raise RuleError(f"constant {shown[:40]} is out of the float32 range "
                            f"({FLOAT32_NORMAL_MIN:.3g} <= |c| <= {FLOAT32_MAX:.4g}, or 0: smaller numbers are "
                            "flushed to zero by the compiled rules)")
    return value


def _shown(x: sp.Expr) -> str:
    """A number for an error message: as written when short, else to 4 significant digits (never cut off, which
    would show 1e30 as 10000000000000000000)."""
    if x.is_Float and x.is_finite:
        return f"{float(x):.6g}"                # 17.5, not sympy's 17.5000000000000
    s = sp.sstr(x)
    if len(s) <= 20:
        return s
    return str(sp.N(x, 4)) if x.is_finite else s[:20] + "..."


def _power(base: sp.Expr, ex: sp.Expr) -> sp.Expr:
    """``base**ex`` with bounded cost: a huge exponent is refused before sympy tries to compute or expand it."""
    if ex.is_Number and base.is_Number:
        if not ex.is_finite or not base.is_finite:
            raise RuleError("formula is not finite")
        b, x = abs(float(base)), float(ex)
        if b == 0.0:
            if x < 0:
                raise RuleError("formula is not finite (division by zero?)")
        elif b != 1.0 and abs(x) * abs(np.log10(b)) > 38.5:     # the result leaves the float32 range
            raise RuleError(f"constant {_shown(base)}**{_shown(ex)} is out of the float32 range")
        elif b == 1.0 and abs(x) > 2**31:
            raise RuleError(f"exponent {_shown(ex)} is too large")
        return _check_const(base**ex)
    if ex.is_Number and (not ex.is_finite or abs(float(ex)) > MAX_POWER):
        raise RuleError(f"exponent {_shown(ex)} is too large (powers of variables are limited to "
                        f"|exponent| <= {MAX_POWER})")
    return base**ex


def expanded_terms(e: sp.Expr, limit: int = MAX_EXPANDED_TERMS) -> int:
    """An upper bound of the number of terms of ``sp.expand(e)`` (capped just above ``limit``), without expanding."""
    from math import comb

    memo: dict = {}

    def n(x) -> int:
        if id(x) in memo:
            return memo[id(x)]
        if isinstance(x, sp.Add):
            r = min(sum(n(a) for a in x.args), limit + 1)
        elif isinstance(x, sp.Mul):
            r = 1
            for a in x.args:
                r = min(r * n(a), limit + 1)
        elif isinstance(x, sp.Pow) and x.exp.is_Integer and int(x.exp) > 1:
            k = n(x.base)
            r = 1 if k <= 1 else min(comb(min(int(x.exp), 10**6) + k - 1, k - 1), limit + 1)
        else:
            for a in x.args:     # inside functions (exp, max, ...): sympy expands the arguments too
                n(a)
            r = 1
        memo[id(x)] = r
        return r

    return n(e)


def check_expr(e: sp.Expr, what: str = "formula") -> None:
    """Refuse expressions whose display or compilation would not finish quickly: powers of variables beyond
    MAX_POWER, constants outside float32, more than MAX_EXPANDED_TERMS terms when expanded."""
    for node in sp.preorder_traversal(e):
        if node.is_Number:
            _check_const(node)
        elif isinstance(node, sp.Pow) and node.exp.is_Number and abs(float(node.exp)) > MAX_POWER:
            raise RuleError(f"exponent {_shown(node.exp)} is too large (powers of variables are limited to "
                            f"|exponent| <= {MAX_POWER})")
    if expanded_terms(e) > MAX_EXPANDED_TERMS:
        raise RuleError(f"{what} expands to more than {MAX_EXPANDED_TERMS} terms")


def _tokenize(text: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos} in formula")
        pos = m.end()
        kind = m.lastgroup
        toks.append((kind, m.group(kind)))
    toks.append(("end", ""))
    return toks


class _Parser:
    BINARY = {"+": 10, "-": 10, "*": 20, "/": 20, "**": 30, "^": 30}

    def __init__(self, tokens, names: dict[str, sp.Expr]):
        self.toks, self.i, self.names = tokens, 0, names

    def peek(self):
        return self.toks[self.i]

    def take(self, value=None):
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            got = tok[1] or "end of formula"
            raise RuleError(f"expected '{value}' but found '{got}' in formula")
        self.i += 1
        return tok

    def expr(self, min_bp=0, depth=0):
        if depth > MAX_DEPTH:
            raise RuleError("formula nested too deeply")
        left = self.atom(depth)
        while True:
            kind, val = self.peek()
            if kind != "op" or val not in self.BINARY:
                return left
            bp = self.BINARY[val]
            if bp < min_bp:
                return left
            self.take()
            # ** is right-associative
            right = self.expr(bp if val in ("**", "^") else bp + 1, depth + 1)
            if val == "+":
                left = left + right
            elif val == "-":
                left = left - right
            elif val == "*":
                left = left * right
            elif val == "/":
                left = left / right
            else:
                left = _power(left, right)

    def atom(self, depth):
        kind, val = self.take()
        if kind == "num":
            if len(val) > 40:
                raise RuleError(f"number '{val[:20]}...' is too long")
            return _check_const(sp.Float(val) if any(ch in val for ch in ".eE") else sp.Integer(int(val)))
        if kind == "op" and val == "-":
            return -self.expr(25, depth + 1)   # unary minus binds tighter than * but looser than **
        if kind == "op" and val == "+":
            return self.expr(25, depth + 1)
        if kind == "op" and val == "(":
            inner = self.expr(0, depth + 1)
            self.take(")")
            return inner
        if kind == "name":
            if self.peek()[1] == "(":
                if val not in FUNCTIONS:
                    raise RuleError(f"unknown function '{val}' (allowed: {', '.join(sorted(set(FUNCTIONS)))})")
                arity, fn = FUNCTIONS[val]
                self.take("(")
                args = [self.expr(0, depth + 1)]
                while self.peek()[1] == ",":
                    self.take(",")
                    args.append(self.expr(0, depth + 1))
                self.take(")")
                # the forms sympy prints read back: Max/Min of several arguments (nested pairs), and
                # Heaviside(a, 0) (the step op's value at 0 is 0)
                if val in _VARIADIC and len(args) >= arity:
                    out = args[0]
                    for a in args[1:]:
                        out = fn(out, a)
                    return out
                if val == "Heaviside" and len(args) == 2:
                    if not args[1].is_zero:
                        raise RuleError(f"Heaviside's value at 0 must be 0 (the step op), got {_shown(args[1])}")
                    return fn(args[0])
                if len(args) != arity:
                    raise RuleError(f"function '{val}' takes {arity} argument(s), got {len(args)}")
                return fn(*args)
            if val in self.names:
                return self.names[val]
            raise RuleError(f"unknown name '{val}' in formula (variables: {', '.join(self.names) or 'none'})")
        raise RuleError(f"unexpected '{val or 'end of formula'}' in formula")


def parse_formula(text: str, space: Space, params: dict[str, float] | None = None) -> tuple[sp.Expr, sp.Expr]:
    """Parse formula text into (dw, delig) sympy expressions; delig is 0 unless a ``delig =`` statement is given."""
    if not isinstance(text, str):
        raise RuleError(f"a formula must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RuleError("empty formula")
    if len(text) > MAX_FORMULA_CHARS:
        raise RuleError(f"formula longer than {MAX_FORMULA_CHARS} characters")
    if not isinstance(space, Space):
        raise RuleError(f"space must be a Space (e.g. rules.RATE_SPACE), got {type(space).__name__}")
    names: dict[str, sp.Expr] = {v: symbol(v) for v in space.variables}
    if params is not None and not isinstance(params, dict):
        raise RuleError(f"params must be a mapping of names to numbers, got {type(params).__name__}")
    for k, v in (params or {}).items():
        if k in names:
            raise RuleError(f"params: '{k}' is a variable of the space, not a parameter")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise RuleError(f"params: '{k}' must be a finite number, got {v!r}"[:200])
        names[k] = sp.Float(v) if not float(v).is_integer() else sp.Integer(int(v))
    statements = [s for s in text.split(";") if s.strip()]
    if not statements:
        raise RuleError("empty formula")
    out = {"dw": sp.Integer(0), "delig": sp.Integer(0)}
    seen: set[str] = set()
    for i, stmt in enumerate(statements):
        toks = _tokenize(stmt)
        target = "dw"
        if len(toks) > 2 and toks[0][0] == "name" and toks[1] == ("op", "="):
            target = toks[0][1]
            if target not in out:
                raise RuleError(f"unknown target '{target}' (use 'dw = ...' and optionally 'delig = ...')")
            toks = toks[2:]
        elif len(statements) > 1:
            target = "dw" if i == 0 else "delig"
        if target in seen:      # configs refuse a key given twice; a formula would have summed the two silently
            raise RuleError(f"'{target} = ...' is given twice in the formula (a statement without 'dw =' or "
                            "'delig =' is dw if it comes first, else delig)")
        seen.add(target)
        p = _Parser(toks, names)
        expr = p.expr()
        if p.peek()[0] != "end":
            raise RuleError(f"unexpected '{p.peek()[1]}' in formula")
        out[target] = out[target] + expr
    if out["delig"] != 0 and not space.elig:
        raise RuleError("formula updates an eligibility trace but the space has none")
    for e in out.values():
        if e.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise RuleError("formula is not finite (division by zero?)")
        check_expr(e)
    return out["dw"], out["delig"]


# --------------------------------------------------------------------------------------------------------------
# sympy -> separable terms -> program
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _Term:
    coef: float
    P: sp.Expr
    Q: sp.Expr
    S: sp.Expr


def _side(expr: sp.Expr, space: Space) -> set[str]:
    sides = set()
    for s in expr.free_symbols:
        var = VARIABLES.get(s.name)
        if var is None:
            raise RuleError(f"unknown variable '{s.name}'")
        sides.add(var.side)
    return sides


def _coeff_mul(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``expr.as_coeff_Mul()`` that also takes the real constants sympy keeps symbolic (``E``, ``sqrt(2)``,
    ``tanh(1)``) into the coefficient, so that ``E*sign(w)`` is 2.718 times the factor ``sign(w)``."""
    c, rest = expr.as_coeff_Mul()
    args = sp.Mul.make_args(rest)
    nums = [f for f in args if f.is_number and f.is_real and f.is_finite]
    if not nums:
        return c, rest
    return c * sp.Mul(*nums), sp.Mul(*[f for f in args if f not in nums])


def _separate(expr: sp.Expr, space: Space) -> list[_Term]:
    """Write expr as a sum of coef * P(post, global) * Q(pre) * S(w, elig)."""
    sides = _side(expr, space)
    if sides <= {"post", "global"}:
        c, rest = _coeff_mul(expr)
        return [_Term(float(c), rest, sp.Integer(1), sp.Integer(1))]
    if sides <= {"pre", "global"} and "pre" in sides:
        c, rest = _coeff_mul(expr)
        g = [f for f in sp.Mul.make_args(rest) if _side(f, space) <= {"global"}]
        q = [f for f in sp.Mul.make_args(rest) if not _side(f, space) <= {"global"}]
        return [_Term(float(c), sp.Mul(*g), sp.Mul(*q), sp.Integer(1))]
    if sides == {"syn"} and not isinstance(expr, sp.Add):
        c, rest = _coeff_mul(expr)
        return [_Term(float(c), sp.Integer(1), sp.Integer(1), rest)]
    if isinstance(expr, sp.Add):
        return [t for a in expr.args for t in _separate(a, space)]
    if isinstance(expr, sp.Mul):
        terms = [_Term(1.0, sp.Integer(1), sp.Integer(1), sp.Integer(1))]
        for f in expr.args:
            fts = _separate(f, space)
            if len(terms) * len(fts) > MAX_EXPANDED_TERMS:
                raise RuleError(f"formula expands to more than {MAX_EXPANDED_TERMS} terms")
            terms = [_Term(a.coef * b.coef, a.P * b.P, a.Q * b.Q, a.S * b.S) for a in terms for b in fts]
        return terms
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and int(expr.exp) > 0 and isinstance(expr.base, sp.Add):
        if expanded_terms(expr) > MAX_EXPANDED_TERMS:
            raise RuleError(f"'{sp.sstr(expr)[:60]}' expands to more than {MAX_EXPANDED_TERMS} terms")
        expanded = sp.expand(expr)
        if expanded != expr:
            return _separate(expanded, space)
    raise RuleError(f"'{expr}' mixes {' and '.join(sorted(sides))} quantities inside a function: not a local "
                    "separable rule (post and pre quantities may only meet as a product)")


def _merge(terms: list[_Term]) -> list[_Term]:
    merged: dict[tuple, _Term] = {}
    for t in terms:
        # fold numeric factors of P and Q into the coefficient
        cp, P = _coeff_mul(t.P)
        cq, Q = _coeff_mul(t.Q)
        cs, S = _coeff_mul(t.S)
        coef = t.coef * float(cp) * float(cq) * float(cs)
        key = (sp.srepr(P), sp.srepr(Q), sp.srepr(S))
        if key in merged:
            merged[key].coef += coef
        else:
            merged[key] = _Term(coef, P, Q, S)
    return [t for t in merged.values() if t.coef != 0.0]


class _SideCompiler:
    def __init__(self, space: Space, side: str):
        self.space, self.side = space, side
        self.names = space.register_names(side)
        self.n_in = space.n_inputs(side)
        self.instr: list[tuple[str, int, int, float]] = []
        self.memo: dict[str, int] = {}

    def _emit(self, op: str, a: int = 0, b: int = 0, c: float = 0.0) -> int:
        if op not in self.space.ops:
            raise RuleError(f"op '{op}' needed by the formula is not in the space's op set")
        key = f"{op}:{a}:{b}:{c!r}"
        if key in self.memo:
            return self.memo[key]
        self.instr.append((op, a, b, float(c)))
        reg = self.n_in + len(self.instr) - 1
        self.memo[key] = reg
        return reg

    def _const(self, c: float) -> int:
        if c == 1.0:
            return 0
        if "const" in self.space.ops:
            return self._emit("const", 0, 0, c)
        return self._emit("cmul", 0, 0, c)

    def compile(self, e: sp.Expr) -> int:
        if e == 1:
            return 0
        if e.is_Symbol:
            if e.name not in self.names[: self.n_in]:
                raise RuleError(f"variable '{e.name}' is not available on the {self.side} side of this space")
            return self.names.index(e.name)
        if e.is_Number:
            return self._const(float(e))
        if isinstance(e, sp.Add):
            c, rest = e.as_coeff_Add()
            args = list(sp.Add.make_args(rest))
            reg = None
            for arg in args:
                ac, ar = arg.as_coeff_Mul()
                if reg is None:
                    reg = self.compile(arg)
                elif ac == -1 and "sub" in self.space.ops:
                    reg = self._emit("sub", reg, self.compile(ar))
                else:
                    reg = self._emit("add", reg, self.compile(arg))
            if c != 0:
                reg = self._emit("cadd", reg, 0, float(c)) if "cadd" in self.space.ops else \
                    self._emit("add", reg, self._const(float(c)))
            return reg
        if isinstance(e, sp.Mul):
            c, rest = e.as_coeff_Mul()
            if c != 1:
                inner = self.compile(rest)
                if c == -1 and "neg" in self.space.ops:
                    return self._emit("neg", inner)
                if "cmul" in self.space.ops:
                    return self._emit("cmul", inner, 0, float(c))
                return self._emit("mul", inner, self._const(float(c)))
            reg = None
            for f in e.args:
                r = self.compile(f)
                reg = r if reg is None else self._emit("mul", reg, r)
            return reg
        if isinstance(e, sp.Pow):
            base, ex = e.args
            if ex == sp.Rational(1, 2):
                return self._emit("sqrt", self.compile(base))
            if ex.is_Rational and ex.q == 2 and abs(ex.p) <= 2 * MAX_POWER:     # |exponent| <= MAX_POWER
                # base**(p/2) = sqrt(base)**p (sympy writes x/sqrt(y) as x*y**(-1/2))
                return self._int_power(self._emit("sqrt", self.compile(base)), int(ex.p))
            if ex.is_Integer:
                n = int(ex)
                if n == -1:
                    r = self.compile(base)
                    return self._emit("recip", r) if "recip" in self.space.ops else self._emit("div", 0, r)
                if abs(n) > MAX_POWER:
                    raise RuleError(f"exponent {n} is too large (|exponent| <= {MAX_POWER})")
                if n < 0:
                    r = self.compile(base**(-n))
                    return self._emit("recip", r) if "recip" in self.space.ops else self._emit("div", 0, r)
                if n == 2 and "square" in self.space.ops:
                    return self._emit("square", self.compile(base))
                r = self.compile(base)
                acc = r
                for _ in range(n - 1):
                    acc = self._emit("mul", acc, r)
                return acc
            raise RuleError(f"power '{e}' is not expressible with the space's ops")
        name = SYMPY_HEADS.get(e.func)    # f(a) of a one-operand op of the table: exp, tanh, abs, step, ...
        if name is not None and OP_BY_NAME[name].arity == 1:
            return self._emit(name, self.compile(e.args[0]))
        if isinstance(e, (sp.Max, sp.Min)):
            name = "max" if isinstance(e, sp.Max) else "min"
            args = list(e.args)
            if name == "max" and len(args) == 2 and 0 in args and "relu" in self.space.ops:
                return self._emit("relu", self.compile([a for a in args if a != 0][0]))
            reg = self.compile(args[0])
            for a in args[1:]:
                reg = self._emit(name, reg, self.compile(a))
            return reg
        if e.is_number:     # a constant sympy keeps symbolic (E, exp(2), sqrt(3)*pi): its value
            v = complex(e)
            if v.imag != 0 or not np.isfinite(v.real):
                raise RuleError(f"the formula is not real-valued ({_shown(e)} is not a real number: the log or "
                                "square root of a negative number?)")
            return self._const(float(_check_const(sp.Float(v.real))))
        raise RuleError(f"cannot express '{e}' with the space's ops")

    def _int_power(self, r: int, n: int) -> int:
        """Register ``r`` to the integer power ``n`` (|n| <= MAX_POWER, n != 0): products, then recip for n < 0."""
        acc = r
        for _ in range(abs(n) - 1):
            acc = self._emit("mul", acc, r)
        if n < 0:
            return self._emit("recip", acc) if "recip" in self.space.ops else self._emit("div", 0, acc)
        return acc


def from_sympy(dw: sp.Expr, delig: sp.Expr, space: Space, fit: bool = True) -> tuple[Program, Space]:
    """Compile sympy expressions into a program.

    With ``fit=True`` the returned space is ``space`` resized to exactly what the rule needs (the caller can
    pad into a bigger space); otherwise the program must fit ``space`` as it is.
    """
    groups = [(TARGET_W, _merge(_separate(dw, space)) if dw != 0 else [])]
    if delig != 0:
        groups.append((TARGET_ELIG, _merge(_separate(delig, space))))
    post, pre = _SideCompiler(space, "post"), _SideCompiler(space, "pre")
    rows = []
    for tgt, terms in groups:
        for t in terms:
            s_name = None
            for s in space.syn_objs:
                if sp.simplify(s.sympy(symbol("w"), symbol("elig")) - t.S) == 0:
                    s_name = s.name
                    break
            if s_name is None:
                raise RuleError(f"per-synapse factor '{t.S}' is not in the space's menu ({', '.join(space.syn)})")
            rows.append((t.coef, post.compile(t.P), pre.compile(t.Q), space.syn.index(s_name), tgt))
    n_post, n_pre, n_terms = len(post.instr), len(pre.instr), max(1, len(rows))
    if fit:
        space = space.resized(n_post=n_post, n_pre=n_pre, n_terms=n_terms)
    elif n_post > space.n_post or n_pre > space.n_pre or n_terms > space.n_terms:
        raise RuleError(f"rule needs {n_post}/{n_pre} post/pre instructions and {n_terms} terms; the space "
                        f"allows {space.n_post}/{space.n_pre} and {space.n_terms}")
    return assemble(space, post, pre, rows), space


def assemble(space: Space, post: "_SideCompiler", pre: "_SideCompiler", rows) -> Program:
    """Program arrays from compiled side programs and term rows (coef, p_reg, q_reg, syn_index, target)."""
    consts = [c for comp in (post, pre) for (_, _, _, c) in comp.instr] + [row[0] for row in rows]
    for c in consts:
        if not np.isfinite(c) or abs(c) > FLOAT32_MAX or 0 < abs(c) < FLOAT32_NORMAL_MIN:
            raise RuleError(f"constant {c:.4g} is out of the float32 range "
                            f"({FLOAT32_NORMAL_MIN:.3g} <= |c| <= {FLOAT32_MAX:.4g}, or 0: smaller numbers are "
                            "flushed to zero by the compiled rules)")
    prog = {k: np.array(v) for k, v in space.empty()._asdict().items()}
    for side, comp in (("post", post), ("pre", pre)):
        for i, (op, a, b, c) in enumerate(comp.instr):
            prog[f"{side}_op"][i] = space.ops.index(op)
            prog[f"{side}_a"][i], prog[f"{side}_b"][i], prog[f"{side}_c"][i] = a, b, c
    for k, (coef, p, q, s, tgt) in enumerate(rows):
        prog["term_on"][k] = True
        prog["term_coef"][k] = coef
        prog["term_p"][k], prog["term_q"][k], prog["term_s"][k], prog["term_tgt"][k] = p, q, s, tgt
    return Program(**prog)


def compile_formula(text: str, space: Space, params: dict[str, float] | None = None,
                    fit: bool = True) -> tuple[Program, Space]:
    dw, delig = parse_formula(text, space, params)
    return from_sympy(dw, delig, space, fit=fit)


# --------------------------------------------------------------------------------------------------------------
# program -> sympy / text / LaTeX
# --------------------------------------------------------------------------------------------------------------
DIGITS = 4      # significant digits of every displayed constant: text, LaTeX, the sympy export, tables, reports


def number_text(x: float, digits: int | None = DIGITS) -> str:
    """The one spelling of a rule constant: the shortest decimal that reads back as the same float32 (rules run
    in float32, so ``0.2178`` stays ``0.2178``, never ``0.21780000627``), then rounded to ``digits`` significant
    digits (None: not rounded). Python float syntax that :func:`parse_formula` reads back (``0.5``, ``5e-10``)."""
    x = float(x)
    if not np.isfinite(x):
        return repr(x)
    if x == 0 or FLOAT32_TINY <= abs(x) <= FLOAT32_MAX:
        x = float(str(np.float32(x)))
    if digits is not None:
        x = float(f"{x:.{digits}g}")
        if abs(x) >= 10 ** digits:      # 123456.7 -> 1.235e5, not 123500.0 (which claims seven digits)
            m, ex = f"{x:.{digits - 1}e}".split("e")
            return f"{m.rstrip('0').rstrip('.')}e{int(ex)}"
    return repr(x)


def _round_float(x: float, digits: int) -> sp.Expr:
    if float(x).is_integer() and abs(x) < 1e6:
        return sp.Integer(int(x))
    if digits >= 9:     # exact forms (canonical programs, layouts): the float32 value itself, rounded to nothing
        return sp.Float(float(f"{x:.{digits}g}"), digits)
    return sp.Float(number_text(x, digits), digits)


class _TextPrinter(StrPrinter):
    """sympy's text printer with every constant spelled by :func:`number_text`."""

    def __init__(self, digits: int | None = DIGITS):
        super().__init__()
        self._digits = digits

    def _print_Float(self, e):
        return number_text(float(e), self._digits)

    def _print_Exp1(self, e):
        # Euler's number as the formula language writes it: "E" would read back as an unknown name (and "-E*x" is
        # more likely a mistyped "-e*x" than Euler's number, so the parser does not take it)
        return "exp(1)"


class _LatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with the variables' own symbols (:data:`VARIABLES`), constants spelled by
    :func:`number_text` (so LaTeX and text show the same numbers) and ``\\exp(...)`` for exp (``e`` is the error)."""

    def __init__(self, names: dict, digits: int | None = DIGITS):
        super().__init__({"symbol_names": names})
        self._digits = digits

    def _print_Float(self, e):
        t = number_text(float(e), self._digits)
        if "e" in t:
            m, ex = t.split("e")
            return rf"{m} \cdot 10^{{{int(ex)}}}"
        return t

    def _print_ExpBase(self, e, exp=None):
        return self._do_exponent(rf"\exp{{\left({self._print(e.args[0])} \right)}}", exp)

    def _print(self, expr, **kwargs):
        # sympy's E prints itself (Exp1._latex) before any printer method is looked up; "e" is the error here
        if expr is sp.E:
            return r"\mathrm{e}"
        return super()._print(expr, **kwargs)


def side_exprs(prog: Program, space: Space, side: str, live, const_fn) -> dict[int, sp.Expr]:
    """sympy expression of every live register of one side; ``const_fn(value, i, op)`` turns the constant of
    instruction ``i`` (an op that reads it) into a sympy expression (a rounded number, or a parameter symbol)."""
    names = space.register_names(side)
    n_in = space.n_inputs(side)
    regs: dict[int, sp.Expr] = {0: sp.Integer(1)}
    for r in range(1, n_in):
        regs[r] = symbol(names[r])
    op, a, b, c = (np.asarray(getattr(prog, f"{side}_{x}")) for x in ("op", "a", "b", "c"))
    for i in np.nonzero(live)[0]:
        o = OP_BY_NAME[space.ops[int(op[i])]]
        n_reg = n_in + int(i)
        ra = regs.get(int(np.clip(a[i], 0, n_reg - 1)), sp.Integer(0))
        rb = regs.get(int(np.clip(b[i], 0, n_reg - 1)), sp.Integer(0))
        ci = const_fn(float(c[i]), int(i), o) if o.uses_const else sp.Integer(0)
        regs[n_in + int(i)] = o.sympy(ra, rb, ci)
    return regs


def to_sympy_raw(prog: Program, space: Space, digits: int = 6) -> tuple[sp.Expr, sp.Expr]:
    """(dw, delig) as unsimplified sympy expressions (constants rounded to ``digits`` significant digits)."""
    prog = Program(*[np.asarray(x) for x in prog])
    live_post, live_pre, terms = liveness(prog, space)
    rounded = lambda v, i, o: _round_float(v, digits)  # noqa: E731
    P = side_exprs(prog, space, "post", live_post, rounded)
    Q = side_exprs(prog, space, "pre", live_pre, rounded)
    out = [sp.Integer(0), sp.Integer(0)]
    w, el = symbol("w"), symbol("elig")
    for k in np.nonzero(terms)[0]:
        s = space.syn_objs[int(prog.term_s[k])].sympy(w, el)
        term = _round_float(float(prog.term_coef[k]), digits) * P[int(prog.term_p[k])] * Q[int(prog.term_q[k])] * s
        out[int(prog.term_tgt[k])] += term
    return out[0], out[1]


def simplify_expr(e: sp.Expr) -> sp.Expr:
    """A readable canonical form: expanded, then factored when that is shorter, bounded in cost."""
    if e == 0:
        return e
    if expanded_terms(e) > MAX_EXPANDED_TERMS:   # e.g. a program squaring a sum many times: leave it unexpanded
        return e
    try:
        ex = sp.expand(e)
    except Exception:  # pragma: no cover - sympy internals
        return e
    best = ex
    if sp.count_ops(ex) <= 60:
        for cand in (sp.factor_terms(ex), _try(sp.factor, ex)):
            if cand is not None and sp.count_ops(cand) < sp.count_ops(best):
                best = cand
        if sp.count_ops(best) <= 25:
            s = _try(sp.simplify, best)
            if s is not None and sp.count_ops(s) < sp.count_ops(best):
                best = s
    return best


def _try(fn, e):
    try:
        return fn(e)
    except Exception:  # pragma: no cover - sympy internals
        return None


def to_sympy(prog: Program, space: Space, simplify: bool = True, digits: int = DIGITS):
    """The rule as sympy: the dw expression, or (dw, delig) for rules with an eligibility trace."""
    dw, de = to_sympy_raw(prog, space, digits)
    if simplify:
        dw, de = simplify_expr(dw), simplify_expr(de)
    return (dw, de) if de != 0 else dw


def _latex_names(space: Space | None = None) -> dict:
    names = space.variables if space is not None else VARIABLES
    return {symbol(v): VARIABLES[v].latex for v in names if v in VARIABLES}


def sympy_text(e: sp.Expr, digits: int | None = DIGITS) -> str:
    """One sympy expression as formula text, constants spelled by :func:`number_text`."""
    return _TextPrinter(digits).doprint(e)


def to_text(prog: Program, space: Space, digits: int = DIGITS) -> str:
    """Plain-text formula that :func:`parse_formula` reads back."""
    return expr_text(to_sympy(prog, space, digits=digits), digits)


def expr_latex(e, space: Space | None = None, digits: int | None = DIGITS) -> str:
    """``\\Delta w = ...`` (and ``\\Delta \\mathrm{elig} = ...``) in the variables' LaTeX symbols, with the constants
    of the text form."""
    p = _LatexPrinter(_latex_names(space), digits)
    if isinstance(e, tuple):
        return (r"\Delta w = " + p.doprint(e[0]) + r", \quad \Delta " + VARIABLES["elig"].latex + " = "
                + p.doprint(e[1]))
    return r"\Delta w = " + p.doprint(e)


def to_latex(prog: Program, space: Space, digits: int = DIGITS) -> str:
    return expr_latex(to_sympy(prog, space, digits=digits), space, digits)


def expr_text(e, digits: int | None = DIGITS) -> str:
    if isinstance(e, tuple):
        return f"dw = {sympy_text(e[0], digits)}; delig = {sympy_text(e[1], digits)}"
    return sympy_text(e, digits)

