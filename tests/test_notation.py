"""Notation (issue 16, items 10 and 11): LaTeX in the text names' symbols, ``\\exp`` for exp, one spelling of every
constant in text, sympy and LaTeX, and the legend of variables in ``inspect``, ``report.html`` and ``rules``."""
import json
import os
import re

import numpy as np
import pytest

from plasticity_search.export import export
from plasticity_search.rules.formula import (
    DIGITS,
    compile_formula,
    number_text,
    parse_formula,
    to_latex,
    to_text,
)
from plasticity_search.rules.known import RATE_SPACE, SPACES
from plasticity_search.rules.ops import OP_BY_NAME, SYN_BY_NAME
from plasticity_search.rules.resolve import resolve_rule
from plasticity_search.rules.variables import (
    VARIABLES,
    legend,
    legend_lines,
    variables_in,
)

# the LaTeX symbol of every variable: its text name written out (no x_1 for tx, no c for elig)
SYMBOLS = {"y": "y", "a": "a", "e": "e", "ybar": r"\bar{y}", "theta": r"\theta", "x": "x", "xbar": r"\bar{x}",
           "e_pre": r"e_{\mathrm{pre}}", "sy": "s_{y}", "ty": "t_{y}", "ty2": "t_{y2}", "v": "v", "psi": r"\psi",
           "sx": "s_{x}", "tx": "t_{x}", "tx2": "t_{x2}", "w": "w", "elig": r"\mathrm{elig}", "r": "r",
           "rbar": r"\bar{r}"}


def test_every_variable_has_its_symbol_and_a_description():
    assert {k: v.latex for k, v in VARIABLES.items()} == SYMBOLS
    assert all(len(v.description) > 10 for v in VARIABLES.values())
    assert OP_BY_NAME["exp"].latex.format(a="x") == r"\exp(x)"
    assert SYN_BY_NAME["elig"].latex == r"\mathrm{elig}"


def test_latex_of_traces_eligibility_exp_and_a_constant():
    assert export("r_stdp", "latex").strip() == (r"\Delta w = \mathrm{elig} \left(r - \bar{r}\right), \quad "
                                                 r"\Delta \mathrm{elig} = - 1.5 s_{x} t_{y} + s_{y} t_{x}")
    assert export("0.2178*e*exp(x)", "latex").strip() == r"\Delta w = 0.2178 e \exp{\left(x \right)}"
    tex = export("stdp_triplet", "latex")
    assert "t_{x2}" in tex and "t_{y2}" in tex and r"5 \cdot 10^{-10}" in tex
    for rule in ("r_stdp", "stdp_triplet", "urbanczik_senn", "eprop", "0.3*e*exp(-x)*x", "sigmoid(y)*x"):
        tex = export(rule, "latex")
        assert not re.search(r"[xy]_\{[12]\}|e\^\{|\bc\b", tex), tex


def _numbers(text: str) -> list[float]:
    """The float constants of a formula text or LaTeX (``m \\cdot 10^{k}`` read as m*10**k), sorted."""
    text = re.sub(r"(\d+(?:\.\d*)?) \\cdot 10\^\{(-?\d+)\}", r"\1e\2", text)
    return sorted(float(m) for m in re.findall(r"(?<![\w.])(?:\d+\.\d*(?:e[-+]?\d+)?|\d+e[-+]?\d+)", text))


@pytest.mark.parametrize("formula", [
    "0.2178*e*x",                                    # 0.2178 is 0.21780000627 in float32
    "0.363*e*(0.6*x + e_pre)",                       # 0.363*0.6: the product was printed 0.21780002 by sympy
    "0.48134571*e*x - 1.5e-5*w*y**2",                # more digits than shown; a small one (exponent form)
    "e*(4.8*e_pre - 2.4*x + 0.48)",
])
def test_constants_print_the_same_in_text_sympy_and_latex(formula):
    rule = resolve_rule(formula)
    text = to_text(rule.program, rule.space)
    sympy_src = export(rule, "sympy")
    dw_line = next(line for line in sympy_src.splitlines() if line.startswith("dw = "))
    tex = export(rule, "latex")
    assert _numbers(text) == _numbers(dw_line[len("dw = "):]) == _numbers(tex), (text, dw_line, tex)
    for c in _numbers(text):
        assert number_text(c) == repr(c)                                  # already at DIGITS, no float32 tails
        assert len(re.sub(r"e.*|[-.]|^0+", "", repr(c)).lstrip("0")) <= DIGITS
    # what the text shows reads back as the rule the sympy export rebuilds
    ns = {}
    exec(compile(sympy_src, "exported", "exec"), ns)   # our own generated source, not user text
    dw, _ = parse_formula(text, rule.space)
    assert float(abs((dw - ns["dw"]).expand().subs({s: 1.3 for s in dw.free_symbols}))) < 1e-12


