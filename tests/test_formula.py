"""Formulas: parser safety, round trips for every known rule, LaTeX, separable compilation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from plasticity_search.rules import (RATE_SPACE, RULES, RuleError, compile_formula, complexity, family_program,
                                     parse_formula, to_latex, to_sympy_raw, to_text, with_coefficients)


def _numeric_equal(e1, e2, names, n=20, seed=0):
    rng = np.random.default_rng(seed)
    syms = sorted((e1.free_symbols | e2.free_symbols), key=lambda s: s.name)
    f1 = sp.lambdify(syms, e1, "numpy")
    f2 = sp.lambdify(syms, e2, "numpy")
    for _ in range(n):
        vals = rng.uniform(0.1, 2.0, size=len(syms))
        assert np.isclose(f1(*vals), f2(*vals), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", list(RULES))
def test_known_rule_round_trip(name):
    """text -> program -> sympy -> text -> program -> sympy is the same function as the original formula."""
    rule = RULES[name]
    space = rule.space
    dw0, de0 = parse_formula(rule.formula, space, rule.params)
    prog, sp_ = rule.compile()
    dw1, de1 = to_sympy_raw(prog, sp_, digits=8)
    _numeric_equal(dw0, dw1, space.variables)
    if de0 != 0:
        _numeric_equal(de0, de1, space.variables)
    text = to_text(prog, sp_, digits=8)
    prog2, sp2 = compile_formula(text, space)
    dw2, de2 = to_sympy_raw(prog2, sp2, digits=8)
    _numeric_equal(dw0, dw2, space.variables)
    assert complexity(prog2, sp2) >= 1
    assert to_latex(prog, sp_).startswith(r"\Delta w =")


@pytest.mark.parametrize("name", list(RULES))
def test_program_matches_sympy_numerically(name):
    """The interpreter computes what the sympy form of the program says."""
    rule = RULES[name]
    prog, space = rule.compile()
    rng = np.random.default_rng(1)
    N, M = 4, 3
    vals = {}
    for v in space.post_vars:
        vals[v] = rng.uniform(0.1, 1.5, N).astype(np.float32)
    for v in space.pre_vars:
        vals[v] = rng.uniform(0.1, 1.5, M).astype(np.float32)
    for v in space.global_vars:
        vals[v] = np.float32(rng.uniform(0.1, 1.5))
    w = rng.uniform(0.1, 0.9, (N, M)).astype(np.float32)
    elig = rng.uniform(0.1, 0.9, (N, M)).astype(np.float32)
    dw, de = space.apply(prog, {k: jnp.asarray(v) for k, v in vals.items()}, jnp.asarray(w), jnp.asarray(elig))
    e_dw, e_de = to_sympy_raw(prog, space, digits=10)
    for i in range(N):
        for j in range(M):
            subs = {sp.Symbol(v, real=True): float(vals[v][i]) for v in space.post_vars}
            subs.update({sp.Symbol(v, real=True): float(vals[v][j]) for v in space.pre_vars})
            subs.update({sp.Symbol(v, real=True): float(vals[v]) for v in space.global_vars})
            subs[sp.Symbol("w", real=True)] = float(w[i, j])
            subs[sp.Symbol("elig", real=True)] = float(elig[i, j])
            assert np.isclose(float(dw[i, j]), float(e_dw.subs(subs)), rtol=1e-4, atol=1e-6)
            if space.elig:
                assert np.isclose(float(de[i, j]), float(sp.sympify(e_de).subs(subs)), rtol=1e-4, atol=1e-6)


def test_oja_formula_and_complexity():
    prog, space = compile_formula("y*(x - y*w)", RATE_SPACE)
    assert complexity(prog, space) == 4
    dw, _ = to_sympy_raw(prog, space)
    y, x, w = (sp.Symbol(n, real=True) for n in "yxw")
    assert sp.expand(dw - (y * x - y**2 * w)) == 0


def test_side_pure_factors_stay_factored():
    prog, space = compile_formula("(y - ybar)*(x - xbar)", RATE_SPACE)
    assert int(np.sum(prog.term_on)) == 1


@pytest.mark.parametrize("bad,msg", [
    ("__import__('os').system('id')", "unexpected character"),
    ("os.system", "unexpected character"),
    ("foo * x", "unknown name 'foo'"),
    ("evil(x)", "unknown function 'evil'"),
    ("y * (x", r"expected '\)'"),
    ("tanh(x*y)", "not a local separable rule"),
    ("x y", "unexpected 'y'"),
    ("", "empty formula"),
    ("x/0", "not finite"),
    ("w**3", "not in the space's menu"),
    ("lambda: 1", "unexpected character ':'"),
    ("x.__class__", "unexpected character '.'"),
    # a number in a message is shown short and whole, never cut off (1e30 once read "10000000000000000000")
    ("y**1e30", r"^exponent 1e\+30 is too large"),
    ("2**(10**30)", r"^constant 2\*\*1\.000e\+30 is out of the float32 range"),
    ("y**17.5", r"^exponent 17\.5 is too large"),
])
def test_parser_rejects(bad, msg):
    with pytest.raises(RuleError, match=msg):
        compile_formula(bad, RATE_SPACE)


def test_parser_precedence():
    dw, _ = parse_formula("-y**2*w + 2*x*y/4 - -e", RATE_SPACE)
    y, x, w, e = (sp.Symbol(n, real=True) for n in ("y", "x", "w", "e"))
    assert sp.simplify(dw - (-(y**2) * w + x * y / 2 + e)) == 0
    dw, _ = parse_formula("2**3**2", RATE_SPACE)
    assert dw == 512


def test_family_coefficients_map():
    rule = RULES["shervani_tabar"]
    prog, space, M, theta0 = family_program(rule)
    p = with_coefficients(prog, M, jnp.array([0.5, 0.2, 0.3]))
    dw, _ = to_sympy_raw(jax.tree.map(np.asarray, p), space, digits=8)
    ref, _ = parse_formula(rule.formula, space, {"th0": 0.5, "th1": 0.2, "th2": 0.3})
    _numeric_equal(dw, ref, space.variables)
    vprog, vspace, VM, vtheta = family_program(RULES["volterra"])
    assert VM.shape == (27, 27) and vspace.n_terms == 27


def test_rule_equation_names_the_target_once():
    from plasticity_search.rules.formula import rule_equation

    assert rule_equation("e*x") == "dw = e*x"
    assert rule_equation("dw = elig*(r - rbar); delig = sy*tx") == "dw = elig*(r - rbar); delig = sy*tx"
    assert rule_equation("delig = sy*tx") == "delig = sy*tx"


@pytest.mark.parametrize("text", ["e*(3*e_pre - 0.8*x + 0.0)", "0.0*x*y + x*y", "x*y + 0e5", "x*y - 0.000"])
def test_float_zero_constants_are_accepted(text):
    """A written-out zero (0.0, 0e5) is a valid constant: sympy's Float(0.0) != Integer(0) must not make it
    'out of the float32 range'."""
    from plasticity_search.rules.resolve import resolve_rule

    rule = resolve_rule(text)
    assert rule.program is not None
