"""What a rule's printed forms promise: the text (and sympy) form reads back as the same rule, a form that is not
real-valued is refused, constants are what the compiled rule computes, the exports keep float32, and the
interpreter's Space.apply computes every term on its own as the exports do (an inf in one term stays there)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from plasticity_search.export import export
from plasticity_search.rules import RATE_SPACE, Program, random_population
from plasticity_search.rules.formula import compile_formula, expr_latex, to_text
from plasticity_search.rules.program import RuleError
from plasticity_search.rules.resolve import resolve_rule


def _values(space, rng):
    """Positive random values of the space's variables (sqrt and log stay real): post [3], pre [4], globals."""
    out = {}
    for v in space.post_vars + space.global_vars:
        out[v] = jnp.asarray(rng.uniform(0.2, 2.0, size=(3,) if v in space.post_vars else ()), jnp.float32)
    for v in space.pre_vars:
        out[v] = jnp.asarray(rng.uniform(0.2, 2.0, size=(4,)), jnp.float32)
    return out


def _apply(rule, vals, w):
    return np.asarray(rule.space.apply(rule.program, vals, w)[0])


@pytest.mark.parametrize("formula", [
    "step(y)*x", "x*Heaviside(y, 0)", "max(max(y, 0), ybar)*x", "x*Max(0, y, ybar)", "x*Min(y, ybar, theta)",
    "x/sqrt(y)", "y*sqrt(y)*x", "x*y**(-5/2)", "exp(1)*x*y - y**2*w", "tanh(1)*sign(w)*x*y", "exp(y + 1)*x",
    "x*y**(31/2)",
])
def test_printed_text_reads_back_as_the_same_rule(formula):
    """The text form of a compiled formula parses back (sympy's own spellings: Heaviside(y, 0), Max of three
    arguments, y**(-1/2); Euler's number as exp(1)), prints the same again, and computes the same dw."""
    rule = resolve_rule(formula)
    text = to_text(rule.program, rule.space)                   # constants to 4 significant digits
    assert to_text(*_prog_space(text)) == text
    again = resolve_rule(to_text(rule.program, rule.space, digits=9))     # exact constants
    rng = np.random.default_rng(0)
    vals = _values(rule.space, rng)
    w = jnp.asarray(rng.uniform(-1, 1, size=(3, 4)), jnp.float32)
    np.testing.assert_allclose(_apply(again, vals, w), _apply(rule, vals, w), rtol=1e-5, atol=1e-6)


def test_random_programs_text_parses_back():
    """The text of random programs of the full rate space parses and compiles back (into a space of the size the
    rule needs) and computes the same dw on positive inputs; before, x/sqrt(y), Max of three arguments,
    Heaviside(y, 0) and Euler's number made about one in seven fail."""
    pop = random_population(jax.random.key(4), RATE_SPACE, 40, 3)
    rng = np.random.default_rng(1)
    checked = 0
    for i in range(40):
        prog = Program(*[np.asarray(x)[i] for x in pop])
        text = to_text(prog, RATE_SPACE, digits=9)     # the exact constants (the default rounds to 4 digits)
        if "Piecewise" in text or "zoo" in text or "nan" in text or "oo" in text or "I" in text:
            continue
        back, space = compile_formula(text, RATE_SPACE)
        full = _values(RATE_SPACE, rng)
        w = jnp.asarray(rng.uniform(0.2, 1, size=(3, 4)), jnp.float32)
        want = np.asarray(RATE_SPACE.apply(prog, full, w)[0])
        got = np.asarray(space.apply(back, full, w)[0])
        ok = np.isfinite(want) & np.isfinite(got)
        np.testing.assert_allclose(got[ok], want[ok], rtol=2e-4, atol=1e-5)
        checked += 1
    assert checked >= 34


def test_heaviside_value_at_zero_must_be_the_step_ops():
    with pytest.raises(RuleError, match="Heaviside's value at 0 must be 0"):
        resolve_rule("x*Heaviside(y, 1)")
    assert to_text(*_prog_space("x*Heaviside(y, 0)")) == to_text(*_prog_space("step(y)*x"))
    assert to_text(*_prog_space("x*Heaviside(y, 0.0)")) == to_text(*_prog_space("step(y)*x"))


def test_eulers_number_prints_as_exp_1_and_a_capital_e_is_no_name():
    """E prints as exp(1), which reads back; "E" itself stays an unknown name (-E*x is a likely typo of -e*x)."""
    assert to_text(*_prog_space("exp(1)*x*y")).startswith("2.718")
    for text in ("E*x", "-E*x"):
        with pytest.raises(RuleError, match="unknown name 'E'"):
            resolve_rule(text)