def test_number_text_is_the_shortest_float32_spelling():
    for v in (0.2178, 0.1, 1e-5, 5e-10, 123.456, -0.0105, 3.0e10):
        f32 = float(np.float32(v))
        assert float(np.float32(float(number_text(f32, None)))) == f32      # reads back as the same float32
        assert number_text(f32, None) == repr(float(str(np.float32(v))))
    assert number_text(float(np.float32(0.2178))) == "0.2178"
    assert number_text(0.48134571) == "0.4813" and number_text(1.5e-5) == "1.5e-05"
    assert number_text(float("nan")) == "nan"
    # rounded at or above 10^DIGITS: exponent form, not trailing zeros that claim more digits (123456.7 was shown as
    # 123500.0); the text reads back as the rounded constant
    assert [number_text(v) for v in (123456.7, -12345.6, 1e6, 3.0e10, 9999.9, 1234.5)] == [
        "1.235e5", "-1.235e4", "1e6", "3e10", "1e4", "1234.0"]
    assert float(number_text(123456.7)) == 123500.0
    rule = resolve_rule("123456.7*e*x")
    assert to_text(rule.program, rule.space) == "1.235e5*e*x"


def test_exported_sympy_with_functions_runs():
    import sympy as sp

    src = export("abs(e)*sigmoid(y)*x + exp(-x)*w", "sympy")
    assert "from sympy import Abs, exp" in src
    ns = {}
    exec(compile(src, "exported", "exec"), ns)          # our own generated source, not user text
    assert ns["dw"].has(sp.Abs) and ns["dw"].has(sp.exp)


@pytest.mark.parametrize("formula", [
    "relu(e)*x",                     # Max: no sympy Function subclass
    "min(y, 1)*x - max(e, 0.5)*x",   # Min, Max
    "sqrt(y)*x",                     # sqrt prints from a power
    "-0.01*w",                       # one variable: the symbols line must still unpack
    "r",
    "step(y - 0.5)*x + 1e-5*x*y",    # Heaviside; an exponent-form constant is no name
    "dw = 0.1*elig; delig = 0.5",    # one variable, an eligibility part
    "dw = elig*(r - rbar); delig = 0.01*sy*tx",
])
def test_exported_sympy_snippet_runs_and_rebuilds_the_rule(formula):
    """The snippet imports every sympy name it uses and rebuilds the expressions of the rule's own sympy form."""
    import sympy as sp

    from plasticity_search.rules.formula import to_sympy

    rule = resolve_rule(formula)
    ns = {}
    exec(compile(export(rule, "sympy"), "exported", "exec"), ns)   # our own generated source, not user text
    want = to_sympy(rule.program, rule.space)
    want = want if isinstance(want, tuple) else (want, sp.Integer(0))
    got = (ns["dw"], ns.get("delig", sp.Integer(0)))
    for g, e in zip(got, want):
        free = sorted(e.free_symbols | g.free_symbols, key=lambda s: s.name)
        for point in (0.3, 1.7, -0.6):
            at = {s: point + 0.1 * i for i, s in enumerate(free)}
            a, b = complex(g.subs(at)), complex(e.subs(at))     # constants: 4 digits against float32's
            assert abs(a - b) <= 1e-6 * max(1.0, abs(b)), (formula, g, e)


def test_latex_and_text_agree_for_every_known_rule():
    from plasticity_search.rules import RULES
    for name, r in RULES.items():
        prog, space = r.compile()
        text, tex = to_text(prog, space), to_latex(prog, space)
        assert _numbers(text) == _numbers(tex), (name, text, tex)
        for v in variables_in(text):
            assert VARIABLES[v].latex in tex, (name, v, tex)


