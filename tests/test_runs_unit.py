"""Runs layer pieces that need no search: checkpoints, run directories, config diffs, wandb mode, progress,
plots, report, inspect table, RUN_DIR:RANK parsing. (End to end with the real engine: test_runs.py.)"""
import io
import json
import os
import re

import numpy as np
import pytest

from plasticity_search.runs import checkpoint as ckpt
from plasticity_search.runs import configs, rundir
from plasticity_search.runs.inspect import format_table, inspect_data
from plasticity_search.runs.progress import SearchProgress
from plasticity_search.runs.results import hall_of_fame_csv, table_rows
from plasticity_search.runs.wandb_log import WandbError, resolve_mode


def _text(path) -> str:
    with open(path) as f:
        return f.read()


def _json(path):
    return json.loads(_text(path))


# ---------------------------------------------------------------------------------------------------------------
def _hof_json():
    from plasticity_search.rules import RULES, complexity, to_latex, to_text

    es = []
    for i, name in enumerate(["fa", "oja", "bcm"]):
        p, s = RULES[name].compile()
        f = 0.9 - 0.1 * i
        es.append({"rank": i, "formula": to_text(p, s), "latex": to_latex(p, s), "complexity": complexity(p, s),
                   "fitness": f, "metrics": {"search": {"fitness": f, "final_accuracy": f},
                                             "select": {"fitness": f - 0.01}, "final": {"fitness": f - 0.02}},
                   "program": {k: np.asarray(v).tolist() for k, v in p._asdict().items()}, "space": s.to_dict()})
    return {"schema": "plasticity-search/hall-of-fame/v1", "entries": es, "best": 1}


def _fake_run(tmp_path, finished=True, n_gen=4):
    d = str(tmp_path / "run")
    rec = rundir.new_run_record("unit", seed=0, generations=n_gen)
    if finished:
        rec["status"] = "finished"
    rundir.create_run_dir(d, {rundir.CONFIG_FILE: "name: unit\n", rundir.RUN_FILE: json.dumps(rec)})
    for g in range(n_gen):
        rundir.append_metrics(d, {"generation": g, "best_fitness": 0.1 * g, "median_fitness": 0.05 * g,
                                  "candidates_per_s": 10.0, "wall_time_s": 0.1})
    if finished:
        rundir.atomic_write_json(os.path.join(d, rundir.HOF_JSON), _hof_json())
    return d


# ---------------------------------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_keeps_last_two_and_refuses_pickle(tmp_path):
    d = str(tmp_path)
    os.makedirs(os.path.join(d, rundir.CHECKPOINT_DIR))
    key = np.array([0, 42], dtype=np.uint32)
    for g in (1, 2, 3):
        ckpt.save(d, g, {"key": key, "pop/op": np.arange(6, dtype=np.int32).reshape(2, 3) + g,
                         "fit": np.array([np.nan, 1.5], np.float32)}, {"gen": g, "t": [1, 2]},
                  n_metrics=g, cfg_sha="abc")
    assert ckpt.list_generations(d) == [2, 3]
    arrays, meta = ckpt.load_latest(d)
    assert meta["generation"] == 3 and meta["n_metrics"] == 3 and meta["state_meta"] == {"gen": 3, "t": [1, 2]}
    assert arrays["pop/op"].dtype == np.int32 and (arrays["pop/op"] == np.arange(6).reshape(2, 3) + 3).all()
    assert arrays["key"].dtype == np.uint32 and np.isnan(arrays["fit"][0])
    with pytest.raises(ckpt.CheckpointError, match="pickle"):
        ckpt.save(d, 4, {"x": np.array([{"a": 1}], dtype=object)}, {}, n_metrics=4, cfg_sha="abc")
    assert ckpt.list_generations(d) == [2, 3]          # nothing written by the failed save
    assert not [n for n in os.listdir(os.path.join(d, rundir.CHECKPOINT_DIR)) if ".tmp-" in n]


