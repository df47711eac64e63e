"""Exports: every target is registered; the JAX/NumPy/PyTorch sources compute what the interpreter computes
(every known rule and random programs of both spaces); Brian2/NESTML refuse what they cannot express; generated
files never run user text. (Brian2 and NESTML runs: test_export_brian2.py, test_export_nestml.py.)"""
import ast
import functools
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_search.export import TARGETS, export
from plasticity_search.export.codegen import param_form
from plasticity_search.export.json_format import dumps_rule, rule_from_dict
from plasticity_search.rules import RATE_SPACE, RULES, SPIKING_SPACE, RuleError, index, random_population
from plasticity_search.rules.resolve import ResolvedRule, resolve_rule
from plasticity_search.rules.variables import VARIABLES

N, M = 5, 4
BACKENDS = ("numpy", "jax", "torch")
MODULES = {"numpy": "numpy", "jax": "jax.numpy", "torch": "torch"}


def load(source: str, name: str = "exported") -> dict:
    ns = {"__name__": name}
    exec(compile(source, f"{name}.py", "exec"), ns)  # our own generated source (see test_no_user_text_as_code)
    return ns


def inputs(space, seed: int, positive: bool):
    rng = np.random.default_rng(seed)
    draw = (lambda *s: rng.uniform(0.2, 1.5, s)) if positive else (lambda *s: rng.normal(0, 1.2, s))
    vals = {v: draw(N).astype(np.float32) for v in space.post_vars}
    vals.update({v: draw(M).astype(np.float32) for v in space.pre_vars})
    vals.update({v: np.float32(draw(1)[0]) for v in space.global_vars})
    w = draw(N, M).astype(np.float32)
    elig = rng.normal(0, 1.0, (N, M)).astype(np.float32)
    return vals, w, elig


def call(ns, backend, vals, w, elig):
    args = {}
    for v in ns["VARIABLES"]:
        x = w if v == "w" else elig if v == "elig" else vals[v]
        if backend == "torch":
            import torch
            x = torch.as_tensor(np.asarray(x))
        args[v] = x
    out = ns["rule"](**args)
    out = out if isinstance(out, tuple) else (out,)
    return [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o, np.float64) for o in out]


@functools.cache
def jitted_apply(space):
    return jax.jit(space.apply)


def compare(rule: ResolvedRule, backend: str, seed: int = 0, positive: bool = True, skip_nonfinite=False):
    """Max error of the exported source against Space.apply, relative to the output scale (None: skipped)."""
    vals, w, elig = inputs(rule.space, seed, positive)
    prog = type(rule.program)(*[jnp.asarray(x) for x in rule.program])
    dw, de = jitted_apply(rule.space)(prog, {k: jnp.asarray(v) for k, v in vals.items()}, jnp.asarray(w),
                                      jnp.asarray(elig))
    ref = [np.asarray(dw, np.float64), np.asarray(de, np.float64)]
    if not all(np.isfinite(r).all() for r in ref):
        if skip_nonfinite:
            return None
        raise AssertionError("interpreter output not finite")
    ns = load(export(rule, backend))
    got = call(ns, backend, vals, w, elig)
    f = param_form(rule.program, rule.space)
    assert len(got) == (2 if f.has_elig else 1)
    if not f.has_elig:
        assert not ref[1].any()
    err = 0.0
    for g, r in zip(got, ref):
        assert g.shape == (N, M)
        scale = max(1.0, float(np.abs(r).max()))
        if not np.isfinite(g).all():  # float32 rounding can overflow where the interpreter just did not
            assert skip_nonfinite and scale > 1e30, (g, r)
            return None
        err = max(err, float(np.abs(g - r).max()) / scale)
    return err


def test_every_target_registered():
    assert set(TARGETS) == {"sympy", "latex", "jax", "numpy", "torch", "brian2", "nestml", "json"}
    with pytest.raises(RuleError, match="unknown export format"):
        export("oja", "pdf")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(RULES))
def test_known_rule_matches_interpreter(name, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="torch not installed (pip install -e '.[torch]')")
    rule = resolve_rule(name)
    for seed, positive in ((0, True), (1, False)):
        err = compare(rule, backend, seed, positive, skip_nonfinite=not positive)
        assert err is None or err < 2e-5, (name, backend, err)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("space", [RATE_SPACE, SPIKING_SPACE], ids=["rate", "spiking"])
