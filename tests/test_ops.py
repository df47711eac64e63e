"""Every op of the op table: JAX against sympy on random inputs including edge values."""
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from plasticity_search.rules import OPS, SYN_FACTORS

EDGE = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e-3, -1e-3, 30.0, -30.0, 1e4, -1e4], np.float64)


def _inputs():
    rng = np.random.default_rng(0)
    a = np.concatenate([EDGE, rng.normal(size=40) * 3, EDGE[::-1]])
    b = np.concatenate([EDGE[::-1], rng.normal(size=40) * 3, EDGE])
    return a, b


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_op_jax_matches_sympy(op):
    a, b = _inputs()
    sa, sb = sp.Symbol("a", real=True), sp.Symbol("b", real=True)
    c = 0.7
    got = np.asarray(op.jax(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), jnp.float32(c)), np.float64)
    expr = op.sympy(sa, sb, sp.Float(c))
    for i in range(a.size):
        ref = complex(sp.N(expr.subs({sa: a[i], sb: b[i]})) if isinstance(expr, sp.Basic) else expr)
        ok_ref = np.isfinite(ref.real) and abs(ref.imag) < 1e-12 and ref != sp.zoo
        if not ok_ref:
            # sympy says undefined / complex / infinite: JAX must give a non-finite value, never raise
            assert not np.isfinite(got[i]) or (op.name in ("step", "sign")), (op.name, a[i], b[i], got[i], ref)
            continue
        ref = ref.real
        if not np.isfinite(got[i]):
            # float32 overflow where the exact value is finite but beyond float32
            assert abs(ref) > 3e38 or op.name in ("exp", "div", "recip"), (op.name, a[i], b[i], got[i], ref)
            continue
        assert np.isclose(got[i], ref, rtol=2e-5, atol=1e-5), (op.name, a[i], b[i], got[i], ref)


@pytest.mark.parametrize("s", SYN_FACTORS, ids=lambda s: s.name)
def test_syn_factor_jax_matches_sympy(s):
    a, b = _inputs()
    sw, sc = sp.Symbol("w", real=True), sp.Symbol("c", real=True)
    got = np.asarray(s.jax(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)), np.float64)
    expr = s.sympy(sw, sc)
    for i in range(a.size):
        ref = float(sp.N(sp.sympify(expr).subs({sw: a[i], sc: b[i]})))
        assert np.isclose(got[i], ref, rtol=2e-5, atol=1e-5), (s.name, a[i], got[i], ref)


def test_op_table_complete():
    for op in OPS:
        assert op.arity in (0, 1, 2)
        assert callable(op.jax) and callable(op.sympy)
        assert "{a}" in op.latex or op.arity == 0
