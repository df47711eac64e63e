"""Shared code generation for the source-code exports (JAX, NumPy, PyTorch, Brian2, NESTML).

:func:`param_form` turns a program into sympy expressions whose constants are symbols ``c0, c1, ...`` (the
*parameter vector*): first the coefficient of every live term, then the constant of every live ``uses_const``
instruction (post side, then pre side), each with its float32 value. The expressions are built by walking the live
program with each op's ``.sympy`` function, exactly like :func:`plasticity_search.rules.to_sympy_raw`, so they are
the interpreter's computation written out (no simplification beyond sympy's automatic evaluation).

:func:`array_source` prints a self-contained Python file for ``numpy``, ``jax`` or ``torch`` with a function of the
rule's named local variables that has the semantics of ``Space.apply``: post-side vectors [N] and pre-side vectors [M]
meet as outer products, globals are scalars, ``w`` (and ``elig``) are [N, M]; it returns dW [N, M], or
(dW, dElig) for rules with eligibility terms.

Generated files never contain user text as code: expressions come from our own parser through sympy printing,
names are from the fixed variable table, and anything else (rule name, defaults) is checked or converted first.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from ..rules.formula import side_exprs, symbol
from ..rules.ops import OP_BY_NAME, PRINTED_OPS, SYMPY_HEADS
from ..rules.program import TARGET_ELIG, Program, RuleError, Space, liveness
from ..rules.resolve import ResolvedRule
from ..rules.variables import VARIABLES

_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass(frozen=True)
class ParamForm:
    """A rule with its constants as symbols: dw(vars, c) and delig(vars, c), c = ``values``."""

    dw: sp.Expr
    delig: sp.Expr
    consts: tuple[sp.Symbol, ...]      # c0, c1, ...
    values: tuple[float, ...]          # float32 values (as Python floats, exact)
    roles: tuple[str, ...]             # what each constant is: 'term 0 coefficient', 'post instruction 2 (cmul)'
    variables: tuple[str, ...]         # variables the rule reads, in space order (post, pre, global, w, elig)
    has_elig: bool                     # the program has live terms that drive the eligibility trace

    def substituted(self) -> tuple[sp.Expr, sp.Expr]:
        """(dw, delig) with the constants replaced by their values."""
        sub = {c: sp.Float(v) for c, v in zip(self.consts, self.values)}
        return self.dw.xreplace(sub), self.delig.xreplace(sub)


def param_form(prog: Program, space: Space) -> ParamForm:
    prog = Program(*[np.asarray(x) for x in prog])
    live_post, live_pre, terms = liveness(prog, space)
    consts: list[sp.Symbol] = []
    values: list[float] = []
    roles: list[str] = []

    def new_const(v, role: str) -> sp.Symbol:
        s = sp.Symbol(f"c{len(consts)}", real=True)
        consts.append(s)
        values.append(float(np.float32(v)))
        roles.append(role)
        return s

    term_idx = [int(k) for k in np.nonzero(terms)[0]]
    coefs = {k: new_const(prog.term_coef[k], f"term {k} coefficient") for k in term_idx}
    regs = {}
    for side, live in (("post", live_post), ("pre", live_pre)):
        regs[side] = side_exprs(prog, space, side, live,
                                lambda v, i, o, side=side: new_const(v, f"{side} instruction {i} ({o.name})"))
    out = [sp.Integer(0), sp.Integer(0)]
    w, el = symbol("w"), symbol("elig")
    has_elig = False
    for k in term_idx:
        s = space.syn_objs[int(prog.term_s[k])].sympy(w, el)
        tgt = int(prog.term_tgt[k])
        has_elig |= tgt == TARGET_ELIG
        out[tgt] += coefs[k] * regs["post"].get(int(prog.term_p[k]), sp.Integer(0)) * \
            regs["pre"].get(int(prog.term_q[k]), sp.Integer(0)) * s
    used = {s.name for e in out for s in e.free_symbols} - {c.name for c in consts}
    variables = tuple(v for v in space.variables if v in used)
    return ParamForm(out[0], out[1], tuple(consts), tuple(values), tuple(roles), variables, has_elig)


def rule_form(rule: ResolvedRule) -> ParamForm:
    return param_form(rule.program, rule.space)


# --------------------------------------------------------------------------------------------------------------
# safe text helpers
# --------------------------------------------------------------------------------------------------------------
def safe_name(rule: ResolvedRule, default: str = "") -> str:
    """The rule's name if it is a plain identifier (registry names are), else ``default``."""
    name = str(rule.name)
    return name if _IDENT.fullmatch(name) and len(name) <= 64 else default


