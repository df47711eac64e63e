"""Hostile and malformed inputs (issues 16 and 17): formulas, rule files, configs, run directories, numerics.

The contract for every refused input: exit code 2, exactly one line on stderr (``plasticity-search: error: ...``),
no traceback, within seconds, nothing written. Every case listed in issue 17 is a test below; then a seeded fuzz
per input family (formulas, rule files, configs, run directories) checks the same contract on random inputs.

Everything calls ``cli.main`` in-process (stdout/stderr captured, a SIGALRM guard against hangs), which is much
faster than a subprocess per input. Searches never start: a config the fuzz accepts stops at ``execute`` (a stand-in
that raises :class:`Reached`), and a resumed run directory stops where the engine would start computing.
The number of inputs per family is printed (``pytest -s``) and recorded as a property of each fuzz test.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from plasticity_search import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "search_spaces", "quickstart.yaml")
CALL_TIMEOUT_S = 30          # SIGALRM: a call that takes longer is a hang
FAST_S = 10                  # a refusal must come within seconds (generous for a loaded CI machine)
N_FORMULAS, N_RULE_FILES, N_CONFIGS, N_RUN_DIRS = 500, 300, 200, 200


class Hang(Exception):
    pass


class Reached(Exception):
    """A stand-in for the search starting: the input was accepted."""


@contextlib.contextmanager
def _alarm(seconds: int):
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def call(argv, timeout: int = CALL_TIMEOUT_S):
    """``cli.main(argv)`` in-process: (exit code or 'reached', stdout, stderr, seconds)."""
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with _alarm(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("always")        # a warning shows every time (not once per process)
        try:
            rc = cli.main([str(a) for a in argv])
        except Reached:
            rc = "reached"
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0


def assert_refused(res, needle: str | None = None):
    rc, _, err, dt = res
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("plasticity-search: error: "), err[-2000:]
    assert "Traceback" not in err and "allow_pickle" not in err and "pickle.load" not in err, err
    assert not lines[0].startswith("plasticity-search: error: plasticity-search"), err   # one prefix (issue 16)
    assert dt < FAST_S, f"refused only after {dt:.1f} s"
    if needle is not None:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(root: str) -> dict:
    """Every path under root with its size and mtime (what 'nothing written' compares)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


# ---------------------------------------------------------------------------------------------------------------
# shared inputs: a tiny valid config, a rule file, a finished / an interrupted run directory
# ---------------------------------------------------------------------------------------------------------------
TINY = {
    "search": {"population": 8, "tournament": 2, "children": 4},
    "network": {"hidden": [8]},
    "tasks": {"search": [{"task": "digits", "seeds": 1, "steps": 60}],
              "select": [{"task": "digits", "seeds": 1, "steps": 60}],
              "final": [{"task": "digits", "seeds": 2, "steps": 60}]},
    "budget": {"generations": 2},
}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="module")
def tiny_cfg() -> dict:
    with open(QUICKSTART) as f:
        cfg = _merge(yaml.safe_load(f), TINY)
    cfg["name"] = "tiny"
    return cfg


def _write_cfg(path, cfg) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return str(path)


def _hof(names=("fa", "oja")) -> dict:
    from plasticity_search.rules import RULES, complexity, to_latex, to_text

    es = []
    for i, name in enumerate(names):
        p, s = RULES[name].compile()
        f = 0.9 - 0.1 * i
        es.append({"rank": i, "formula": to_text(p, s), "latex": to_latex(p, s), "complexity": complexity(p, s),
                   "fitness": f, "metrics": {"search": {"fitness": f}, "select": {"fitness": f},
                                             "final": {"fitness": f}},
                   "program": {k: np.asarray(v).tolist() for k, v in p._asdict().items()}, "space": s.to_dict()})
    return {"schema": "plasticity-search/hall-of-fame/v1", "entries": es, "best": 0, "choose": "eps", "eps": 0.01,
            "defaults": {}, "info": {"name": "fuzz"}}


def _damaged_state_meta() -> dict:
    """A search-state tree that names arrays the checkpoint does not hold ('checkpoints with missing arrays')."""
    from plasticity_search.search.engine import TREE_SCHEMA

    return {"schema": TREE_SCHEMA, "tree": {"t": "dict", "keys": ["generation", "key"],
                                            "items": [{"t": "int", "v": 2}, {"t": "key", "impl": "threefry2x32"}]}}


def _make_run(path: str, cfg_file: str, finished: bool) -> str:
    from plasticity_search.runs import checkpoint as ckpt
    from plasticity_search.runs import configs, rundir
    from plasticity_search.runs.configs import config_sha

    cfg = configs.load(cfg_file)
    plain = configs.to_plain(cfg.to_dict())
    gen_key = configs.find_key(plain, "generations")
    text = configs.dump_yaml(plain, "fuzz base run")
    sha = config_sha(text, gen_key)
    rec = rundir.new_run_record("fuzz", seed=0, generations=2, config_sha256=sha,
                                wandb={"mode": "disabled", "id": "abcd1234"})
    rec.update(status="finished" if finished else "running", generations_done=2, pid=0)
    rundir.create_run_dir(path, {rundir.CONFIG_FILE: text, rundir.RUN_FILE: json.dumps(rec)})
    for g in (1, 2):
        rundir.append_metrics(path, {"generation": g, "best_fitness": 0.1 * g, "median_fitness": 0.05 * g})
        ckpt.save(path, g, {"s.x": np.zeros(3, np.float32)}, _damaged_state_meta(), n_metrics=g, cfg_sha=sha)
    if finished:
        rundir.atomic_write_json(os.path.join(path, rundir.HOF_JSON), _hof())
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_cfg):
    root = tmp_path_factory.mktemp("base-runs")
    cfg_file = _write_cfg(root / "tiny.yaml", tiny_cfg)
    return {"finished": _make_run(str(root / "finished"), cfg_file, True),
            "interrupted": _make_run(str(root / "interrupted"), cfg_file, False)}


@pytest.fixture
def no_search(monkeypatch):
    """The search never starts: `run` stops at execute() (configs), or where the engine would compute (resume)."""
    from plasticity_search.runs import runner
    from plasticity_search.search import engine as eng
    from plasticity_search.search.hall_of_fame import HallOfFame

    class Search(eng.Search):
        def init(self):
            raise Reached()

        def step(self, state):
            raise Reached()

        def finalize(self, state):
            raise Reached()

    stand_in = SimpleNamespace(Search=Search, state_to_tree=eng.state_to_tree, state_from_tree=eng.state_from_tree,
                               HallOfFame=HallOfFame)
    monkeypatch.setattr(runner, "default_engine", lambda: stand_in)
    return stand_in


