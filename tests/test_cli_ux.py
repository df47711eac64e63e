"""Issue 16 (items 9, 12, 13, 15): a light start-up, ``run --set``, ``evaluate --task-arg``, user tasks named by import
path in a config, and ``inspect`` with several runs side by side.

Two tiny runs on a task of the user's own (tests/helpers/user_tasks.py, named ``user_tasks:make_task`` in the YAML)
share one compilation: run B differs from run A only by ``--set`` overrides of keys that change no array shape.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

from plasticity_search import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = os.path.join(ROOT, "tests", "helpers")
QUICKSTART = os.path.join(ROOT, "search_spaces", "quickstart.yaml")
USER_TASK = "user_tasks:make_task"

TINY = {
    "name": "tiny_user",
    "space": {"post_vars": ["y", "e"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 1, "n_pre": 1, "n_terms": 2},
    "search": {"strategy": "regularized_evolution", "population": 4, "tournament": 2, "children": 2},
    "network": {"hidden": [4], "lr": 0.05},
    "tasks": {"search": [{"task": USER_TASK, "seeds": 1}], "select": [{"task": USER_TASK, "seeds": 1}],
              "final": [{"task": USER_TASK, "seeds": 2}]},
    "hall_of_fame": {"select_seeds": 2},
    "generalization": {"at_end": False},
    "budget": {"generations": 1},
}


def _one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert err[0].startswith("plasticity-search: error: ") and err[0].count("error:") == 1, err
    return err[0]


@pytest.fixture
def helpers_on_path(monkeypatch):
    monkeypatch.syspath_prepend(HELPERS)


# --- item 9: start-up ------------------------------------------------------------------------------------------
def test_building_the_parser_loads_neither_jax_nor_sympy():
    code = ("import json, sys; import plasticity_search.cli as c; p = c.build_parser(); "
            "c.main(['--help']); c.main(['run', '--help']); c.main(['evaluate', '--help']); "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("jax", "jaxlib", "sympy", "matplotlib", "wandb",
                                                               "evosax", "optax", "scipy", "sklearn"))
    assert not heavy, heavy
    assert "usage: plasticity-search" in r.stdout and "--task-arg" in r.stdout and "--set" in r.stdout


def test_listing_rules_and_tasks_loads_neither_jax_nor_sympy():
    """``rules`` (text), ``rules --help`` and ``tasks`` start without JAX or sympy (issue 16 item 9: 3.3 s -> ~0.3 s):
    the rule registry, the op table and Space load them lazily, the listing reads the stored formulas."""
    code = ("import json, sys; import plasticity_search.cli as c; "
            "c.main(['rules']); c.main(['rules', '--help']); c.main(['tasks']); "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("jax", "jaxlib", "sympy", "matplotlib", "scipy"))
    assert not heavy, heavy
    assert "legend:" in r.stdout and "dw = y*(-w*y + x)" in r.stdout and "usage: plasticity-search rules" in r.stdout


def test_stored_rule_listing_equals_the_formulas():
    """known._LISTED (what ``rules`` prints without sympy) is what sympy derives from each rule's formula."""
    import dataclasses

    from plasticity_search.rules.known import _LISTED, RULES

    stale = {name: (r.derived_formula(), tuple(r.derived_variables())) for name, r in RULES.items()
             if _LISTED.get(name) != (r.derived_formula(), tuple(r.derived_variables()))}
    assert not stale and set(_LISTED) == set(RULES), (
        "update _LISTED in plasticity_search/rules/known.py:\n"
        + "\n".join(f"    {n!r}: {v!r}," for n, v in stale.items()) + f"\nextra: {sorted(set(_LISTED) - set(RULES))}")
    for r in RULES.values():
        assert r.resolved_formula() == _LISTED[r.name][0] and r.variables == list(_LISTED[r.name][1])
    # a rule that differs from the registered one (other defaults) is derived, not read from the table
    kp = dataclasses.replace(RULES["kolen_pollack"], params={"lam": 0.5})
    assert kp.resolved_formula() == "-e*x - 0.5*w" and kp.variables == ["e", "w", "x"]