# --- legend -----------------------------------------------------------------------------------------------------
def test_variables_in_and_legend():
    assert variables_in("dw = elig*(r - rbar); delig = sy*tx - ty*sx") == ["sy", "ty", "sx", "tx", "elig", "r",
                                                                           "rbar"]
    assert variables_in("e*(4.8*e_pre - 2.4*x + 0.48)") == ["e", "x", "e_pre"]
    assert variables_in("exp(x)*Abs(y)") == ["y", "x"] and variables_in("") == []
    rows = legend(["x", "nope", "e"])
    assert [r["name"] for r in rows] == ["e", "x"] and rows[0]["latex"] == "e" and "feedback" in rows[0]["description"]
    lines = legend_lines(["xbar", "w"])
    assert len(lines) == 2 and lines[0].split()[:2] == ["xbar", "pre"] and "running mean" in lines[0]


def _fake_run(tmp_path):
    from plasticity_search.rules import complexity
    from plasticity_search.runs import rundir

    d = str(tmp_path / "run")
    rec = rundir.new_run_record("unit", seed=0, generations=1)
    rec["status"] = "finished"
    rundir.create_run_dir(d, {rundir.CONFIG_FILE: "name: unit\n", rundir.RUN_FILE: json.dumps(rec)})
    es = []
    for i, f in enumerate(["e*(4.8*e_pre - 2.4*x + 0.48)", "ybar*x"]):
        p, s = compile_formula(f, RATE_SPACE)
        es.append({"rank": i, "formula": to_text(p, s), "latex": to_latex(p, s), "complexity": complexity(p, s),
                   "fitness": 0.5, "metrics": {"search": {"fitness": 0.5}},
                   "program": {k: np.asarray(v).tolist() for k, v in p._asdict().items()}, "space": s.to_dict()})
    hof = {"schema": "plasticity-search/hall-of-fame/v1", "entries": es, "best": 0,
           "baselines": [{"name": "fa", "formula": "-e*x", "fitness": 0.2, "feedback": "fa"}]}
    rundir.atomic_write_json(os.path.join(d, rundir.HOF_JSON), hof)
    return d


def test_inspect_text_and_json_carry_the_legend_of_the_shown_formulas(tmp_path):
    from plasticity_search.runs.inspect import format_table, inspect_data

    d = _fake_run(tmp_path)
    doc = inspect_data(d)
    assert [v["name"] for v in doc["legend"]] == ["e", "ybar", "x", "e_pre"]
    assert doc["legend"][0]["description"] == VARIABLES["e"].description
    json.dumps(doc, allow_nan=False)
    table = format_table(doc)
    tail = table[table.index("\nlegend:"):].splitlines()[1:]
    assert [line.split()[0] for line in tail[1:5]] == ["e", "ybar", "x", "e_pre"]
    assert "theta" not in table                   # only the variables the shown formulas read


def test_report_has_the_legend(tmp_path):
    from plasticity_search.runs.report import write_report

    d = _fake_run(tmp_path)
    from plasticity_search.runs.results import load_hall_of_fame
    path = write_report(d, load_hall_of_fame(d)[0], {})
    with open(path) as f:
        page = f.read()
    section = page[page.index("<h2>Variables</h2>"):]
    for v in ("e", "ybar", "x", "e_pre"):
        assert f"<td class='f'>{v}</td>" in section and VARIABLES[v].description.replace("'", "&#x27;") in section
    assert "<td class='f'>theta</td>" not in section


def test_rules_listing_has_the_legend(capsys):
    from plasticity_search import cli

    assert cli.main(["rules"]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("\nlegend:"):]
    for v in ("e", "e_pre", "xbar", "tx", "ty", "elig", "r", "rbar", "theta"):
        assert re.search(rf"^  {v}\s+(post|pre|syn|global)\s+{re.escape(VARIABLES[v].description)}$", tail, re.MULTILINE), v
    assert cli.main(["rules", "--json"]) == 0
    rules = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rules["r_stdp"]["legend"] == {v: VARIABLES[v].description for v in rules["r_stdp"]["variables"]}
    assert set(rules["covariance"]["legend"]) == {"x", "xbar", "y", "ybar"}
    assert SPACES["spiking"].elig