@pytest.fixture
def no_execute(monkeypatch):
    def execute(plan, **kw):
        raise Reached()

    from plasticity_search.runs import run_cmd as runs_cli
    from plasticity_search.runs import runner

    monkeypatch.setattr(runner, "execute", execute)
    monkeypatch.setattr(runs_cli, "execute", execute, raising=False)


def _copy(src: str, dst) -> str:
    shutil.copytree(src, str(dst), symlinks=True)
    return str(dst)


# ---------------------------------------------------------------------------------------------------------------
# formulas (issue 17: negative powers, huge powers and towers, float32 overflow; issue 16: leading minus)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("formula,latex", [
    ("x/y**2", r"\frac{x}{y^{2}}"),
    ("x**-2", r"\frac{1}{x^{2}}"),
    ("-e*x", "- e x"),
    ("-x", "- x"),              # a negated name, no operator: a formula, not an option
    ("-e_pre", r"- e_{\mathrm{pre}}"),
    ("x*y**16", "x y^{16}"),
])
def test_negative_and_bounded_powers_export(formula, latex):
    rc, out, err, _ = call(["export", formula, "--to", "latex"])
    assert rc == 0 and err == "", err
    assert latex in out


@pytest.mark.parametrize("formula,needle", [
    ("x**-1000000000", "exponent"),
    ("max(x, y)**50", "exponent"),
    ("x**1000000000", "exponent"),
    ("9**9**9", "float32"),
    ("2**2**2**2**2**2", "float32"),
    ("(x+y+e+a+ybar+theta+xbar+e_pre)**64", "exponent"),
    ("(x+y+e+a+ybar+theta+xbar+e_pre)**16", "terms"),
    ("((x**4)**4)**4", "exponent"),
    ("(1/2)**1000000000*x", "float32"),
    ("y*1e400", "float32"),
    ("x*3.5e38", "float32"),
    ("3e38*x + 3e38*x", "float32"),
    ("1e-50*x", "float32"),
    ("1e-40*x", "float32"),     # subnormal: the compiled rule would flush it to zero
    (";", "empty formula"),
    ("dw = x; dw = y", "given twice"),
])
def test_hostile_formulas_refused_fast(formula, needle):
    assert_refused(call(["export", formula, "--to", "latex"]), needle)


def test_evaluate_huge_power_refused_before_compiling():
    assert_refused(call(["evaluate", "x**200", "--task", "digits"]), "exponent")


def test_leading_minus_is_a_formula_everywhere_a_rule_is_taken(tmp_path):
    rc, out, err, _ = call(["export", "-e*x", "--to", "latex"])
    assert rc == 0 and r"\Delta w = - e x" in out, err
    rc, out, err, _ = call(["export", "--to", "sympy", "-e*x", "-o", tmp_path / "r.py"])
    assert rc == 0 and "dw" in (tmp_path / "r.py").read_text(), err
    rc, out, err, _ = call(["evaluate", "-e*x", "--task", "teacher_student", "--seeds", "1", "--steps", "50",
                            "--json"])
    assert rc == 0, err
    assert json.loads(out)["formula"] == "-e*x"


@pytest.mark.parametrize("argv,needle", [
    (["export", "x"], "export: the following arguments are required: --to"),
    (["evaluate", "fa"], "evaluate: the following arguments are required: --task"),
    (["frobnicate"], "invalid choice"),
])
def test_argparse_errors_have_one_prefix(argv, needle):
    line = assert_refused(call(argv), needle)
    assert "plasticity-search evaluate" not in line and "plasticity-search export" not in line


# ---------------------------------------------------------------------------------------------------------------
# rule files
# ---------------------------------------------------------------------------------------------------------------
def _rule_doc(name="oja") -> dict:
    from plasticity_search.export.json_format import rule_to_dict
    from plasticity_search.rules.resolve import resolve_rule

    return json.loads(json.dumps(rule_to_dict(resolve_rule(name))))


def _set(doc, path, value):
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


def _term_on_strings(d):
    d["program"]["term_on"] = ["false"] * len(d["program"]["term_on"])
    return d


RULE_CASES = {
    "term_p out of range": (lambda d: _set(d, ["program", "term_p", 0], 99), "term_p"),
    "term_q out of range": (lambda d: _set(d, ["program", "term_q", 0], 99), "term_q"),
    "term_tgt out of range": (lambda d: _set(d, ["program", "term_tgt", 0], 5), "term_tgt"),
    "term_p negative": (lambda d: _set(d, ["program", "term_p", 0], -1), "term_p"),
    "operand out of range": (lambda d: _set(d, ["program", "post_a", 0], 99), "post_a"),
    "term_p not an integer": (lambda d: _set(d, ["program", "term_p", 0], 1.7), "term_p"),
    "defaults as a list": (lambda d: _set(d, ["defaults"], [1, 2]), "defaults"),
    "defaults lr negative": (lambda d: _set(d, ["defaults"], {"lr": -1}), "defaults.lr"),
    "term_coef 1e39": (lambda d: _set(d, ["program", "term_coef", 0], 1e39), "term_coef"),
    "term_on as strings": (_term_on_strings, "term_on"),
    "space n_post huge": (lambda d: _set(d, ["space", "n_post"], 10**9), "n_post"),
    "space as a list": (lambda d: _set(d, ["space"], [1]), "space"),
    "program missing array": (lambda d: d["program"].pop("term_s") and d, "term_s"),
}


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_bad_rule_files_refused_not_clamped(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fn, needle = RULE_CASES[case]
    p = tmp_path / "rule.json"
    p.write_text(json.dumps(fn(_rule_doc())))
    before = snapshot(str(tmp_path))
    assert_refused(call(["export", p, "--to", "latex"]), needle)
    assert_refused(call(["evaluate", p, "--task", "pca", "--seeds", "1", "--steps", "10"]), needle)
    assert snapshot(str(tmp_path)) == before


def test_rule_file_nan_coefficient_and_deep_nesting(tmp_path):
    d = _rule_doc()
    d["program"]["term_coef"][0] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(d))          # json writes NaN
    assert_refused(call(["export", tmp_path / "nan.json", "--to", "latex"]), "NaN")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    for argv in (["export", tmp_path / "deep.json", "--to", "latex"],
                 ["evaluate", tmp_path / "deep.json", "--task", "pca"]):
        assert_refused(call(argv), "nested")