def _two_checkpoints_and(d: str, damaged: int, data: bytes) -> None:
    """Checkpoints 1 and 2 of a run in ``d``, then ``data`` written as checkpoint ``damaged``."""
    os.makedirs(os.path.join(d, rundir.CHECKPOINT_DIR))
    for g in (1, 2):
        ckpt.save(d, g, {"a": np.full(3, g)}, {}, n_metrics=g, cfg_sha="x")
    with open(ckpt.checkpoint_path(d, damaged), "wb") as f:
        f.write(data)


def test_damaged_newest_checkpoint_falls_back_to_previous(tmp_path):
    d = str(tmp_path)
    _two_checkpoints_and(d, 2, b"PK\x03\x04garbage")
    arrays, meta = ckpt.load_latest(d)
    assert meta["generation"] == 1 and (arrays["a"] == 1).all()


def test_a_stray_newer_checkpoint_does_not_outlive_the_run(tmp_path):
    """An audit left a damaged ckpt-99999999.npz: each resume passed over it, and pruning by number kept it as one
    of the newest two, so the run kept one checkpoint of its own. Pruning now counts only the files up to the one
    saved, and leaves a passed-over file alone (it may be readable again: an I/O error, a permission)."""
    d = str(tmp_path)
    _two_checkpoints_and(d, 99999999, b"garbage")
    seen = []
    assert ckpt.load_latest(d, on_skip=lambda path, why: seen.append(path))[1]["generation"] == 2
    assert seen == [ckpt.checkpoint_path(d, 99999999)]
    ckpt.save(d, 3, {"a": np.full(3, 3)}, {}, n_metrics=3, cfg_sha="x")
    ckpt.save(d, 4, {"a": np.full(3, 4)}, {}, n_metrics=4, cfg_sha="x")
    assert ckpt.list_generations(d) == [3, 4, 99999999]       # two of the run's own, the stray untouched
    assert ckpt.load_latest(d)[1]["generation"] == 4


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    p = str(tmp_path / "f.json")
    rundir.atomic_write_text(p, "old")

    def boom(*a):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        rundir.atomic_write_text(p, "new")
    monkeypatch.undo()
    assert _text(p) == "old" and os.listdir(tmp_path) == ["f.json"]


def test_metrics_log_drops_torn_line_and_truncates(tmp_path):
    d = str(tmp_path)
    for g in range(3):
        rundir.append_metrics(d, {"generation": g, "best_fitness": float("nan")})
    with open(os.path.join(d, rundir.METRICS_FILE), "a") as f:
        f.write('{"generation": 3, "best_fi')
    lines = rundir.read_metrics(d)
    assert [m["generation"] for m in lines] == [0, 1, 2] and lines[0]["best_fitness"] is None
    rundir.truncate_metrics(d, 2)
    assert [m["generation"] for m in rundir.read_metrics(d)] == [0, 1]