def comment_text(text: str) -> str:
    """Text (printed by sympy) made safe for a comment or docstring: one line, no quotes or backslashes."""
    return re.sub(r"[^A-Za-z0-9_ .,;:=+\-*/()<>|&!^]", "?", str(text).replace("\n", " "))


def float_text(v: float) -> str:
    """Shortest text that reads back as the same float32 (``0.01``, not ``0.009999999776482582``)."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    s = repr(float(str(np.float32(v))))
    return s


def numeric_defaults(rule: ResolvedRule) -> dict:
    """Simulation defaults that are numbers (or [lo, hi] bounds), as floats; anything else is dropped."""
    out = {}
    for k, v in (rule.defaults or {}).items():
        if not (isinstance(k, str) and _IDENT.fullmatch(k)):
            continue
        if _finite_number(v):
            out[k] = float(v)
        elif isinstance(v, (list, tuple)) and len(v) == 2 and all(_finite_number(x) for x in v):
            out[k] = [float(v[0]), float(v[1])]
    return out


def _finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def formula_text(rule: ResolvedRule) -> str:
    """The rule as the interpreter computes it, constants filled in: ``dw = ...`` (``; delig = ...``), one line
    safe for a comment. (Not simplified: sympy's simplify can take seconds on a random program.)"""
    f = rule_form(rule)
    sub = {c: sp.Integer(int(v)) if float(v).is_integer() and abs(v) < 1e6 else sp.Float(float_text(v))
           for c, v in zip(f.consts, f.values)}
    text = f"dw = {sp.sstr(f.dw.xreplace(sub))}"
    if f.has_elig:
        text += f"; delig = {sp.sstr(f.delig.xreplace(sub))}"
    return comment_text(text)


# --------------------------------------------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------------------------------------------
def evaluate_numbers(e: sp.Expr) -> sp.Expr:
    """Replace every constant subexpression that is not a plain number (E, sqrt(2), log(3), ...) by a Float; a
    non-real or infinite one becomes nan / +-oo."""
    def num(x):
        v = complex(x.evalf())
        if abs(v.imag) > 0 or math.isnan(v.real):
            return sp.nan
        return sp.Float(v.real) if math.isfinite(v.real) else (sp.oo if v.real > 0 else -sp.oo)

    if e.is_number:
        return e if (e.is_Rational or e.is_Float) else num(e)
    return e.replace(lambda x: x.is_number and not (x.is_Rational or x.is_Float) and x not in (sp.nan, sp.zoo),
                     num)


class OpPrinter(StrPrinter):
    """A printer of the op table's sympy forms that looks each op up by name, one table per target (as PySR does).

    ``functions`` maps an op name to the target's function, printed by :meth:`call`; an op that is no plain call
    in the target has a method ``op_<name>(*args)`` instead. Every op of :data:`~plasticity_search.rules.ops.PRINTED_OPS`
    needs one or the other; :func:`check_printer` makes sure when a printer class is defined.
    """

    functions: ClassVar[dict[str, str]] = {}

    def __init__(self):
        super().__init__({"full_prec": True})

    # numbers: a float, a rational and e as :meth:`number` writes them, an integer as it is
    def number(self, v: float) -> str:
        """A finite float as the target reads it back: Python's exact ``repr`` (a target overrides this)."""
        return repr(v)

    def _print_Float(self, e):
        return self.number(float(e))

    def _print_Rational(self, e):
        return self.number(float(e)) if e.q != 1 else str(e.p)

    def _print_Integer(self, e):
        return str(e.p)

    def _print_Exp1(self, e):
        return self.number(math.e)

    def _print_Pi(self, e):
        return repr(math.pi)

    def call(self, name: str, *args) -> str:
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def print_op(self, op: str, *args) -> str:
        method = getattr(self, f"op_{op}", None)
        if method is not None:
            return method(*args)
        if op not in self.functions:
            raise RuleError(f"cannot export op '{op}'")
        return self.call(self.functions[op], *args)

    def _print_Pow(self, e, rational=False):
        b, ex = e.args
        prec = PRECEDENCE["Pow"]
        if ex == sp.S.Half:
            return self.print_op("sqrt", b)
        if ex == -sp.S.Half:
            return f"1/{self.print_op('sqrt', b)}"
        if ex.is_Integer and ex < 0:
            inner = b if ex == -1 else b ** (-ex)
            return f"1/{self.parenthesize(inner, prec, strict=True)}"
        return f"{self.parenthesize(b, prec, strict=True)}**{self.parenthesize(ex, prec, strict=True)}"


def _op_method(op: str):
    n_args = 1 if OP_BY_NAME[op].arity == 1 else None       # Heaviside(a, 0) prints as step(a); Max(a, b, c) whole

    def method(self, e):
        return self.print_op(op, *e.args[:n_args])
    return method


# one sympy print method per op head of the op table: _print_Abs -> print_op("abs", a), _print_Max -> "max", ...
for _head, _op in SYMPY_HEADS.items():
    setattr(OpPrinter, f"_print_{_head.__name__}", _op_method(_op))
del _head, _op


def check_printer(cls: type) -> type:
    """Class decorator: ``cls`` spells every op of the op table that needs spelling, and only ops of the table."""
    missing = [op for op in PRINTED_OPS if op not in cls.functions and not hasattr(cls, f"op_{op}")]
    unknown = [op for op in cls.functions if op not in OP_BY_NAME]
    if missing or unknown:
        raise TypeError(f"{cls.__name__}: no spelling for ops {missing}; not ops of the op table: {unknown}")
    return cls


@check_printer
class ArrayPrinter(OpPrinter):
    """Prints our op set as array code for ``np``, ``jnp`` or ``torch`` (module prefix ``mod``)."""

    functions: ClassVar[dict[str, str]] = {"exp": "exp", "log": "log", "tanh": "tanh", "abs": "abs", "sign": "sign",
                                           "sqrt": "sqrt"}

    def __init__(self, mod: str, torch: bool = False):
        super().__init__()
        self.mod, self.torch = mod, torch

    def call(self, name, *args):
        return f"{self.mod}.{name}({', '.join(self._print(a) for a in args)})"

    # numbers that are not finite (finite ones: OpPrinter)
    def _print_NaN(self, e):
        return 'float("nan")'

    def _print_Infinity(self, e):
        return 'float("inf")'

    def _print_NegativeInfinity(self, e):
        return '(-float("inf"))'

    def _print_ComplexInfinity(self, e):
        return 'float("nan")'

    # ops of the table that are no plain call
    def op_step(self, a):
        # numpy's where of two Python floats is float64: float32 ones and zeros keep float32 in, float32 out
        one, zero = ("np.float32(1)", "np.float32(0)") if self.mod == "np" else ("1.0", "0.0")
        return f"{self.mod}.where({self.parenthesize(a, PRECEDENCE['Relational'])} > 0, {one}, {zero})"

    def _minmax(self, args, fn, clamp):
        nums = [a for a in args if a.is_number]
        rest = [a for a in args if not a.is_number]
        out = self._print(rest[0])
        for a in rest[1:]:
            out = f"{self.mod}.{fn}({out}, {self._print(a)})"
        for a in nums:
            out = (f"{self.mod}.clamp({out}, {clamp}={self._print(a)})" if self.torch
                   else f"{self.mod}.{fn}({out}, {self._print(a)})")
        return out

    def op_max(self, *args):
        return self._minmax(args, "maximum", "min")

    def op_min(self, *args):
        return self._minmax(args, "minimum", "max")

    def _print_Function(self, e):
        raise RuleError(f"cannot export function '{e.func}' to array code")

    def emptyPrinter(self, e):  # noqa: N802 - sympy API
        raise RuleError(f"cannot export '{e}' to array code")


def print_assignments(exprs: dict[str, sp.Expr], printer, temp_prefix: str = "t") -> list[tuple[str, str]]:
    """[(name, code)] computing ``exprs`` with common subexpressions pulled out (sympy ``cse``)."""
    names = list(exprs)
    vals = [evaluate_numbers(exprs[n]) for n in names]
    reps, reduced = sp.cse(vals, symbols=sp.numbered_symbols(temp_prefix), order="none")
    out = [(str(s), printer.doprint(evaluate_numbers(v))) for s, v in reps]
    out += [(n, printer.doprint(evaluate_numbers(v))) for n, v in zip(names, reduced)]
    return out


# --------------------------------------------------------------------------------------------------------------
# numpy / jax / torch source
# --------------------------------------------------------------------------------------------------------------
BACKENDS = {
    # import line, module alias, as-array, zeros_like, params constructor
    "numpy": ("import numpy as np", "np", "np.asarray({v})", "np.zeros_like(w)",
              "np.array([{vals}], dtype=np.float64)"),
    "jax": ("import jax.numpy as jnp", "jnp", "jnp.asarray({v})", "jnp.zeros_like(w)",
            "jnp.array([{vals}], dtype=jnp.float32)"),
    "torch": ("import torch", "torch", "torch.as_tensor({v})", "torch.zeros_like(w)",
              "torch.tensor([{vals}], dtype=torch.float32)"),
}

_SIDE_SHAPE = {"post": "(-1, 1)", "pre": "(1, -1)"}


def array_source(rule: ResolvedRule, backend: str) -> str:
    """A self-contained Python file (imports only numpy, jax.numpy or torch) computing the rule."""
    if backend not in BACKENDS:
        raise RuleError(f"unknown array backend '{backend}'")
    imp, mod, asarray, zeros, params_ctor = BACKENDS[backend]
    f = rule_form(rule)
    printer = ArrayPrinter(mod, torch=(backend == "torch"))
    args = [v for v in f.variables if v != "w"]
    args.insert(len([v for v in args if VARIABLES[v].side != "syn"]), "w")
    name = safe_name(rule)
    title = f"Plasticity rule {name}" if name else "Plasticity rule"
    vals = ", ".join(float_text(v) for v in f.values)
    exprs = {"dw": f.dw}
    if f.has_elig:
        exprs["delig"] = f.delig
    body = print_assignments(exprs, printer)

    doc_vars = []
    for v in args:
        var = VARIABLES[v]
        shape = {"post": "[N]", "pre": "[M]", "global": "scalar", "syn": "[N, M]"}[var.side]
        doc_vars.append(f"    {v:<6} {shape:<7} {var.side:<6} {var.description}")
    dflt = numeric_defaults(rule)
    returns = "(dw, delig), each [N, M]" if f.has_elig else "dw [N, M]"
    pform = expr_line(f)
    lines = [
        f'"""{title} exported by plasticity-search (target: {backend}).',
        "",
        f"    {formula_text(rule)}",
        "",
        "With the constants as a parameter vector c = PARAMS:",
        "",
        *[f"    {ln}" for ln in pform],
        "",
        f"rule(...) has the semantics of plasticity_search Space.apply and returns {returns}:",
        *doc_vars,
        "Post-side [N] and pre-side [M] quantities meet as outer products. A simulator applies",
        "w += lr * dw each step (lr in DEFAULTS), then clips w to DEFAULTS['w_bounds'] if present.",
        'Pass params=... to evaluate with other constants (e.g. to fine-tune them by gradient).',
        '"""',
        imp,
        "",
        f"PARAMS = {params_ctor.format(vals=vals)}",
        f"PARAM_ROLES = {tuple(f.roles)!r}",
        f"VARIABLES = {tuple(args)!r}",
        f"DEFAULTS = {dflt!r}",
        "",
        "",
        f"def rule({', '.join(args)}, *, params=PARAMS):",
        f'    """{returns} of the plasticity rule {name}."""' if name else f'    """{returns} of the plasticity rule."""',
    ]
    for v in args:
        side = VARIABLES[v].side
        conv = asarray.format(v=v)
        if side in _SIDE_SHAPE:
            lines.append(f"    {v} = {conv}.reshape{_SIDE_SHAPE[side]}")
        else:
            lines.append(f"    {v} = {conv}")
    if backend == "numpy" and f.consts:
        # float64 PARAMS (exact float32 values) would promote float32 inputs to float64: computed in w's precision
        lines.append("    params = np.asarray(params, dtype=np.result_type(w, np.float32))")
    for i, c in enumerate(f.consts):
        lines.append(f"    {c} = params[{i}]  # {f.roles[i]}")
    for lhs, code in body:
        lines.append(f"    {lhs} = {code}")
    lines.append(f"    dw = {zeros} + dw")
    if f.has_elig:
        lines.append(f"    delig = {zeros} + delig")
        lines.append("    return dw, delig")
    else:
        lines.append("    return dw")
    return "\n".join(lines) + "\n"


def expr_line(f: ParamForm) -> list[str]:
    lines = [f"dw = {comment_text(sp.sstr(f.dw))}"]
    if f.has_elig:
        lines.append(f"delig = {comment_text(sp.sstr(f.delig))}")
    return lines


# --------------------------------------------------------------------------------------------------------------
# spike-triggered / continuous split (Brian2, NESTML)
# --------------------------------------------------------------------------------------------------------------
# variables an event-based synapse model can hold: spikes, traces, the weight, eligibility, reward and baseline
SYNAPSE_VARS = ("sx", "sy", "tx", "ty", "tx2", "ty2", "w", "elig", "r", "rbar")
PRE_TRACES = ("tx", "tx2")
POST_TRACES = ("ty", "ty2")
# trace -> (time-constant parameter, default in ms), see docs/SPIKING_CONVENTIONS.md
TRACE_TAUS = {"tx": ("tau_plus", 20.0), "ty": ("tau_minus", 20.0), "tx2": ("tau_x", 101.0),
              "ty2": ("tau_y", 125.0), "elig": ("tau_elig", 1000.0)}


@dataclass(frozen=True)
class SpikeSplit:
    """dw = f0 + sx*f1 + sy*f2 + sx*sy*f3 (exact for 0/1 spikes), the same for delig (g0..g3).

    f0: every step; f1: on a pre spike; f2: on a post spike; f3: when both spike in the same step.
    """

    f: tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]
    g: tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]