def test_literal_choices_match_their_registries(capsys):
    from plasticity_search import evaluate_cmd
    from plasticity_search.export import TARGETS
    from plasticity_search.rate.mlp import FEEDBACKS
    from plasticity_search.search.config import BP_BASELINE

    assert tuple(cli.EXPORT_TARGETS) == tuple(TARGETS)
    assert tuple(evaluate_cmd.FEEDBACK_NAMES) == tuple(FEEDBACKS)
    assert BP_BASELINE == "bp"
    for cmd in ("rules", "tasks", "export", "run", "inspect", "evaluate", "generalize"):
        assert cli.main([cmd, "--help"]) == 0
        assert "usage: plasticity-search " + cmd in capsys.readouterr().out


# --- items 2, 3: one error prefix; the hint after a spiking run names brian2 and nestml -------------------------
def test_error_prefix_once(capsys):
    assert cli.main(["evaluate"]) == 2
    _one_line_error(capsys, "evaluate: the following arguments are required")


def test_hint_after_a_run_names_the_export_targets_of_its_model():
    from plasticity_search.runs import configs
    from plasticity_search.runs.run_cmd import next_steps

    spiking = next_steps("runs/x", configs.load(os.path.join(ROOT, "search_spaces", "stdp_pattern.yaml")))
    assert len(spiking) == 1 and "--to sympy|latex|jax|numpy|torch|brian2|nestml|json" in spiking[0]
    rate = next_steps("runs/x", configs.load(QUICKSTART, {"tasks.search": [{"task": "pca", "args": {"n_in": 7}}],
                                                           "tasks.select": [], "tasks.final": [],
                                                           "fitness.metric": None, "baselines": None}))
    assert "brian2" not in rate[0] and "--task pca --task-arg n_in=7 --network 7-" in rate[1]


def test_hint_after_a_run_offers_only_the_targets_that_take_its_rule(monkeypatch):
    """An audit saw a spiking_teacher run offer `--to ...|brian2|nestml` for its rule -e*tx, which both refuse
    (a synapse model has no error e)."""
    from plasticity_search.rules.resolve import resolve_rule
    from plasticity_search.runs import configs, results
    from plasticity_search.runs.run_cmd import _refusals, export_targets, next_steps

    ok, refused = export_targets(resolve_rule("-e*tx"))
    assert ok == ["sympy", "latex", "jax", "numpy", "torch", "json"]
    assert refused == dict.fromkeys(["brian2", "nestml"], "it reads e, which a synapse model does not have")
    assert export_targets(resolve_rule("stdp_add"))[1] == {}
    # brian2 takes a same-step pre-and-post term that NESTML cannot deliver
    ok, refused = export_targets(resolve_rule("sx*sy"))
    assert "brian2" in ok and list(refused) == ["nestml"] and "pre and a post spike in the same step" in refused["nestml"]
    assert _refusals({"brian2": "a", "nestml": "b"}) == "(not brian2: a; not nestml: b)"
    cfg = configs.load(os.path.join(ROOT, "search_spaces", "spiking_teacher.yaml"))
    monkeypatch.setattr(results, "rule_from_run", lambda run_dir, rank: resolve_rule("-e*tx"))
    (line,) = next_steps("runs/x", cfg)
    assert line == ("export a rule  plasticity-search export runs/x:0 --to sympy|latex|jax|numpy|torch|json   "
                    "(not brian2|nestml: it reads e, which a synapse model does not have)")
    monkeypatch.setattr(results, "rule_from_run", lambda run_dir, rank: resolve_rule("stdp_add"))
    assert next_steps("runs/x", cfg)[0].endswith("--to sympy|latex|jax|numpy|torch|brian2|nestml|json")