def test_rule_file_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "rule.json"
    os.mkfifo(fifo)
    assert_refused(call(["export", fifo, "--to", "latex"], timeout=10), "not a regular file")


def test_good_rule_file_still_loads(tmp_path):
    p = tmp_path / "oja.json"
    p.write_text(json.dumps(_rule_doc()))
    rc, out, err, _ = call(["export", p, "--to", "latex"])
    assert rc == 0 and err == "" and r"\Delta w" in out


# ---------------------------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------------------------
CONFIG_CASES = [
    ("space.n_post", 10**9, "space.n_post"),
    ("space.n_terms", 10**7, "space.n_terms"),
    ("tasks.search.0.seeds", 10**9, "tasks.search[0].seeds"),
    ("tasks.search.0.steps", 10**12, "tasks.search[0].steps"),
    ("network.hidden", [10**9], "network.hidden"),
    ("network.hidden", [100_000, 100_000], "network.hidden"),              # fits the maxima, not the memory
    ("search.population", 10**12, "search.population"),
    ("network.tau_mean", 0, "network.tau_mean"),
    ("tasks.search.0.args", {"n_eval": "many"}, "tasks.search[0].args.n_eval"),
    ("tasks.search.0.args", {"n_eval": -5}, "tasks.search[0].args.n_eval"),
    ("network.lr", float("nan"), "network.lr"),
    ("network.lr", float("inf"), "network.lr"),
    ("network.lr", -0.05, "network.lr"),
    ("network.tau_theta", float("nan"), "network.tau_theta"),
    ("fitness.complexity_penalty", float("nan"), "fitness.complexity_penalty"),
    ("fitness.complexity_penalty", float("inf"), "fitness.complexity_penalty"),
    ("coefficients.std_init", float("nan"), "coefficients.std_init"),
    ("coefficients.lr", float("inf"), "coefficients.lr"),
    ("budget.time_limit_s", float("nan"), "budget.time_limit_s"),
    ("search.mutation.insert", float("nan"), "search.mutation.insert"),
    ("search.mutation.insert", float("inf"), "search.mutation.insert"),
    ("hybrid.steps", 10**9, "hybrid.steps"),
    ("hall_of_fame.eps", float("nan"), "hall_of_fame.eps"),
]


def _set_dotted(cfg: dict, dotted: str, value) -> dict:
    node = cfg
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return cfg


@pytest.mark.parametrize("key,value,needle", CONFIG_CASES, ids=[f"{k}={v!r}" for k, v, _ in CONFIG_CASES])
def test_bad_config_numbers_refused_before_anything_is_written(key, value, needle, tiny_cfg, tmp_path, monkeypatch,
                                                               no_execute):
    monkeypatch.chdir(tmp_path)
    cfg = _write_cfg(tmp_path / "bad.yaml", _set_dotted(copy.deepcopy(tiny_cfg), key, value))
    before = snapshot(str(tmp_path))
    assert_refused(call(["run", cfg, "--out", tmp_path / "out"]), needle)
    assert_refused(call(["run", cfg]), needle)                          # default runs/<name>-<stamp> neither
    assert snapshot(str(tmp_path)) == before                            # no --out directory, no runs/


def test_good_tiny_config_is_accepted(tiny_cfg, tmp_path, monkeypatch, no_execute):
    monkeypatch.chdir(tmp_path)
    rc, _, err, _ = call(["run", _write_cfg(tmp_path / "ok.yaml", tiny_cfg), "--out", tmp_path / "out"])
    assert rc == "reached", err


LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
          + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh",
                                                                                                  "bcdefghi")))


@pytest.mark.parametrize("case", ["billion laughs", "recursive alias", "deep nesting", "fifo", "binary", "directory"])
def test_hostile_config_files(case, tmp_path, monkeypatch, no_execute):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "c.yaml"
    if case == "billion laughs":
        p.write_text(LAUGHS)
    elif case == "recursive alias":
        p.write_text("a: &a [*a]\n")
    elif case == "deep nesting":
        p.write_text("[" * 100_000 + "]" * 100_000)
    elif case == "fifo":
        os.mkfifo(p)
    elif case == "binary":
        p.write_bytes(b"name: x\nseed: \xff\xfe\x00\x01\n")
    else:
        p.mkdir()
    before = snapshot(str(tmp_path))
    line = assert_refused(call(["run", p, "--out", tmp_path / "out"], timeout=15))
    assert "c.yaml" in line                                           # names the file
    if case == "binary":
        assert "codec" not in line and "UTF-8" in line
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("line,needle", [
    ("seed: 010", "'010' is octal in YAML 1.1"),                     # was seed 8 (YAML 1.2: 10)
    ("seed: 1:00", "'1:00' is a base-60 number"),                     # was seed 60 (YAML 1.2: a string)
    ("budget: {generations: 0b11}", "'0b11' is a binary number"),     # was 3
    ("generalization: {at_end: off}", "'off' is a boolean in YAML 1.1"),
])
def test_yaml_11_only_scalars_refused(line, needle, tiny_cfg, tmp_path, monkeypatch, no_execute):
    """An audit found ``seed: 010`` run as seed 8 and ``lr: 1:30`` as 90 (PyYAML reads YAML 1.1; editors and other
    YAML tools read 1.2): a plain scalar the two versions read differently is refused, with what to write, in the
    file and in ``--set``. Values both versions read alike stay accepted."""
    monkeypatch.chdir(tmp_path)
    key = line.split(":")[0]
    cfg = {k: v for k, v in tiny_cfg.items() if k != key}
    p = tmp_path / "c.yaml"
    _write_cfg(p, cfg)
    p.write_text(p.read_text() + line + "\n")
    before = snapshot(str(tmp_path))
    text = assert_refused(call(["run", p, "--out", tmp_path / "out"]))
    assert needle in text and "c.yaml" in text and "line " in text, text
    assert snapshot(str(tmp_path)) == before
    if key == "seed":
        _write_cfg(p, tiny_cfg)
        text = assert_refused(call(["run", p, "--set", line.replace(": ", "="), "--out", tmp_path / "out"]))
        assert needle in text and "--set seed" in text, text
    from plasticity_search.search.config import load_yaml
    assert load_yaml("a: [0x10, 00, 07, 07.5, 010e3, 1_000, .inf, true, '010', \"on\", 1e-3, 0.5, -0]\n") == {
        "a": [16, 0, 7, 7.5, 10000.0, 1000, float("inf"), True, "010", "on", 1e-3, 0.5, 0]}


