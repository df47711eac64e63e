"""Smoke runs of the CLI in a subprocess: output formats, errors are one line with exit code 2."""
import json
import os
import subprocess
import sys

import pytest

from plasticity_search.rules import RULES, compile_formula, parse_formula
from plasticity_search.rules.known import SPACES

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "plasticity_search", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_rules_json_lists_all_rules_and_formulas_parse_back():
    r = run("rules", "--json")
    assert r.returncode == 0, r.stderr
    rules = json.loads(r.stdout)
    names = {x["name"] for x in rules}
    for need in ("fa", "hebb", "anti_hebb", "oja", "covariance", "bcm", "shervani_tabar", "volterra"):
        assert need in names
    for x in rules:
        space = SPACES[x["model"]]
        prog, sp_ = compile_formula(x["formula"], space)   # parses back
        a, _ = parse_formula(x["formula"], space)
        b, _ = parse_formula(RULES[x["name"]].formula, space, RULES[x["name"]].params)
        assert (a - b).expand().is_zero or abs(float(((a - b).expand()).subs(
            {s: 0.37 for s in (a - b).free_symbols}))) < 1e-9


def test_help_everywhere():
    for cmd in ([], ["rules"], ["tasks"], ["export"]):
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "usage" in r.stdout.lower()
    for cmd in (["rules"], ["tasks"]):          # a description, not only the options
        r = run(*cmd, "--help")
        assert ("List the known rules" if cmd == ["rules"] else "List the tasks") in r.stdout


def test_rules_text_shows_variables_and_family_parameters():
    r = run("rules")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    st = next(i for i, ln in enumerate(lines) if ln.startswith("shervani_tabar "))
    # the family's terms and defaults, not only its default update (which equals fa)
    assert "th1*e*e_pre" in lines[st] and "th0=1" in lines[st] and "th1=0" in lines[st]
    assert "variables: e, e_pre, w, x, y" in lines[st + 1]
    fa = next(i for i, ln in enumerate(lines) if ln.startswith("fa "))
    assert "variables: e, x" in lines[fa + 1]
    assert sum("variables:" in ln for ln in lines) == len(RULES)


def test_export_injection_rejected(tmp_path):
    marker = tmp_path / "pwned"
    r = run("export", f"__import__('os').system('touch {marker}')", "--to", "latex")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("args,needle", [
    (["export", "nope", "--to", "latex"], "unknown rule 'nope'"),
    (["export", "e*x + foo", "--to", "latex"], "unknown name 'foo'"),
    (["export", "e*(x", "--to", "latex"], "expected ')'"),
    (["export", "e*x", "--to", "pdf"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    (["run", os.path.join(ROOT, "search_spaces", "delta.yaml"), "--out", ""], "--out: empty path"),
])
def test_bad_input_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_export_json_round_trip(tmp_path):
    out = tmp_path / "oja.json"
    r = run("export", "oja", "--to", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["schema"] == "plasticity-search/rule/v1" and d["complexity"] == 4
    r = run("export", str(out), "--to", "latex")
    assert r.returncode == 0 and r"\Delta w = y" in r.stdout


def test_export_sympy_source_runs(tmp_path):
    r = run("export", "x*y*(y - theta)", "--to", "sympy")
    assert r.returncode == 0
    ns = {}
    exec(compile(r.stdout, "exported", "exec"), ns)  # our own generated source, not user text
    import sympy as sp
    assert sp.expand(ns["dw"] - (ns["x"] * ns["y"] ** 2 - ns["x"] * ns["y"] * ns["theta"])) == 0


def test_tasks_json():
    r = run("tasks", "--json")
    assert r.returncode == 0
    tasks = {t["name"]: t for t in json.loads(r.stdout)}
    for need in ("digits", "digits_fewshot", "mnist1d", "yinyang", "teacher_student", "pca"):
        assert tasks[need]["kind"] == "rate"


def test_export_output_dir_missing_is_error(tmp_path):
    r = run("export", "oja", "--to", "latex", "-o", str(tmp_path / "nodir" / "x.tex"))
    assert r.returncode == 2 and not (tmp_path / "nodir").exists()