def test_compare_hint_carries_what_the_run_ran_with():
    """The `compare` hint is the run's final comparison: an audit found it scoring hidden_hebbian's rule at chance
    (no readout rule, 1000 steps instead of 600) and PCA runs against FA/BP instead of their baseline oja."""
    from plasticity_search.runs import configs
    from plasticity_search.runs.run_cmd import compare_command, next_steps

    hh = compare_command("runs/x", configs.load(os.path.join(ROOT, "search_spaces", "hidden_hebbian.yaml")))
    assert hh == ("plasticity-search evaluate runs/x:0 fa bp '0*x' oja --task digits --network 64-100-10:tanh "
                  "--seeds 8 --steps 600 --lr 0.001 --readout-rule fa --readout-lr 0.05")
    oja = configs.load(os.path.join(ROOT, "search_spaces", "oja.yaml"), {"fitness.penalties": []})
    assert compare_command("runs/x", oja).startswith("plasticity-search evaluate runs/x:0 oja --task pca ")
    # oja.yaml's fitness is the alignment with a weight-norm penalty, which evaluate cannot compute: re-scored as
    # plain alignment, a config audit saw "LOSES TO oja -0.005 [-0.008, -0.003]" become a tie; no command then
    penalised = configs.load(os.path.join(ROOT, "search_spaces", "oja.yaml"))
    assert penalised.fitness.penalties and compare_command("runs/x", penalised) is None
    assert "its fitness has penalties" in next_steps("runs/x", penalised)[1]
    # a network evaluate has no flags for: no command, a pointer to the run's own comparison
    layered = configs.load(os.path.join(ROOT, "search_spaces", "hidden_hebbian.yaml"),
                           {"network.readout_rule": None, "network.readout_lr": None,
                            "network.layer_rules": [None, "fa"]})
    assert compare_command("runs/x", layered) is None
    assert "report.html" in next_steps("runs/x", layered)[1]


# --- item 13: run --set ----------------------------------------------------------------------------------------
def test_parse_sets_reads_yaml_values_safely():
    from plasticity_search.runs.run_cmd import parse_sets

    got = parse_sets(["network.feedback=dfa", "search.population=128", "network.hidden=[32, 16]",
                      "budget.time_limit_s=null", "hall_of_fame.snap=false", "name=a=b", "network.lr=1e-3"])
    assert got == {"network.feedback": "dfa", "search.population": 128, "network.hidden": [32, 16],
                   "budget.time_limit_s": None, "hall_of_fame.snap": False, "name": "a=b", "network.lr": 1e-3}
    for bad, needle in ((["network.feedback"], "expected KEY=VALUE"), (["=3"], "expected KEY=VALUE"),
                        (["a..b=1"], "not a dotted config key"), (["a[0]=1"], "not a dotted config key"),
                        (["seed=1", "seed=2"], "given twice"), (["budget={generations: 2}", "budget.generations=3"],
                                                                "overlaps"),
                        (["name=!!python/object/apply:os.system ['true']"], "not valid YAML"),
                        (["name=[1, 2"], "not valid YAML")):
        with pytest.raises(ValueError, match=needle) as exc:
            parse_sets(bad)
        assert "\n" not in str(exc.value)


def test_set_overrides_are_validated_like_the_file(tmp_path):
    from plasticity_search.runs.runner import plan_run

    out = tmp_path / "run"
    plan = plan_run(QUICKSTART, out=str(out), sets={"network.feedback": "dfa", "search.population": 128},
                    seed=7, wandb="disabled")
    assert plan.cfg.network["feedback"] == "dfa" and plan.cfg.search.population == 128 and plan.cfg.seed == 7
    assert plan.cfg_dict["network"]["feedback"] == "dfa"            # what config.yaml is written from
    assert not out.exists()