def _split(e: sp.Expr) -> tuple[sp.Expr, ...]:
    sx, sy = symbol("sx"), symbol("sy")
    v = {(a, b): e.xreplace({sx: sp.Integer(a), sy: sp.Integer(b)}) for a in (0, 1) for b in (0, 1)}
    parts = [v[0, 0], v[1, 0] - v[0, 0], v[0, 1] - v[0, 0], v[1, 1] - v[1, 0] - v[0, 1] + v[0, 0]]
    out = []
    for p in parts:
        if p != 0 and sp.expand(p) == 0:
            p = sp.Integer(0)
        if p.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise RuleError("the rule is not finite when a spike variable is 0 or 1 (division by a spike?)")
        out.append(p)
    return tuple(out)


def spike_split(f: ParamForm) -> SpikeSplit:
    return SpikeSplit(_split(f.dw), _split(f.delig) if f.has_elig else (sp.Integer(0),) * 4)


class SynapseVariablesError(RuleError):
    """A rule reads variables a synapse model does not have (``variables``: their names)."""

    def __init__(self, message: str, variables: list[str]):
        super().__init__(message)
        self.variables = list(variables)


def check_synapse_rule(rule: ResolvedRule, f: ParamForm, target: str) -> None:
    """RuleError unless the rule only reads quantities an event-based synapse model has."""
    if rule.model != "spiking":
        used = ", ".join(f.variables)
        raise RuleError(f"{target} export needs a spiking rule; this is a rate rule{f' (reads {used})' if used else ''}"
                        ", which has no spike-triggered form")
    bad = [v for v in f.variables if v not in SYNAPSE_VARS]
    if len(bad) == 1:
        raise SynapseVariablesError(f"variable '{bad[0]}' ({VARIABLES[bad[0]].description}) has no counterpart in "
                                    f"a {target} synapse model (it can read {', '.join(SYNAPSE_VARS)})", bad)
    if bad:
        raise SynapseVariablesError(f"variables {', '.join(repr(v) for v in bad)} have no counterpart in a {target} "
                                    f"synapse model (it can read {', '.join(SYNAPSE_VARS)})", bad)


