"""The op table: the single source of truth for every operation a rule program can use.

Each vector op is elementwise over neurons and declares its arity, its JAX function, its sympy function, its
LaTeX template and the function names a formula may call it by. Arity-0 and constant ops read the instruction's
constant ``c``. A second, tiny table lists the per-synapse factors ``S(w)`` of the separable form.

Everything else is derived from this table: the formula parser's functions (:func:`formula_functions`), the
formula compiler's map from sympy heads back to ops (:data:`SYMPY_HEADS`), and the ops every printer of
:mod:`plasticity_search.export` must spell for its target (:data:`PRINTED_OPS`; the printers check at import).

Numerics follow plain arithmetic (no protected division): a program may produce inf/NaN; the interpreter never
raises and the fitness turns non-finite results into the worst score.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# JAX and sympy load on first use, not with the table: listing rules, building a Space or validating a config
# reads only names, arities and templates (``plasticity-search rules`` starts in a fraction of a second).
# ``jnp.xxx`` / ``sp.xxx`` below resolve when an op's function is called; SYMPY_HEADS and PRINTED_OPS, which need
# sympy to derive, are computed on first access (module ``__getattr__``).


def _jnp():
    import jax.numpy as jnp
    return jnp


def _sp():
    import sympy as sp
    return sp


@dataclass(frozen=True)
class Op:
    name: str
    arity: int            # number of register operands (0, 1 or 2); ``uses_const`` ops also read c
    jax: Callable         # (a, b, c) -> array
    sympy: Callable       # (a, b, c) -> sympy expression
    latex: str            # template with {a}, {b}, {c}
    uses_const: bool = False
    transcendental: bool = False
    names: tuple[str, ...] = ()   # function names a formula may call the op by, e.g. ("abs", "Abs")
    # its derivative is finite at every input, inf and NaN included (constant or a select), so a zero cotangent
    # passes back as zero; the interpreter wraps the other ops so that it does (rules.program._interpreted)
    finite_grad: bool = False


def _sig_sym(a):
    return 1 / (1 + _sp().exp(-a))


OPS: tuple[Op, ...] = (
    Op("add", 2, lambda a, b, c: a + b, lambda a, b, c: a + b, "{a} + {b}", finite_grad=True),
    Op("sub", 2, lambda a, b, c: a - b, lambda a, b, c: a - b, "{a} - {b}", finite_grad=True),
    Op("mul", 2, lambda a, b, c: a * b, lambda a, b, c: a * b, r"{a} \cdot {b}"),
    Op("div", 2, lambda a, b, c: a / b, lambda a, b, c: a / b, r"\frac{{{a}}}{{{b}}}"),
    Op("max", 2, lambda a, b, c: _jnp().maximum(a, b), lambda a, b, c: _sp().Max(a, b), r"\max({a}, {b})",
       names=("max", "Max"), finite_grad=True),
    Op("min", 2, lambda a, b, c: _jnp().minimum(a, b), lambda a, b, c: _sp().Min(a, b), r"\min({a}, {b})",
       names=("min", "Min"), finite_grad=True),
    Op("neg", 1, lambda a, b, c: -a, lambda a, b, c: -a, "-{a}", finite_grad=True),
    Op("square", 1, lambda a, b, c: a * a, lambda a, b, c: a**2, "{a}^2"),
    Op("abs", 1, lambda a, b, c: _jnp().abs(a), lambda a, b, c: _sp().Abs(a), r"\left|{a}\right|",
       names=("abs", "Abs")),
    Op("sign", 1, lambda a, b, c: _jnp().sign(a), lambda a, b, c: _sp().sign(a), r"\operatorname{{sign}}({a})",
       names=("sign",), finite_grad=True),
    Op("step", 1, lambda a, b, c: _jnp().where(a > 0, 1.0, 0.0).astype(a.dtype),
       lambda a, b, c: _sp().Heaviside(a, 0), r"\Theta({a})", names=("step", "Heaviside"),
       finite_grad=True),
    Op("relu", 1, lambda a, b, c: _jnp().maximum(a, 0.0), lambda a, b, c: _sp().Max(a, 0), r"\max({a}, 0)",
       names=("relu",), finite_grad=True),
    Op("recip", 1, lambda a, b, c: 1.0 / a, lambda a, b, c: 1 / a, r"\frac{{1}}{{{a}}}"),
    Op("tanh", 1, lambda a, b, c: _jnp().tanh(a), lambda a, b, c: _sp().tanh(a), r"\tanh({a})", transcendental=True,
       names=("tanh",)),
    Op("sigmoid", 1, lambda a, b, c: 1.0 / (1.0 + _jnp().exp(-a)), lambda a, b, c: _sig_sym(a),
       r"\sigma({a})", transcendental=True, names=("sigmoid",)),
    Op("exp", 1, lambda a, b, c: _jnp().exp(a), lambda a, b, c: _sp().exp(a), r"\exp({a})", transcendental=True,
       names=("exp",)),
    Op("log", 1, lambda a, b, c: _jnp().log(a), lambda a, b, c: _sp().log(a), r"\log({a})", transcendental=True,
       names=("log",)),
    Op("sqrt", 1, lambda a, b, c: _jnp().sqrt(a), lambda a, b, c: _sp().sqrt(a), r"\sqrt{{{a}}}", transcendental=True,
       names=("sqrt",)),
    Op("cmul", 1, lambda a, b, c: a * c, lambda a, b, c: c * a, r"{c} \cdot {a}", uses_const=True),
    Op("cadd", 1, lambda a, b, c: a + c, lambda a, b, c: a + c, "{a} + {c}", uses_const=True, finite_grad=True),
    Op("const", 0, lambda a, b, c: _jnp().full_like(a, c), lambda a, b, c: c, "{c}", uses_const=True,
       finite_grad=True),
)

OP_BY_NAME: dict[str, Op] = {op.name: op for op in OPS}

# ops without transcendental functions: cheap, and enough for every polynomial rule
POLY_OPS = tuple(op.name for op in OPS if not op.transcendental)


def _call(op: Op) -> Callable:
    return lambda *args: op.sympy(*args, *([None] * (3 - len(args))))


def formula_functions() -> dict[str, tuple[int, Callable]]:
    """The functions a formula may call: name -> (arity, sympy function of the arguments), from ``Op.names``."""
    return {name: (op.arity, _call(op)) for op in OPS for name in op.names}


def _sympy_forms() -> tuple[dict[type, str], tuple[str, ...]]:
    sp = _sp()
    from sympy.core.function import Application

    a, b, c = sp.symbols("a b c")
    heads: dict[type, str] = {}
    roots = []
    for op in OPS:
        e = op.sympy(a, b, c)
        if isinstance(e, Application):
            heads.setdefault(e.func, op.name)       # relu's Max(a, 0) is max's head: the first op owns it
        elif isinstance(e, sp.Pow) and not e.exp.is_Integer:
            roots.append(op.name)                   # sqrt: a power that is no product of factors
    return heads, tuple(roots)


# Derived from the sympy forms on first access (``from .ops import SYMPY_HEADS`` included), then module globals:
# SYMPY_HEADS: dict[type, str]   sympy function class -> the op whose sympy form it heads (Abs -> abs,
#                                Heaviside -> step, Max -> max, ...)
# PRINTED_OPS: tuple[str, ...]   the ops a printer must spell for its target: the function heads and the fractional
#                                powers; every other op's sympy form is arithmetic (+, -, *, /, integer powers) or
#                                built from these (sigmoid from exp, relu is max)
_SYMPY_DERIVED = ("SYMPY_HEADS", "_ROOT_OPS", "PRINTED_OPS")


def __getattr__(name: str):
    if name in _SYMPY_DERIVED:
        heads, roots = _sympy_forms()
        globals().update(SYMPY_HEADS=heads, _ROOT_OPS=roots, PRINTED_OPS=tuple(heads.values()) + roots)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class SynFactor:
    """A per-synapse factor S(w, elig) of the separable form."""

    name: str
    jax: Callable          # (w, elig) -> array
    sympy: Callable        # (w, elig) -> sympy expression (w, elig are sympy symbols)
    latex: str


SYN_FACTORS: tuple[SynFactor, ...] = (
    SynFactor("1", lambda w, c: _jnp().ones_like(w), lambda w, c: _sp().Integer(1), "1"),
    SynFactor("w", lambda w, c: w, lambda w, c: w, "w"),
    SynFactor("w2", lambda w, c: w * w, lambda w, c: w**2, "w^2"),
    SynFactor("sign_w", lambda w, c: _jnp().sign(w), lambda w, c: _sp().sign(w), r"\operatorname{sign}(w)"),
    SynFactor("elig", lambda w, c: c, lambda w, c: c, r"\mathrm{elig}"),
    SynFactor("w_elig", lambda w, c: w * c, lambda w, c: w * c, r"w \, \mathrm{elig}"),
)

SYN_BY_NAME: dict[str, SynFactor] = {s.name: s for s in SYN_FACTORS}