@pytest.mark.parametrize("sets,needle", [
    (["network.feedbak=dfa"], "network.feedbak: unknown key"),
    (["nope.deeper=1"], "nope: unknown key"),
    (["search.population=-4"], "search.population: must be >= 2, got -4"),
    (["network.feedback=xyz"], "network.feedback: unknown feedback 'xyz'"),
    (["search.population=.nan"], "search.population"),
    (["seed.x=1"], "seed: cannot override inside"),
    (["network.feedback"], "--set: expected KEY=VALUE"),
])
def test_bad_set_is_one_line_exit_2_and_writes_nothing(sets, needle, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", QUICKSTART, "--out", str(out), "--wandb", "disabled"]
    for s in sets:
        args += ["--set", s]
    assert cli.main(args) == 2
    _one_line_error(capsys, needle)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_set_refused_on_resume(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path), "--resume", "--set", "seed=1"]) == 2
    _one_line_error(capsys, "--set applies to new runs")


# --- item 13: evaluate --task-arg ------------------------------------------------------------------------------
def test_task_args_set_task_fields():
    from plasticity_search.evaluate_cmd import make_task, parse_task_args

    args = parse_task_args(["n_in=20", "default_steps=50"])
    assert args == {"n_in": 20, "default_steps": 50}
    task = make_task("pca", args)
    assert task.n_in == 20 and task.default_steps == 50 and task.sample(0, "search").x_stream.shape == (50, 20)


@pytest.mark.parametrize("targs,needle", [
    (["n_in=0"], "--task-arg n_in: must be >= 1, got 0"),
    (["n_in=abc"], "--task-arg n_in: expected int, got str"),
    (["n_in=2.5"], "--task-arg n_in: expected int"),
    (["n_inputs=20"], "settable fields"),
    (["n_in"], "--task-arg: expected FIELD=VALUE"),
    (["n_in=1", "n_in=2"], "given twice"),
    (["n_in=[1, 2]"], "must be a number"),
    (["n_in=!!python/name:os.system"], "not a YAML scalar"),
])
def test_bad_task_arg_is_one_line_exit_2(targs, needle, capsys):
    args = ["evaluate", "oja", "--task", "pca", "--seeds", "1", "--steps", "5"]
    for t in targs:
        args += ["--task-arg", t]
    assert cli.main(args) == 2
    _one_line_error(capsys, needle)