def test_run_dir_creation_and_validation(tmp_path):
    d = str(tmp_path / "r")
    rundir.create_run_dir(d, {"run.json": json.dumps(rundir.new_run_record("x")), "config.yaml": "name: x\n"})
    assert sorted(os.listdir(d)) == ["checkpoints", "config.yaml", "run.json"]
    assert rundir.open_run_dir(d)["name"] == "x"
    with pytest.raises(rundir.RunDirError, match="not empty.*--resume"):
        rundir.check_new_run_dir(d)
    empty = tmp_path / "empty"
    empty.mkdir()
    rundir.create_run_dir(str(empty), {"run.json": "{}"})              # an empty --out directory is fine
    with pytest.raises(rundir.RunDirError, match="does not exist"):
        rundir.open_run_dir(str(tmp_path / "nope"))
    with pytest.raises(rundir.RunDirError, match="not a run directory"):
        rundir.open_run_dir(str(tmp_path))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.json").write_text("[1, 2")
    with pytest.raises(rundir.RunDirError, match="not a run directory"):
        rundir.open_run_dir(str(tmp_path / "junk"))
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_default_run_dir_is_unique(tmp_path):
    a = rundir.default_run_dir("quick start/x", root=str(tmp_path), now=0)
    assert re.search(r"quick_start_x-\d{8}-\d{6}$", a)
    os.makedirs(a)
    assert rundir.default_run_dir("quick start/x", root=str(tmp_path), now=0) == a + "-2"


def test_lock_is_exclusive_and_dies_with_the_process(tmp_path):
    d = str(tmp_path)
    with rundir.RunLock(d):
        assert rundir.lock_held(d)
        with pytest.raises(rundir.RunDirError, match="in use"):
            rundir.RunLock(d).acquire()
    assert not rundir.lock_held(d)


def test_config_diff_and_keys():
    old = {"name": "q", "seed": 0, "budget": {"generations": 5}, "search": {"population": 8, "ops": ["add"]}}
    new = {"name": "q", "seed": 0, "budget": {"generations": 9}, "search": {"population": 16, "ops": ["add"]},
           "extra": 1}
    assert configs.diff(old, new) == [("budget.generations", 5, 9), ("search.population", 8, 16),
                                      ("extra", "<absent>", 1)]
    assert configs.find_key(old, "generations") == "budget.generations"
    assert configs.overrides_for(old, 3, 7) == {"seed": 3, "budget.generations": 7}
    text = configs.dump_yaml({"a": (1, 2), "b": {"c": None}}, "hello")
    assert text.startswith("# hello\n") and "a: [1, 2]" in text


def test_wandb_mode_resolution():
    assert resolve_mode(None, {}) == "offline"
    assert resolve_mode(None, {"WANDB_MODE": "disabled"}) == "disabled"
    assert resolve_mode("online", {"WANDB_MODE": "disabled"}) == "online"
    assert resolve_mode(None, {"WANDB_MODE": "dryrun"}) == "offline"
    with pytest.raises(WandbError, match="WANDB_MODE"):
        resolve_mode(None, {"WANDB_MODE": "sometimes"})


def test_progress_prints_plain_lines_when_not_a_terminal():
    """A log file (nohup, SLURM) gets phase lines and a line per interval of generations with the best so far."""
    buf = io.StringIO()
    with SearchProgress(100, enabled=None, stream=buf, every_s=3600) as p:
        p.phase("compiling and scoring the initial population")
        for g in range(1, 101):
            p.update(g, {"best_fitness": 0.1, "best_fitness_ever": 0.5 + g / 1000, "best_select_fitness": 0.45,
                         "candidates_per_s": 1234.0})
        p.log("hello")
    p.phase("finalizing")
    lines = buf.getvalue().splitlines()
    assert "compiling" in lines[0] and "finalizing" in lines[-1] and "hello" in lines[-2]
    gens = [ln for ln in lines if "gen " in ln]
    assert len(gens) == 2                          # the first and the last generation (interval not reached)
    assert "gen 1/100" in gens[0] and "gen 100/100" in gens[1]
    assert "best so far 0.6" in gens[1] and "select 0.45" in gens[1] and "1,234 cand/s" in gens[1]
    buf = io.StringIO()
    with SearchProgress(2, enabled=None, stream=buf) as p:        # a slow spiking search: not "0 cand/s"
        p.update(1, {"best_fitness": 0.1, "candidates_per_s": 0.1937})
    assert "0.19 cand/s" in buf.getvalue()
    buf = io.StringIO()
    with SearchProgress(5, enabled=False, stream=buf) as p:
        p.phase("x")
        p.update(3, {"best_fitness": 0.5})
    p.phase("y")
    assert buf.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    with SearchProgress(5, stream=tty) as p:
        p.phase("search")
        p.update(3, {"best_fitness": 0.2, "best_fitness_ever": 0.5, "candidates_per_s": 1234.0})
    out = tty.getvalue()
    assert "3/5" in out and "0.5" in out and "1,234" in out and "search" in out


# ---------------------------------------------------------------------------------------------------------------
def test_table_csv_and_inspect_document(tmp_path):
    hof = _hof_json()
    cols, rows = table_rows(hof)
    assert cols[:4] == ["rank", "chosen", "complexity", "fitness"] and [r[1] for r in rows] == [False, True, False]
    text = hall_of_fame_csv(hof)
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["rank", "chosen", "complexity"] and "search.final_accuracy" in header
    assert len(text.splitlines()) == 4
    d = _fake_run(tmp_path)
    doc = inspect_data(d, top=2)
    assert doc["status"] == "finished" and not doc["provisional"] and len(doc["entries"]) == 2
    assert doc["entries"][1]["chosen"] and doc["entries"][1]["fitness"]["select"] == pytest.approx(0.79)
    json.dumps(doc, allow_nan=False)
    table = format_table(doc).splitlines()
    assert "rank" in table[1] and "complexity" in table[1] and "fit.final" in table[1]
    assert table[4].startswith(">") and "y*(-w*y + x)" in table[4]


def test_plots_and_self_contained_report(tmp_path):
    from plasticity_search.runs.report import write_outputs

    d = _fake_run(tmp_path)
    out = write_outputs(d)
    assert set(out) == {"fitness", "pareto"}
    for p in out.values():
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    html = _text(os.path.join(d, rundir.REPORT_FILE))
    assert html.count("data:image/png;base64,") >= 2 + 3          # 2 plots + 3 rendered formulas
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "name: unit" in html and "★" in html
    assert r"\Delta w = y \left(- w y + x\right)" in html


def test_learning_curve_and_stdp_plots(tmp_path):
    from plasticity_search.runs import plots

    p = plots.plot_learning_curves({"digits": {"metric": "online accuracy", "series": {
        "rank 0": {"mean": [0.1, 0.5, 0.7], "std": [0.0, 0.1, 0.1]},
        "baseline FA": {"mean": [0.1, 0.4, 0.6], "std": [0, 0, 0]},
        "baseline BP": {"mean": [0.1, 0.6, 0.8], "std": [0, 0, 0]}}}}, str(tmp_path / "lc.png"))
    q = plots.plot_stdp({"stdp": {"offsets_ms": [-10, 0, 10], "dw": [-1.0, 0.0, 1.0]}}, str(tmp_path / "s.png"))
    assert os.path.getsize(p) > 1000 and os.path.getsize(q) > 1000


def test_fitness_plot_of_a_log_without_numbers_draws_no_legend(tmp_path):
    """Non-numeric, boolean or infinite fitness values (a hand-edited or foreign metrics.jsonl) are not drawn and
    raise no matplotlib warning (an empty legend warned before); the plot says why it is empty."""
    import warnings

    from plasticity_search.runs import plots

    drawn = []
    for bad in ("abc", True, [1, 2], None, float("inf")):
        metrics = [{"generation": g, "best_fitness": bad, "median_fitness": bad} for g in (1, 2)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            p = plots.plot_fitness(metrics, str(tmp_path / "f.png"))
        drawn.append(os.path.getsize(p))
    assert plots._finite([True, 1, 2.5, "x", float("nan"), -2e9])[1:3] == [1, 2.5]
    assert np.isnan(plots._finite([True])[0]) and np.isnan(plots._finite([-2e9])[0])
    assert min(drawn) > 1000


def test_stdp_window_data_for_a_spiking_hall_of_fame(tmp_path):
    pytest.importorskip("plasticity_search.spiking.pairing")
    from plasticity_search.rules import RULES, complexity, to_latex, to_text
    from plasticity_search.runs.curves import stdp_windows

    p, s = RULES["stdp_add"].compile()
    e = {"rank": 0, "formula": to_text(p, s), "latex": to_latex(p, s), "complexity": complexity(p, s),
         "fitness": 1.0, "metrics": {}, "model": "spiking",
         "program": {k: np.asarray(v).tolist() for k, v in p._asdict().items()}, "space": s.to_dict()}
    w = stdp_windows(str(tmp_path), {"schema": "plasticity-search/hall-of-fame/v1", "entries": [e], "best": 0})
    (label, series), ref = list(w.items())[0], list(w)[1:]
    assert label.startswith("rank 0") and ref == ["stdp_add (reference)"]          # next to stdp_add's window
    dw = np.asarray(series["dw"])
    offs = np.asarray(series["offsets_ms"])
    assert dw[offs > 1].min() > 0 > dw[offs < -1].max()          # LTP for pre-before-post, LTD after


def test_run_rank_resolver_matches_only_run_specs(tmp_path):
    from plasticity_search.runs import resolve_run_rank
    from plasticity_search.runs.results import ResultsError

    assert resolve_run_rank("e*x - y**2*w") is None
    assert resolve_run_rank("oja") is None
    with pytest.raises(rundir.RunDirError, match="does not exist"):
        resolve_run_rank(str(tmp_path / "nope") + ":0")
    d = _fake_run(tmp_path)
    rule = resolve_run_rank(f"{d}:1")
    assert rule.formula == "y*(-w*y + x)" and rule.model == "rate"
    with pytest.raises(ResultsError, match="out of range"):
        resolve_run_rank(f"{d}:3")


def test_run_and_inspect_have_help(capsys):
    from plasticity_search import cli

    for cmd in ("run", "inspect"):
        assert cli.main([cmd, "--help"]) == 0
        assert "usage" in capsys.readouterr().out.lower()


def test_a_run_directory_half_built_by_a_killed_process_is_removed(tmp_path):
    """create_run_dir builds a hidden sibling and renames it; a process killed in between left the sibling behind
    for good (found by a kill audit). The next creation of that run directory removes those of dead processes."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(p.stdout)
    stale = tmp_path / f".x.tmp-{dead}"
    (stale / "checkpoints").mkdir(parents=True)
    (stale / "config.yaml").write_text("name: x\n")
    alive = tmp_path / f".x.tmp-{os.getppid()}"       # another process's build in progress: left alone
    alive.mkdir()
    other = tmp_path / f".y.tmp-{dead}"                 # another run directory's: left alone
    other.mkdir()
    rundir.create_run_dir(str(tmp_path / "x"), {"a.txt": "a"})
    assert (tmp_path / "x" / "a.txt").read_text() == "a"
    assert not stale.exists() and alive.exists() and other.exists()


def test_side_by_side_comparison_prints_each_rule_and_verdict_once():
    """`inspect A B` wrote `dw = dw = elig*...` for rules that name their targets and `diverged diverged`."""
    from plasticity_search.runs.inspect import format_comparison

    def run(name, formula, paired):
        return {"run_dir": name, "status": "finished", "generations_done": 1, "generations": 1,
                "elapsed_s": 1.0, "baselines": [{"name": "r_stdp", "fitness": 1.0}],
                "chosen": {"formula": formula, "complexity": 3, "fitness": {"final": 1.0}, "metrics": {},
                           "paired": {"r_stdp": paired}}}

    doc = {"runs": [run("a", "elig*(r - rbar); delig = sy*tx", {"diverged": 1, "verdict": "diverged"}),
                    run("b", "-e*x", {"delta": 0.5, "lo": 0.25, "hi": 0.75, "diverged": 0, "verdict": "better"})],
           "config_differences": []}
    text = format_comparison(doc)
    assert "dw = elig*(r - rbar); delig = sy*tx" in text and "dw = dw" not in text
    assert "dw = -e*x" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("Δ vs r_stdp"))
    assert row.split()[-5:] == ["diverged", "+0.500", "[+0.250,", "+0.750]", "better"], row


def test_verdict_lines_name_a_baseline_that_diverged_on_every_instance():
    from plasticity_search.runs.inspect import _verdicts
    from plasticity_search.search.stats import paired_difference

    doc = {"baselines": [{"name": "fa"}, {"name": "bp"}], "compared_on": "final"}
    entry = {"paired": {"fa": paired_difference([0.5, 0.6], [np.nan, np.nan]),
                        "bp": paired_difference([0.5, np.nan], [0.4, 0.4])}}
    fa, bp = _verdicts(entry, doc)
    assert fa == "  vs fa: no comparison: fa DIVERGED on every final instance"
    assert bp.startswith("  vs bp: chosen rule DIVERGED; no comparison with bp")
    entry = {"paired": {"fa": paired_difference([0.5, 0.6, 0.7, 0.8], [0.1, 0.2, np.nan, 0.2]),
                        "bp": paired_difference([0.5, 0.6], [0.5, 0.6])}}
    fa, bp = _verdicts(entry, doc)
    assert fa.startswith("  vs fa: chosen rule BEATS fa on final (Δ +0.467 [")
    assert fa.endswith(", 3 paired instances; 1 where fa diverged left out)") and bp.endswith("2 paired instances)")