def test_random_programs_match_interpreter(space, backend):
    if backend == "torch":
        pytest.importorskip("torch", reason="torch not installed (pip install -e '.[torch]')")
    pop = random_population(jax.random.PRNGKey(7 if space is RATE_SPACE else 8), space, 24, max_init_terms=4)
    compared, worst = 0, 0.0
    for i in range(24):
        prog = index(pop, i)
        rule = ResolvedRule(prog, space, f"random_{i}", "", "rate" if space is RATE_SPACE else "spiking")
        for seed, positive in ((i, True), (100 + i, False)):
            err = compare(rule, backend, seed, positive, skip_nonfinite=True)
            if err is not None:
                compared += 1
                worst = max(worst, err)
    assert compared >= 24, compared
    assert worst < 1e-4, worst


def test_sources_import_only_their_library():
    for backend, mod in MODULES.items():
        tree = ast.parse(export("stdp_triplet", backend))
        imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported == {mod}, (backend, imported)


def test_generating_needs_none_of_the_target_libraries():
    code = ("import sys\nfrom plasticity_search.export import export, TARGETS\n"
            "for t in TARGETS:\n    export('stdp_add', t)\n"
            "bad = [m for m in ('torch', 'brian2', 'pynestml') if m in sys.modules]\n"
            "assert not bad, bad\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_jax_params_are_differentiable_and_jittable():
    ns = load(export("oja", "jax"))
    rng = np.random.default_rng(3)
    y, x, w = rng.normal(size=N), rng.normal(size=M), rng.normal(size=(N, M))
    c = ns["PARAMS"]
    assert np.allclose(c, [1.0, -1.0])
    g = jax.grad(lambda p: ns["rule"](y, x, w, params=p).sum())(c)
    assert np.allclose(g, [np.outer(y, x).sum(), (w * (y**2)[:, None]).sum()], rtol=1e-4)
    jitted = jax.jit(ns["rule"])
    assert np.allclose(jitted(y, x, w), ns["rule"](y, x, w), atol=1e-6)


def test_torch_params_are_differentiable():
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[torch]')")
    ns = load(export("r_stdp", "torch"))
    p = ns["PARAMS"].clone().requires_grad_(True)
    dw, de = ns["rule"](sy=[1.0, 0.0], ty=[0.2, 0.3], sx=[0.0, 1.0, 0.0], tx=[0.5, 0.1, 0.0], r=1.0, rbar=0.25,
                        w=torch.zeros(2, 3), elig=torch.ones(2, 3), params=p)
    (dw.sum() + de.sum()).backward()
    assert dw.shape == (2, 3) and p.grad is not None and torch.isfinite(p.grad).all()
    assert np.isclose(float(p.grad[0]), 6 * 0.75)


def test_numpy_export_broadcasts_scalars_and_keeps_dtype():
    ns = load(export("hebb", "numpy"))
    out = ns["rule"](y=2.0, x=np.array([1.0, 2.0, 3.0]), w=np.zeros((2, 3)))
    assert out.shape == (2, 3) and np.allclose(out, [[2, 4, 6], [2, 4, 6]])
    assert ns["VARIABLES"] == ("y", "x", "w")
    assert out.dtype == np.float64
    for dtype in (np.float32, np.float64):   # the output has the inputs' precision (PARAMS are float64)
        ns = load(export("0.5*x*y - 0.25*w", "numpy"))
        y, x, w = (np.asarray(v, dtype) for v in ([1.0, 2.0], [3.0], [[1.0], [2.0]]))
        out = ns["rule"](y=y, x=x, w=w)
        assert out.dtype == dtype and np.allclose(out, [[1.25], [2.5]])


@pytest.mark.parametrize("name", list(RULES))
def test_json_round_trip_is_exact(name):
    rule = resolve_rule(name)
    back = rule_from_dict(json.loads(dumps_rule(rule)))
    for a, b in zip(rule.program, back.program):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert back.space == rule.space and back.defaults == rule.defaults
    assert export(back, "jax") == export(rule, "jax")
    assert export(back, "latex") == export(rule, "latex")


# --- what brian2 / nestml cannot express: one-line RuleError naming why --------------------------------------
@pytest.mark.parametrize("target", ["brian2", "nestml"])
@pytest.mark.parametrize("spec,needle", [
    ("oja", "rate rule"),
    ("-0.01*w", "rate rule"),
    ("eprop", "variables 'psi', 'e' have"),
    ("bp_stdp", "variable 'e' "),
    ("urbanczik_senn", "variable 'v'"),
    ("0.1*psi*tx*sy", "variable 'psi'"),
])
def test_synapse_targets_refuse_what_they_cannot_map(target, spec, needle):
    with pytest.raises(RuleError, match=needle) as exc:
        export(spec, target)
    assert "\n" not in str(exc.value) and target in str(exc.value)


def test_nestml_refuses_same_step_pre_post_terms():
    with pytest.raises(RuleError, match=r"same step \(sx\*sy\)"):
        export("0.01*sx*sy + 0.01*sy*tx", "nestml")
    assert "spre" in export("0.01*sx*sy + 0.01*sy*tx", "brian2")  # brian2 gates them with a same-step flag


def test_cli_export_targets_and_exit_2(tmp_path):
    out = tmp_path / "stdp.py"
    r = subprocess.run([sys.executable, "-m", "plasticity_search", "export", "stdp_add", "--to", "numpy", "-o",
                        str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ns = load(out.read_text())
    dw = ns["rule"](sy=[1.0], ty=[0.0], sx=[0.0], tx=[0.5], w=np.zeros((1, 1)))
    assert np.isclose(dw[0, 0], 0.005)
    r = subprocess.run([sys.executable, "-m", "plasticity_search", "export", "bcm", "--to", "nestml"],
                       capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "rate rule" in lines[0], r.stderr


# --- safety: user text never becomes code ----------------------------------------------------------------------
def test_no_user_text_as_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = f'x"""\nimport os; os.system("touch {marker}")  # \'\'\' \\'
    base = resolve_rule("stdp_add")
    rule = ResolvedRule(base.program, base.space, evil, evil, "spiking",
                        {"lr": f"__import__('os').system('touch {marker}')", "tau_plus": 20.0, evil: 1.0,
                         "w_bounds": [0.0, "1"]}, evil)
    for target in TARGETS:
        src = export(rule, target)
        if target == "json":  # data, not code: the text is kept, as JSON strings
            assert json.loads(src)["name"] == evil
            continue
        assert "os.system" not in src and "import os" not in src and "__import__" not in src, target
        if target in ("jax", "numpy", "brian2"):
            ast.parse(src)
        if target in ("jax", "numpy"):
            ns = load(src)
            ns["rule"](sy=[1.0], ty=[0.0], sx=[0.0], tx=[0.5], w=np.zeros((1, 1)))
    assert not marker.exists()


def test_every_variable_has_an_array_export():
    # one formula per variable: the generated signature names it, in space order, with the right shape
    for v, var in VARIABLES.items():
        if var.side in ("syn",) or v in ("r", "rbar"):
            continue
        other = "x" if var.side == "post" and "rate" in var.models else "y" if "rate" in var.models else \
            ("tx" if var.side == "post" else "ty")
        ns = load(export(f"{v}*{other}", "numpy"))
        assert v in ns["VARIABLES"] and ns["VARIABLES"][-1] == "w"


def test_a_formula_undefined_as_an_expression_is_refused_except_as_json(tmp_path):
    """post program: y - y, then 1/that, then tanh: the network computes tanh(1/0) = 1 (IEEE), sympy folds it to
    tanh(zoo). No formula target can write that: a one-line RuleError; json keeps the exact program."""
    from plasticity_search.rules import Program, Space

    space = RATE_SPACE
    ops = list(space.ops)
    z = lambda n, v=0: [v] * n  # noqa: E731
    post_op = [ops.index("sub"), ops.index("recip"), ops.index("tanh")] + z(space.n_post - 3)
    n_in = space.n_inputs("post")
    prog = Program(np.array(post_op, np.int32), np.array([1, n_in, n_in + 1] + z(space.n_post - 3), np.int32),
                   np.array([1] + z(space.n_post - 1), np.int32), np.zeros(space.n_post, np.float32),
                   *[np.zeros(space.n_pre, t) for t in (np.int32, np.int32, np.int32, np.float32)],
                   np.array([True] + z(space.n_terms - 1, False)), np.array([0.5] + z(space.n_terms - 1), np.float32),
                   np.array([n_in + 2] + z(space.n_terms - 1), np.int32),
                   np.array([1] + z(space.n_terms - 1), np.int32), np.zeros(space.n_terms, np.int32),
                   np.zeros(space.n_terms, np.int32))
    rule = ResolvedRule(prog, space, "undefined", "", "rate")
    assert isinstance(space, Space) and space.register_names("post")[1] == "y"
    # the network's value: 0.5 * tanh(1/0) * x = 0.5 * x
    dw, _ = space.apply(prog, {"y": jnp.array([0.3, -1.0, 2.0]), "x": jnp.array([1.0, 2.0])}, jnp.zeros((3, 2)))
    assert np.allclose(dw, [[0.5, 1.0]] * 3)
    for target in TARGETS:
        if target == "json":
            back = rule_from_dict(json.loads(export(rule, "json")))
            assert all(np.array_equal(a, b) for a, b in zip(back.program, rule.program))
            continue
        with pytest.raises(RuleError, match="undefined as an expression") as exc:
            export(rule, target)
        assert "\n" not in str(exc.value)
    path = tmp_path / "undefined.json"
    path.write_text(export(rule, "json"))
    r = subprocess.run([sys.executable, "-m", "plasticity_search.cli", "export", str(path), "--to", "numpy"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