def test_subnormal_constants_of_a_rule_file_are_the_zero_the_compiled_rule_uses(tmp_path):
    import json
    path = tmp_path / "r.json"
    path.write_text(export("0.5*x*y", "json"))
    doc = json.loads(path.read_text())
    doc["program"]["term_coef"] = [1e-40] * len(doc["program"]["term_coef"])
    path.write_text(json.dumps(doc))
    rule = resolve_rule(str(path))
    assert not np.any(np.asarray(rule.program.term_coef))
    vals = {"y": jnp.ones((2,)), "x": jnp.ones((3,))}
    assert not np.any(np.asarray(rule.space.apply(rule.program, vals, jnp.zeros((2, 3)))[0]))


def _prog_space(formula):
    r = resolve_rule(formula)
    return r.program, r.space


def test_forms_that_are_not_real_valued_are_refused():
    with pytest.raises(RuleError, match="not real-valued"):
        resolve_rule("log(-1.3)*x")
    # a program that takes the log of a negative constant: log(1 + (-3)) on the post side
    r = resolve_rule("log(y + 2)*x")
    prog = r.program
    assert [r.space.ops[o] for o in prog.post_op] == ["cadd", "log"]
    post_a, post_c = np.array(prog.post_a), np.array(prog.post_c, np.float32)
    post_a[0], post_c[0] = 0, -3.0          # read the constant-1 register: 1 - 3 = -2
    bad = dataclasses.replace(r, program=prog._replace(post_a=post_a, post_c=post_c))
    for target in ("sympy", "latex", "numpy"):
        with pytest.raises(RuleError, match="not real-valued"):
            export(bad, target)
    assert '"schema"' in export(bad, "json")


def test_constants_below_float32_normal_numbers_are_refused():
    """XLA on the CPU flushes subnormal float32 numbers to zero: 1e-40*x*y would be 0 in the compiled rule and
    1e-40*x*y in the exports."""
    with pytest.raises(RuleError, match="out of the float32 range"):
        resolve_rule("1e-40*x*y")
    resolve_rule("1.2e-38*x*y")


def test_latex_prints_eulers_number_apart_from_the_error():
    e, x = sp.symbols("e x", real=True)
    assert expr_latex(sp.E * e * x) == r"\Delta w = \mathrm{e} e x"


def test_numpy_export_of_a_step_keeps_float32():
    ns: dict = {}
    exec(export("step(y)*x", "numpy"), ns)      # the exported module's own source
    dw = ns["rule"](np.float32([1, -1, np.nan]), np.float32([2]), np.zeros((3, 1), np.float32))
    assert dw.dtype == np.float32
    np.testing.assert_array_equal(dw.ravel(), [2, 0, 0])


@pytest.mark.parametrize("formula, vals, w, elig, want", [
    # an infinite eligibility drive (log(0)) that no weight term reads leaves dw alone
    ("dw = sy*tx; delig = log(tx)", {"sy": [1.0, 0.0], "tx": [0.0, 0.5]}, 0.0, 0.0, [[0.0, 0.5], [0.0, 0.0]]),
    # an infinite eligibility in a factor no term uses
    ("sy*tx", {"sy": [1.0], "tx": [2.0]}, 0.5, np.inf, [[2.0]]),
])
def test_apply_keeps_each_term_to_itself(formula, vals, w, elig, want):
    """Space.apply computes each factor group from its own terms, as the exports do: 0 * inf from another group's
    term or from an unused factor does not turn dw into NaN. The search's hot path (exact=False) counts such a
    candidate as diverged instead (its dw is NaN), which only costs that candidate."""
    r = resolve_rule(formula)
    vals = {k: jnp.asarray(v, jnp.float32) for k, v in vals.items()}
    n, m = len(want), len(want[0])
    W = jnp.full((n, m), w, jnp.float32)
    E = jnp.full((n, m), elig, jnp.float32)
    dw, _ = r.space.apply(r.program, vals, W, E)
    np.testing.assert_array_equal(np.asarray(dw), np.asarray(want, np.float32))
    post_in = r.space.side_inputs("post", vals, n)
    pre_in = r.space.side_inputs("pre", vals, m)
    P, Q = r.space.term_vectors(r.program, r.space.post_registers(r.program, post_in),
                                r.space.pre_registers(r.program, pre_in))
    fast, _ = r.space.combine(r.program, P, Q, W, E)
    assert np.isnan(np.asarray(fast)).any()
    ns: dict = {}
    exec(export(r, "numpy"), ns)
    args = {k: np.asarray(v) for k, v in vals.items()}
    if "w" in ns["VARIABLES"]:
        args["w"] = np.asarray(W)
    if "elig" in ns["VARIABLES"]:
        args["elig"] = np.asarray(E)
    with np.errstate(divide="ignore"):
        out = ns["rule"](**args)
    out = out[0] if isinstance(out, tuple) else out
    np.testing.assert_array_equal(out, np.asarray(want, np.float32))