def synapse_defaults(rule: ResolvedRule, f: ParamForm) -> dict:
    """Keyword defaults of an exported synapse: constants c0..., lr, the time constants in use, weight bounds."""
    d = numeric_defaults(rule)
    out = {str(c): v for c, v in zip(f.consts, f.values)}
    out["lr"] = float(d.get("lr", 1.0))
    return out


def used_traces(f: ParamForm) -> list[str]:
    """Traces (and 'elig') the synapse model must hold, in a fixed order."""
    names = set(f.variables) | ({"elig"} if f.has_elig else set())
    return [t for t in ("tx", "tx2", "ty", "ty2", "elig") if t in names]


def trace_taus(rule: ResolvedRule, traces) -> dict[str, float]:
    d = numeric_defaults(rule)
    return {TRACE_TAUS[t][0]: float(d.get(TRACE_TAUS[t][0], TRACE_TAUS[t][1])) for t in traces}


def weight_bounds(rule: ResolvedRule) -> tuple[float, float] | None:
    b = numeric_defaults(rule).get("w_bounds")
    return (b[0], b[1]) if isinstance(b, list) else None


class EquationPrinter(OpPrinter):
    """Infix printing of our op set for equation languages (Brian2, NESTML); subclasses complete the op table."""

    functions: ClassVar[dict[str, str]] = {"exp": "exp", "log": "log", "tanh": "tanh", "abs": "abs"}

    def fold(self, template: str, first, *rest) -> str:
        """An n-ary op as nested binary ones: ``template.format(so_far, next)`` over the arguments in turn."""
        out = self._print(first)
        for a in rest:
            out = template.format(out, self._print(a))
        return out

    def _not_finite(self, e):
        raise RuleError("the rule has a non-finite constant (division by zero?)")

    _print_NaN = _print_Infinity = _print_NegativeInfinity = _print_ComplexInfinity = _not_finite

    def _print_Function(self, e):
        raise RuleError(f"cannot export function '{e.func}'")

    def emptyPrinter(self, e):  # noqa: N802 - sympy API
        raise RuleError(f"cannot export '{e}'")

    def print(self, e: sp.Expr) -> str:
        return self.doprint(evaluate_numbers(e))