@pytest.mark.parametrize("extra,needle", [
    ("seed: 5\n", "'seed' appears twice"),                            # a second top-level key: last one won
    ("budget:\n  generations: 1\n", "'budget' appears twice"),        # a second block replaced the whole first
])
def test_duplicate_config_keys_refused(extra, needle, tiny_cfg, tmp_path, monkeypatch, no_execute):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "c.yaml"
    _write_cfg(p, tiny_cfg)
    p.write_text(p.read_text() + extra)
    before = snapshot(str(tmp_path))
    line = assert_refused(call(["run", p, "--out", tmp_path / "out"]))
    assert needle in line and "c.yaml" in line, line
    assert snapshot(str(tmp_path)) == before
    # a merge key overriding merged values is no duplicate
    from plasticity_search.search.config import load_yaml
    assert load_yaml("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n") == {"a": {"b": 1}, "c": {"b": 2}}


# ---------------------------------------------------------------------------------------------------------------
# run directories
# ---------------------------------------------------------------------------------------------------------------
DEEP = "[" * 100_000 + "]" * 100_000


def _run_json(d) -> dict:
    with open(os.path.join(d, "run.json")) as f:
        return json.load(f)


def _wrong_run_json(d):
    rec = _run_json(d)
    rec.update(wandb="x", elapsed_s="soon")
    return rec


def _every_checkpoint(d, fn):
    cdir = os.path.join(d, "checkpoints")
    for n in os.listdir(cdir):
        fn(os.path.join(cdir, n))


def _random_bytes(p):
    with open(p, "wb") as f:
        f.write(random.Random(p).randbytes(3000))


def _meta_types(p):
    from plasticity_search.runs import checkpoint as ckpt

    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop(ckpt.META_KEY).tobytes())
    meta.update(n_metrics="many", generation=str(meta["generation"]))
    with open(p, "wb") as f:
        f.write(ckpt.encode(arrays, meta))


RUN_CASES = {   # name: (base run, damage, needle)
    "hall_of_fame.json is a list": ("finished", lambda d: _put(d, "hall_of_fame.json", "[1, 2]"), "hall_of_fame"),
    "hall_of_fame.json entries wrong": ("finished", lambda d: _put(d, "hall_of_fame.json", json.dumps(
        {**_hof(), "entries": [1]})), "entries[0]"),
    "hall_of_fame.json eps null": ("finished", lambda d: _put(d, "hall_of_fame.json", json.dumps(
        {**_hof(), "eps": None})), "'eps' has the wrong type (null)"),
    "hall_of_fame.json defaults null": ("finished", lambda d: _put(d, "hall_of_fame.json", json.dumps(
        {**_hof(), "defaults": None})), "'defaults' has the wrong type (null)"),
    "hall_of_fame.json metric a string": ("finished", lambda d: _put(d, "hall_of_fame.json", json.dumps(
        _hof_with(lambda h: h["entries"][0]["metrics"]["select"].update(fitness="high")))),
        "entries[0].metrics.select['fitness'] has the wrong type (str)"),
    "hall_of_fame.json metric a boolean": ("finished", lambda d: _put(d, "hall_of_fame.json", json.dumps(
        _hof_with(lambda h: h["entries"][1]["metrics"]["final"].update(final_loss=True)))),
        "entries[1].metrics.final['final_loss'] has the wrong type (bool)"),
    "hall_of_fame.json instance a list": ("finished", lambda d: _put(d, "hall_of_fame.json", json.dumps(
        _hof_with(lambda h: h["entries"][0].update(instances=[0.5, [1]])))), "entries[0].instances[1] has"),
    "hall_of_fame.json garbage": ("finished", lambda d: _put(d, "hall_of_fame.json", "garbage{"), "hall_of_fame"),
    "hall_of_fame.json nested deep": ("finished", lambda d: _put(d, "hall_of_fame.json", DEEP), "nested"),
    "run.json wrong shape": ("interrupted", lambda d: _put(d, "run.json", json.dumps(_wrong_run_json(d))),
                             "run.json"),
    "run.json generations out of range": ("interrupted", lambda d: _put(d, "run.json", json.dumps(
        {**_run_json(d), "generations": 10 ** 29})), "'generations' must be in [0, 10000000]"),
    "run.json seed out of range": ("interrupted", lambda d: _put(d, "run.json", json.dumps(
        {**_run_json(d), "seed": 2 ** 40})), "'seed' must be in [0,"),
    "run.json nested deep": ("interrupted", lambda d: _put(d, "run.json", DEEP), "nested"),
    "checkpoints is a file": ("interrupted", lambda d: (shutil.rmtree(os.path.join(d, "checkpoints")),
                                                        _put(d, "checkpoints", "x")), "checkpoints"),
    "checkpoint arrays missing": ("interrupted", lambda d: None, "damaged search state"),
    "checkpoint meta wrong types": ("interrupted", lambda d: _every_checkpoint(d, _meta_types), "checkpoint meta"),
    "random bytes in every checkpoint": ("interrupted", lambda d: _every_checkpoint(d, _random_bytes),
                                         "not an npz archive"),
}


def _hof_with(change) -> dict:
    h = _hof()
    change(h)
    return h


def _put(d, rel, text):
    with open(os.path.join(d, rel), "w") as f:
        f.write(text)


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_damaged_run_directories(case, runs, tmp_path, monkeypatch):
    """inspect, export RUN:0 and run --resume all refuse with one line, and --resume writes nothing (run.json
    included) when it refuses."""
    monkeypatch.chdir(tmp_path)
    base, damage, needle = RUN_CASES[case]
    d = _copy(runs[base], tmp_path / "run")
    damage(d)
    before = snapshot(d)
    for argv in (["inspect", d, "--no-plots"], ["inspect", d, "--json"], ["export", f"{d}:0", "--to", "latex"],
                 ["run", d, "--resume", "--wandb", "disabled", "--no-curves"]):
        assert_refused(call(argv), needle)
        assert snapshot(d) == before, argv