def test_evaluate_with_a_task_arg(capsys):
    assert cli.main(["evaluate", "oja", "--task", "pca", "--task-arg", "n_in=5", "--steps", "300", "--seeds", "2",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["network"].startswith("5-") and out["steps"] == 300
    assert out["metrics"]["pc1_alignment"]["mean"] > 0.5


# --- item 15: a task of the user's own, by import path ---------------------------------------------------------
def test_import_path_tasks(helpers_on_path):
    from plasticity_search.tasks import Task, TaskError, make
    from plasticity_search.tasks.registry import is_import_path

    t = make(USER_TASK)
    assert isinstance(t, Task) and t.name == "blobs" and make(USER_TASK) is t       # imported once
    assert make("user_tasks:BLOBS").n_in == 3                                       # a Task instance
    assert make("user_tasks:BlobsTask", n_in=6).n_in == 6                           # a Task class, overridden
    assert is_import_path("a.b:c") and not is_import_path("idx:data") and not is_import_path("digits")
    for name, needle in (("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz' "
                                                     "(ModuleNotFoundError"),
                         ("user_tasks:missing", "has no attribute 'missing'"),
                         ("user_tasks:NOT_A_TASK", "is a int, not a Task"),
                         ("user_tasks:returns_a_number", "returned int, not a plasticity_search.tasks.Task"),
                         ("user_tasks:broken", "broken() failed (RuntimeError: the data file is missing)"),
                         ("user_tasks:undeclared", "undeclared() does not declare that it returns a Task"),
                         ("os:abort", "standard-library module"),
                         ("user_tasks:make_task()", "unknown task"),
                         ("__import__('os').system('true'):x", "unknown task")):
        with pytest.raises(TaskError, match=None) as exc:
            make(name)
        assert needle in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_config_with_an_unimportable_task_is_one_line_and_writes_nothing(tmp_path, capsys):
    cfg = dict(TINY, tasks={"search": [{"task": "no_such_module_xyz:make_task"}]})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert cli.main(["run", str(path), "--out", str(out), "--wandb", "disabled"]) == 2
    _one_line_error(capsys, "tasks.search[0].task: task 'no_such_module_xyz:make_task': cannot import module")
    assert not out.exists()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run A and run B (A's config with --set seed=1 --set hall_of_fame.eps=0.05), both on the user task from
    YAML; then A is resumed and extended to 2 generations."""
    d = tmp_path_factory.mktemp("ux")
    cfg = d / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY, sort_keys=False))
    sys.path.insert(0, HELPERS)
    try:
        a, b = str(d / "A"), str(d / "B")
        common = ["--wandb", "disabled", "--no-curves"]
        assert cli.main(["run", str(cfg), "--out", a, *common]) == 0
        assert cli.main(["run", str(cfg), "--out", b, "--set", "seed=1", "--set", "hall_of_fame.eps=0.05",
                         *common]) == 0
        assert cli.main(["run", a, "--resume", "--generations", "2", "--wandb", "disabled", "--no-curves"]) == 0
    finally:
        sys.path.remove(HELPERS)
    return a, b


def test_user_task_run_has_a_run_dir_report_and_resume(two_runs):
    a, b = two_runs
    written = yaml.safe_load(open(os.path.join(a, "config.yaml")))
    assert written["tasks"]["search"][0]["task"] == USER_TASK and written["budget"]["generations"] == 2
    assert os.path.isfile(os.path.join(a, "report.html")) and os.path.isfile(os.path.join(a, "hall_of_fame.json"))
    with open(os.path.join(a, "run.json")) as f:
        rec = json.load(f)
    assert rec["status"] == "finished" and rec["generations_done"] == 2
    # --set is written into the run's config.yaml
    written_b = yaml.safe_load(open(os.path.join(b, "config.yaml")))
    assert written_b["seed"] == 1 and written_b["hall_of_fame"]["eps"] == 0.05


def test_inspect_several_runs_side_by_side(two_runs, capsys):
    a, b = two_runs
    before = {d: sorted(os.listdir(d)) for d in (a, b)}
    report_mtime = os.path.getmtime(os.path.join(b, "report.html"))
    assert cli.main(["inspect", a, b, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["run_dir"] for r in doc["runs"]] == [a, b]
    assert [r["generations_done"] for r in doc["runs"]] == [2, 1]
    for r in doc["runs"]:
        ch = r["chosen"]
        assert ch["formula"] and set(ch["fitness"]) == {"search", "select", "final"}
        assert "final_accuracy" in ch["metrics"] and {b_["name"] for b_ in r["baselines"]} == {"fa", "bp"}
        assert {"delta", "lo", "hi", "verdict"} <= set(ch["paired"]["fa"])
    diffs = {d["key"]: d["values"] for d in doc["config_differences"]}
    assert diffs == {"seed": [0, 1], "hall_of_fame.eps": [0.01, 0.05], "budget.generations": [2, 1]}

    assert cli.main(["inspect", a, b]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["A", "B"]
    chosen = next(ln for ln in lines if ln.startswith("chosen rule"))
    assert all(f"dw = {r['chosen']['formula']}" in chosen for r in doc["runs"])
    assert any(ln.startswith("Δ vs fa (95% CI)") for ln in lines)
    assert any(ln.startswith("final_accuracy (final)") for ln in lines)
    assert "config differences (3 keys):" in text
    seed = next(ln for ln in lines if ln.strip().startswith("seed"))
    assert seed.split() == ["seed", "0", "1"]
    # several runs: nothing is written in their directories
    assert {d: sorted(os.listdir(d)) for d in (a, b)} == before
    assert os.path.getmtime(os.path.join(b, "report.html")) == report_mtime

    assert cli.main(["inspect", a, a]) == 2
    _one_line_error(capsys, "given twice")
    assert cli.main(["inspect", a, b, "--top", "1"]) == 2
    _one_line_error(capsys, "--top applies to one run")
    assert cli.main(["inspect", a, os.path.join(os.path.dirname(a), "nope")]) == 2
    _one_line_error(capsys, "nope")