def test_wrong_shape_metrics_lines_are_skipped(runs, tmp_path):
    d = _copy(runs["finished"], tmp_path / "run")
    with open(os.path.join(d, "metrics.jsonl"), "a") as f:
        f.write('[1]\n"x"\n{"generation": "a", "best_fitness": [1]}\n' + DEEP + "\n\xff\n")
    rc, out, err, _ = call(["inspect", d, "--json", "--no-plots"])
    assert rc == 0 and err == "", err
    assert json.loads(out)["generations_done"] == 2


def test_garbage_hall_of_fame_on_resume_is_one_line(runs, tmp_path):
    d = _copy(runs["finished"], tmp_path / "run")
    _put(d, "hall_of_fame.json", "\x00garbage")
    _, out, err, _ = res = call(["run", d, "--resume", "--wandb", "disabled"])
    assert_refused(res, "hall_of_fame.json")
    assert out == "" and "already finished" not in err


# ---------------------------------------------------------------------------------------------------------------
# numerics: a non-finite output with finite weights is non-finite (worst fitness), not chance accuracy
# ---------------------------------------------------------------------------------------------------------------
def test_nonfinite_output_with_finite_weights_gets_worst_fitness():
    import jax.numpy as jnp

    from plasticity_search.rate import InnerConfig, InnerLoop, task_batch
    from plasticity_search.rate.mlp import NetworkConfig
    from plasticity_search.rules import RATE_SPACE
    from plasticity_search.search.fitness import WORST, FitnessFn
    from plasticity_search.tasks import make

    task = make("digits")
    loop = InnerLoop(RATE_SPACE, task, InnerConfig(network=NetworkConfig(hidden=()), steps=10))
    data = task_batch(task, [0], "final", 10)
    data = type(data)(*[a[0] for a in data])
    st = loop.init(jnp.asarray(np.zeros(2, np.uint32)))
    W = jnp.full_like(st.net.W[0], 3e38)                      # finite, but W @ x overflows float32
    st = st._replace(net=st.net._replace(W=(W,)))
    assert bool(jnp.all(jnp.isfinite(W)))
    m = loop.final_metrics(st, data, jnp.zeros(10))
    assert float(m["finite"]) == 0.0 and np.isnan(float(m["final_accuracy"]))
    fit = FitnessFn("final_accuracy", 1.0)
    per = fit.per_instance({k: np.asarray(v)[None, None] for k, v in m.items()})
    assert fit.aggregate([per])[0] == WORST


# ---------------------------------------------------------------------------------------------------------------
# fuzz: seeded generators, the same contract on random inputs of each family
# ---------------------------------------------------------------------------------------------------------------
COUNTS: dict[str, dict] = {}


def _report(family: str, n: int, refused: int, accepted: int, record_property):
    COUNTS[family] = {"inputs": n, "refused": refused, "accepted": accepted}
    record_property(f"fuzz_{family}_inputs", n)
    print(f"\nfuzz {family}: {n} inputs ({refused} refused with one line, {accepted} accepted)")


def _check(res, accepted_ok=("reached", 0)):
    """Either accepted (exit 0 without warnings, or the search reached) or refused by the contract."""
    rc, _, err, _ = res
    if rc in accepted_ok:
        assert "Traceback" not in err
        if rc == 0:
            assert err.strip() == "" or all(not line.lower().startswith(("warning", "/")) for line in
                                            err.strip().splitlines()), err
        return True
    assert_refused(res)
    return False


_ATOMS = ["x", "y", "e", "w", "a", "xbar", "ybar", "theta", "e_pre", "tx", "sy", "foo", "__import__", "1", "0", "2",
          "2.5", "1e400", "3.5e38", "1e-50", "1e-40", "9" * 60, "0.0", ".5", "1e", "nan", "inf", "r", "elig"]
_FUNCS = ["tanh", "exp", "log", "sqrt", "abs", "max", "min", "relu", "sigmoid", "step", "sign", "eval", "os.system"]
_EXPONENTS = ["-1000000000", "-17", "-3", "-2", "-1", "0", "2", "3", "16", "17", "64", "200", "1000000000", "0.5",
              "9**9", "2**2**2**2", "-0.5", "1e9"]


def _formula(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 4 or r < 0.3:
        return rng.choice(_ATOMS)
    if r < 0.55:
        return f"{_formula(rng, depth + 1)} {rng.choice(['+', '-', '*', '/', '**', '^'])} {_formula(rng, depth + 1)}"
    if r < 0.68:
        return f"({_formula(rng, depth + 1)})**{rng.choice(_EXPONENTS)}"
    if r < 0.8:
        f = rng.choice(_FUNCS)
        args = ", ".join(_formula(rng, depth + 1) for _ in range(rng.choice([1, 1, 2, 3])))
        return f"{f}({args})"
    if r < 0.9:
        return "-" + _formula(rng, depth + 1)
    return "(" + _formula(rng, depth + 1) + ")"


def _raw_formula(rng: random.Random) -> str:
    kind = rng.randrange(7)
    if kind == 0:
        return "".join(rng.choice("xye()*+-/^;=.,0123456789 !@#$%&[]{}'\"\\\t") for _ in range(rng.randrange(1, 60)))
    if kind == 1:
        n = rng.choice([70, 500, 3000])
        return "(" * n + "x" + ")" * n
    if kind == 2:
        return "x" + "*x" * rng.choice([20, 200, 2000])
    if kind == 3:
        return "*".join(f"(x+{i})" for i in range(rng.choice([12, 40, 400])))
    if kind == 4:
        return "x*" * 3000 + "x"                                  # longer than the formula limit
    if kind == 5:
        return f"dw = {_formula(rng)}; delig = {_formula(rng)}"
    return "2" + "**2" * rng.randrange(2, 12)


def test_fuzz_formulas(record_property):
    rng = random.Random(1701)
    refused = accepted = 0
    for i in range(N_FORMULAS):
        f = _formula(rng) if i % 3 else _raw_formula(rng)
        if rng.random() < 0.2:
            f = "-" + f
        if _check(call(["export", f, "--to", "latex"])):
            accepted += 1
        else:
            refused += 1
    _report("formulas", N_FORMULAS, refused, accepted, record_property)


_VALUES = [None, True, False, 0, -1, 1, 2, 99, -(2**31) - 1, 2**31, 2**63, 10**30, 1.5, -1e308, 1e39, 1e-320, "",
           "x", "../../etc/passwd", [], {}, [1, [2, [3]]], {"a": {"b": 1}}, list(range(300)), "true", [True], [None]]


def _json_paths(doc, prefix=()):
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _json_paths(v, prefix + (k,))
    elif isinstance(doc, list) and len(doc) <= 64:
        for i, v in enumerate(doc):
            out += _json_paths(v, prefix + (i,))
    return out


def _mutate_json(doc, rng: random.Random):
    doc = copy.deepcopy(doc)
    paths = _json_paths(doc)
    path = rng.choice(paths)
    node = doc
    for k in path[:-1]:
        node = node[k]
    if rng.random() < 0.15 and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(rng.choice(_VALUES))
    return doc


def _raw_damage(text: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return text[: rng.randrange(len(text) + 1)]
    if kind == 1:
        b = bytearray(text)
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:
        return rng.randbytes(rng.randrange(1, 5000))
    if kind == 3:
        n = rng.choice([65, 1000, 100_000])
        return (rng.choice("[{") * n).encode()
    if kind == 4:
        return text.replace(b"1", b"NaN", 1).replace(b"0", b"-Infinity", 1)
    return b""


def _damage_file(p: str, rng: random.Random, mutate_doc=None) -> None:
    """Replace the file at p by a damaged version (or by a FIFO, a directory, a symlink to /dev/zero, nothing)."""
    r = rng.random()
    if os.path.isdir(p) and r >= 0.16:        # a directory's content cannot be damaged: make it a file
        shutil.rmtree(p)
        with open(p, "wb") as f:
            f.write(rng.randbytes(100))
        return
    if r < 0.06:
        os.remove(p) if not os.path.isdir(p) else shutil.rmtree(p)
        os.mkfifo(p)
    elif r < 0.1:
        os.remove(p) if not os.path.isdir(p) else shutil.rmtree(p)
        os.mkdir(p)
    elif r < 0.13:
        os.remove(p) if not os.path.isdir(p) else shutil.rmtree(p)
        os.symlink("/dev/zero", p)
    elif r < 0.16:
        os.remove(p) if not os.path.isdir(p) else shutil.rmtree(p)
    elif mutate_doc is not None and r < 0.65:
        with open(p, "w") as f:
            f.write(mutate_doc())
    else:
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(_raw_damage(data, rng))


def test_fuzz_rule_files(tmp_path, record_property):
    rng = random.Random(2024)
    bases = [_rule_doc(n) for n in ("fa", "oja", "bcm", "covariance", "stdp_add")]
    refused = accepted = 0
    for i in range(N_RULE_FILES):
        p = str(tmp_path / f"r{i}.json")
        base = rng.choice(bases)
        with open(p, "w") as f:
            json.dump(base, f)
        if rng.random() < 0.2:      # a valid change (finite float32 coefficient, another name): still loads
            doc = copy.deepcopy(base)
            k = rng.randrange(len(doc["program"]["term_coef"]))
            doc["program"]["term_coef"][k] = rng.uniform(-1e3, 1e3)
            doc["name"] = rng.choice(["", "fuzzed", "x" * 500])
            with open(p, "w") as f:
                json.dump(doc, f)
            rc, _, err, _ = call(["export", p, "--to", "latex"])
            assert rc == 0 and err == "", err
            accepted += 1
            continue
        doc = base
        for _ in range(rng.choice([1, 1, 2, 3])):
            doc = _mutate_json(doc, rng)
        _damage_file(p, rng, lambda doc=doc: json.dumps(doc))
        if _check(call(["export", p, "--to", "latex"], timeout=15)):
            accepted += 1
        else:
            refused += 1
    _report("rule_files", N_RULE_FILES, refused, accepted, record_property)


_CFG_VALUES = [float("nan"), float("inf"), float("-inf"), -1, 0, 10**12, 10**9, -5, 1e-300, 2**63, "many", [], {},
               None, True, [10**9], [0], {"n_eval": -5}, {"n_eval": "many"}, {"n_in": 10**8}, 3.5, 1]


def test_fuzz_configs(tiny_cfg, tmp_path, monkeypatch, no_execute, record_property):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(7)
    refused = accepted = 0
    valid = [(("network", "lr"), lambda: rng.uniform(1e-4, 1.0)), (("search", "population"), lambda: rng.randint(8, 64)),
             (("tasks", "search", 0, "steps"), lambda: rng.randint(1, 200)),
             (("hall_of_fame", "eps"), lambda: rng.uniform(0, 0.1)),
             (("fitness", "complexity_penalty"), lambda: rng.uniform(0, 0.01)),
             (("network", "hidden"), lambda: [rng.randint(1, 64)])]
    for i in range(N_CONFIGS):
        cfg = copy.deepcopy(tiny_cfg)
        if rng.random() < 0.2:      # a valid change: accepted (the search would start)
            path, value = rng.choice(valid)
            _set_dotted(cfg, ".".join(map(str, path)), value())
            res = call(["run", _write_cfg(tmp_path / f"c{i}.yaml", cfg), "--out", tmp_path / f"out{i}"])
            assert res[0] == "reached", res[2]
            accepted += 1
            continue
        for _ in range(rng.choice([1, 1, 2])):
            path = rng.choice([p for p in _json_paths(cfg) if p and p[0] != "name"])
            node = cfg
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = copy.deepcopy(rng.choice(_CFG_VALUES))
        p = str(tmp_path / f"c{i}.yaml")
        r = rng.random()
        if r < 0.15:
            with open(p, "w") as f:
                f.write(rng.choice([LAUGHS, "a: &a [*a]\n", "[" * 5000 + "]" * 5000, "\t- x: [1,\n", "- 1\n"]))
        else:
            with open(p, "w") as f:
                f.write(yaml.safe_dump(cfg, sort_keys=False))
            if r < 0.3:
                _damage_file(p, rng)
        before = snapshot(str(tmp_path))
        res = call(["run", p, "--out", tmp_path / f"out{i}"], timeout=20)
        if _check(res, accepted_ok=("reached",)):
            accepted += 1
        else:
            refused += 1
            assert snapshot(str(tmp_path)) == before, p              # a refused config writes nothing
    _report("configs", N_CONFIGS, refused, accepted, record_property)


def test_fuzz_run_directories(runs, tmp_path, monkeypatch, no_search, record_property):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(99)
    refused = accepted = 0
    targets = ["run.json", "hall_of_fame.json", "metrics.jsonl", "config.yaml", "checkpoints",
               "checkpoints/ckpt-00000002.npz", "checkpoints/ckpt-00000001.npz"]
    commands = [["inspect", "{d}", "--no-plots"], ["inspect", "{d}", "--json", "--no-plots"],
                ["export", "{d}:0", "--to", "latex"], ["run", "{d}", "--resume", "--wandb", "disabled", "--no-curves"]]
    for i in range(N_RUN_DIRS):
        base = rng.choice(["finished", "finished", "interrupted"])
        d = _copy(runs[base], tmp_path / f"run{i}")
        for _ in range(rng.choice([1, 1, 2])):
            rel = rng.choice(targets)
            p = os.path.join(d, rel)
            if not os.path.lexists(p) or os.path.islink(p) or (os.path.exists(p) and stat_is_fifo(p)):
                continue
            doc = None
            if rel.endswith(".json") and os.path.isfile(p):
                try:
                    with open(p) as f:
                        doc = json.load(f)
                except ValueError:
                    doc = None
            mutate = (lambda doc=doc: json.dumps(_mutate_json(doc, rng))) if isinstance(doc, (dict, list)) else None
            if rel == "config.yaml" and rng.random() < 0.5:
                with open(p, "a") as f:
                    f.write(rng.choice(["\nseed: .nan\n", "\nspace: {n_post: 1000000000}\n", "\n" + LAUGHS,
                                        "\nfrobnicate: 1\n"]))
            else:
                _damage_file(p, rng, mutate)
        cmd = [a.format(d=d) for a in rng.choice(commands)]
        before = snapshot(d)
        res = call(cmd, timeout=20)
        if _check(res):
            accepted += 1
            if cmd[0] != "run":
                assert snapshot(d) == before, cmd                  # --no-plots inspect / export write nothing
        else:
            refused += 1
            assert snapshot(d) == before, cmd                      # a refusal writes nothing (run.json included)
        shutil.rmtree(d, ignore_errors=True)
    _report("run_directories", N_RUN_DIRS, refused, accepted, record_property)


def stat_is_fifo(p: str) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(p).st_mode)


# ---------------------------------------------------------------------------------------------------------------
# found by an audit (2026-11-29): output paths and streams, flags that were ignored, numbers float32 cannot hold
# ---------------------------------------------------------------------------------------------------------------
def test_export_output_never_replaces_a_device_a_link_or_a_directory(tmp_path):
    """`-o` used to write a temporary file and rename it over the target: as root, `-o /dev/null` turned the
    device into a regular file and `-o LINK` replaced the link. A FIFO (like /dev/null, no regular file) is written
    in place, a link is followed, a directory is refused."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []

    def read_fifo():
        with open(fifo) as f:
            got.append(f.read())

    reader = threading.Thread(target=read_fifo)
    reader.start()
    assert call(["export", "fa", "--to", "numpy", "-o", fifo])[0] == 0
    reader.join(10)
    assert fifo.is_fifo() and "def rule(" in got[0]
    target = tmp_path / "real.py"
    target.write_text("old")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    assert call(["export", "fa", "--to", "numpy", "-o", link])[0] == 0
    assert link.is_symlink() and "def rule(" in target.read_text()
    assert_refused(call(["export", "fa", "--to", "numpy", "-o", tmp_path]), "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.py", "real.py"]     # no temporary left


def test_a_run_file_that_cannot_be_written_is_named(monkeypatch, capsys):
    """Found by a resume audit: a run directory made unwritable (chattr +i) gave "cannot write the output:
    Operation not permitted", a message written for stdout, naming no file."""
    from plasticity_search import cli
    from plasticity_search.runs import run_cmd

    def fails(args):
        raise PermissionError(1, "Operation not permitted", "/runs/r/checkpoints/.ckpt-00000002.npz.tmp")

    monkeypatch.setattr(run_cmd, "cmd_run", fails)
    assert cli.main(["run", "search_spaces/delta.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == ("plasticity-search: error: cannot write '/runs/r/checkpoints/.ckpt-00000002.npz.tmp': "
                   "Operation not permitted\n")


def test_ctrl_c_while_a_library_loads_is_an_interrupt_not_a_traceback(monkeypatch, capsys):
    """Found by a resume audit: Ctrl-C in the first 0.2 s of a run interrupted numpy's import, which numpy turns
    into an ImportError naming no interrupt: two tracebacks and exit 1. The command line's SIGINT handler remembers
    the interrupt; an ImportError without one is still an error."""
    import signal

    from plasticity_search import cli
    from plasticity_search.runs import run_cmd

    def interrupted_import(args):
        cli._SIGINT["seen"] = True          # what the handler records when the signal arrives
        raise ImportError("Encountered an error while initializing the extension.")

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(run_cmd, "cmd_run", interrupted_import)
    assert cli.main(["run", "search_spaces/delta.yaml"]) == 130
    assert capsys.readouterr().err == "plasticity-search: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is before        # the handler is the command line's only while it runs

    def broken_import(args):
        raise ImportError("no module named 'missing'")

    monkeypatch.setattr(run_cmd, "cmd_run", broken_import)
    with pytest.raises(ImportError, match="missing"):
        cli.main(["run", "search_spaces/delta.yaml"])


def test_stdout_that_cannot_be_written_is_one_line():
    import subprocess
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    for argv in (["export", "fa", "--to", "numpy"], ["rules", "--json"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "plasticity_search.cli", *argv], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "cannot write the output" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(["sh", "-c", 'exec "$0" -m plasticity_search.cli export fa --to json >&-', sys.executable],
                       stderr=subprocess.PIPE, text=True, timeout=120)     # started with stdout closed
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("argv,needle", [
    (["evaluate", "fa", "--task", "teacher_student", "--seeds", "1", "--steps", "5", "--metric", "foo"],
     "--metric"),                                                              # one rule: was ignored
    (["evaluate", "stdp_add", "--task", "spiking_teacher", "--network", "5-3"], "--network: spiking tasks"),
    (["evaluate", "stdp_add", "--task", "spiking_teacher", "--batch-size", "4"], "--batch-size: spiking tasks"),
    (["evaluate", "fa", "--task", "digits", "--lr", "1e300"], "float32"),       # inf in float32
    (["evaluate", "fa", "--task", "digits", "--lr", "1e-320"], "float32"),      # 0 in float32
    (["run", QUICKSTART, "--process-id", "1"], "coordinator"),                 # was ignored
])
def test_flags_that_were_ignored_or_overflowed_are_refused(argv, needle, tmp_path, monkeypatch, no_execute):
    monkeypatch.chdir(tmp_path)
    before = snapshot(str(tmp_path))
    assert_refused(call(argv, timeout=120), needle)
    assert snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("key,value", [("network.lr", 1e300), ("network.lr", 1e-320), ("spiking.lr", 1e-320)])
def test_config_rates_outside_float32_refused(key, value, tiny_cfg, tmp_path, monkeypatch, no_execute):
    monkeypatch.chdir(tmp_path)
    cfg = _set_dotted(json.loads(json.dumps(tiny_cfg)), key, value)
    if key.startswith("spiking."):
        cfg["tasks"] = {s: [{"task": "spiking_teacher", "seeds": 1}] for s in ("search", "select", "final")}
        cfg.pop("network", None)
        cfg.pop("generalization", None)
        cfg["space"] = {"post_vars": ["sy", "ty"], "pre_vars": ["sx", "tx"], "ops": ["add", "mul"],
                        "syn": ["1", "w"], "n_post": 1, "n_pre": 1, "n_terms": 2}
    path = _write_cfg(tmp_path / "c.yaml", cfg)
    before = snapshot(str(tmp_path))
    assert_refused(call(["run", path, "--out", tmp_path / "out"]), f"{key}: must be within float32's range")
    assert snapshot(str(tmp_path)) == before


def test_confusing_messages_name_the_problem(tmp_path, runs, monkeypatch, no_execute):
    monkeypatch.chdir(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_text("seed: " + "9" * 5000 + "\n")
    assert_refused(call(["run", big, "--out", tmp_path / "out"]), "more than 4300 digits")
    assert_refused(call(["export", f"{runs['finished']}:abc", "--to", "json"]), "integer rank, got 'abc'")
    line = assert_refused(call(["evaluate", "fa", "--task", "digits", "--readout-rule", f"{runs['finished']}:0"]))
    assert "export it first" in line and "resolve_rule_spec" not in line


def test_run_lock_that_is_no_file_is_one_line(tmp_path):
    """`run.lock` made a directory (or a link) crashed a resume with IsADirectoryError; now one RunDirError line."""
    from plasticity_search.runs.rundir import RunDirError, RunLock

    for make in (os.mkdir, lambda p: os.symlink(str(tmp_path / "elsewhere"), p)):
        d = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        make(str(d / "run.lock"))
        with pytest.raises(RunDirError, match="run.lock is not a regular file") as exc:
            RunLock(str(d)).acquire()
        assert "\n" not in str(exc.value)
    d = tmp_path / "fine"
    d.mkdir()
    RunLock(str(d)).acquire().release()          # a missing lock file is created, as before
    (d / "run.lock").write_text("12345\n")
    RunLock(str(d)).acquire().release()          # taking the lock writes nothing: a refused resume leaves it
    assert (d / "run.lock").read_text() == "12345\n"
    lock = RunLock(str(d)).acquire()
    lock.write_pid()                             # a run past its checks records its process id
    lock.release()
    assert (d / "run.lock").read_text() == f"{os.getpid()}\n"


def test_rule_file_with_a_key_twice_refused(tmp_path):
    """json.loads keeps the last copy of a key silently (other parsers the first): a rule file is refused."""
    rc, text, _, _ = call(["export", "oja", "--to", "json"])
    assert rc == 0
    p = tmp_path / "dup.json"
    p.write_text(text.replace('"name": "oja",', '"name": "oja", "name": "other",', 1))
    assert_refused(call(["export", p, "--to", "latex"]), "key 'name' appears twice")
    (tmp_path / "ok.json").write_text(text)
    assert call(["export", tmp_path / "ok.json", "--to", "latex"])[0] == 0


# --- the Python API's arguments (found by an input audit: the command line bounded these, the API did not) -------
def _api_cases():
    from plasticity_search import rate
    from plasticity_search.rules import RATE_SPACE, compile_formula

    ev = lambda **kw: rate.evaluate_rule(kw.pop("rule", "fa"), kw.pop("task", "digits"), **{"seeds": 1, "steps": 20, **kw})  # noqa: E731
    tr = lambda **kw: rate.weight_trajectory("fa", "digits", **{"steps": 50, **kw})  # noqa: E731
    return [
        (lambda: ev(lr=-1.0), "lr must be a finite number >= 0"),
        (lambda: ev(lr=float("nan")), "lr must be a finite number >= 0"),
        (lambda: ev(lr="x"), "lr must be a number"),
        (lambda: ev(lr=1e39), "lr must be within float32's range"),
        (lambda: ev(readout_rule="fa", readout_lr=-1), "readout_lr must be a finite number >= 0"),
        (lambda: ev(seeds=2.7), "seeds must be an integer"),
        (lambda: ev(seeds=True), "seeds must be an integer"),
        (lambda: ev(seeds=0), "seeds must be in [1, 10000]"),
        (lambda: ev(steps=10 ** 9), "steps must be in [1, 10000000]"),
        (lambda: ev(batch_size=2.5), "batch_size must be an integer"),
        (lambda: ev(network="1000000000"), "network: at most 64 hidden layers of at most 100000 neurons"),
        (lambda: ev(rule=123), "rule must be a rule name, a formula, a rule file or a ResolvedRule"),
        (lambda: ev(task=None), "task must be a task name or a Task"),
        (lambda: ev(split="train"), "split must be search, select or final"),
        (lambda: tr(network="1000000000"), "network: at most 64 hidden layers"),
        (lambda: tr(steps=10 ** 12), "steps must be in [1, 10000000]"),
        (lambda: tr(lr=float("inf")), "lr must be a finite number >= 0"),
        (lambda: tr(batch_size=0), "batch_size must be in [1, 65536]"),
        (lambda: compile_formula(123, RATE_SPACE), "a formula must be a string, got int"),
        (lambda: compile_formula("x", None), "space must be a Space"),
        (lambda: compile_formula("c*x", RATE_SPACE, {"c": "z"}), "params: 'c' must be a finite number"),
        (lambda: compile_formula("x*y", RATE_SPACE, {"x": 2}), "params: 'x' is a variable of the space"),
    ]


@pytest.mark.parametrize("i", range(22))
def test_the_python_api_names_a_bad_argument(i):
    """A NaN or negative learning rate ran and returned numbers, 2.7 seeds ran 2, a width of 10^9 aborted the
    process inside XLA; now each is a RuleError (a ValueError) naming the argument, before anything is computed."""
    from plasticity_search.rules import RuleError

    call, needle = _api_cases()[i]
    with pytest.raises(RuleError) as exc:
        call()
    assert needle in str(exc.value) and "\n" not in str(exc.value)
