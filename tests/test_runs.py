"""``plasticity-search run`` / ``inspect`` end to end with the real search engine (quickstart.yaml, tiny overrides).

One uninterrupted run (wandb offline, no network) and one run killed with SIGKILL after its first generation's
checkpoint, then resumed: both must end with the same hall of fame. The subprocesses share a JAX compilation cache
in a temporary directory so that only the first one pays for compiling.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import yaml

from plasticity_search import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "search_spaces", "quickstart.yaml")
GENERATIONS = 3

# quickstart's space, tiny everything else: a run takes seconds
TINY = {
    "search": {"population": 8, "tournament": 2, "children": 4},
    "network": {"hidden": [8]},
    "tasks": {"search": [{"task": "digits", "seeds": 1, "steps": 60}],
              "select": [{"task": "digits", "seeds": 1, "steps": 60}],
              "final": [{"task": "digits", "seeds": 2, "steps": 60}]},
    "hall_of_fame": {"select_seeds": 2},
    "generalization": {"seeds": 2, "conditions": [{"task": "yinyang", "steps": 60}]},
    "budget": {"generations": GENERATIONS},
}


def _text(path) -> str:
    with open(path) as f:
        return f.read()


def _json(path):
    return json.loads(_text(path))



def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _tiny_config(path) -> str:
    with open(QUICKSTART) as f:
        base = yaml.safe_load(f)
    cfg = _merge(base, TINY)
    cfg["name"] = "tiny"
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return str(path)


class _Listener:
    """A local TCP server standing in for every remote host (WANDB_BASE_URL and HTTP(S) proxies point here):
    any network call of an offline run lands in ``hits``."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hits, self._stop = [], False
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(1.0)
            try:
                self.hits.append(c.recv(200))
            except OSError:
                self.hits.append(b"?")
            c.close()

    def env(self) -> dict:
        u = self.url
        return {"WANDB_BASE_URL": u, "HTTP_PROXY": u, "HTTPS_PROXY": u, "http_proxy": u, "https_proxy": u,
                "ALL_PROXY": u, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


def _cmd(*args):
    return [sys.executable, "-m", "plasticity_search", *args]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax-cache")
    e = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1", WANDB_SILENT="true", MPLBACKEND="Agg",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    e.pop("WANDB_MODE", None)
    return e


@pytest.fixture(scope="module")
def finished(tmp_path_factory, env):
    """An uninterrupted run, wandb offline (from the default: no flag, no WANDB_MODE) behind the listener, with the
    learning curves of the top rules vs FA/BP baselines."""
    d = tmp_path_factory.mktemp("finished")
    cfg = _tiny_config(d / "tiny.yaml")
    out = d / "run"
    lis = _Listener()
    t0 = time.perf_counter()
    try:
        r = subprocess.run(_cmd("run", cfg, "--out", str(out)), cwd=d, env={**env, **lis.env()},
                           capture_output=True, text=True, timeout=300, check=False)
    finally:
        lis.close()
    assert r.returncode == 0, r.stderr
    return {"dir": str(out), "cfg": cfg, "stdout": r.stdout, "stderr": r.stderr, "hits": lis.hits,
            "wall": time.perf_counter() - t0}


def _hof_without_wall_time(path):
    with open(os.path.join(path, "hall_of_fame.json")) as f:
        d = json.load(f)
    d.get("info", {}).pop("wall_time_s", None)
    return d


# ---------------------------------------------------------------------------------------------------------------
def test_sigkill_then_resume_gives_the_same_hall_of_fame(finished, env, tmp_path, capsys):
    out = tmp_path / "run"
    p = subprocess.Popen(_cmd("run", finished["cfg"], "--out", str(out), "--wandb", "disabled", "--no-curves"),
                         cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "checkpoints" / "ckpt-00000001.npz"
    deadline = time.time() + 240
    while not first.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert first.exists(), p.stderr.read() if p.poll() is not None else "no checkpoint in time"
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    p.stderr.close()
    assert p.returncode == -signal.SIGKILL and not (out / "hall_of_fame.json").exists()

    # a killed run is a run: inspect shows its provisional hall of fame (from the newest checkpoint)
    assert cli.main(["inspect", str(out), "--json", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "interrupted" and doc["provisional"] and doc["entries"]

    r = subprocess.run(_cmd("run", str(out), "--resume", "--wandb", "disabled", "--no-curves"), cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    assert _hof_without_wall_time(out) == _hof_without_wall_time(finished["dir"])
    strip = lambda ms: [{k: v for k, v in m.items() if k not in ("wall_time_s", "candidates_per_s")} for m in ms]
    from plasticity_search.runs.rundir import read_metrics
    assert strip(read_metrics(str(out))) == strip(read_metrics(finished["dir"]))
    assert len(read_metrics(str(out))) == GENERATIONS


def test_run_directory_holds_everything(finished):
    from plasticity_search.search import load_config

    d = finished["dir"]
    names = set(os.listdir(d))
    assert {"config.yaml", "metrics.jsonl", "hall_of_fame.csv", "hall_of_fame.json", "checkpoints", "plots",
            "report.html", "run.json", "wandb", "generalization.json"} <= names
    assert not [n for n in names if ".tmp-" in n]
    # config.yaml: every default written out, loads back to the same config
    with open(os.path.join(d, "config.yaml")) as f:
        written = yaml.safe_load(f)
    cfg = load_config(finished["cfg"])
    assert written == json.loads(json.dumps(cfg.to_dict())) and load_config(written) == cfg
    assert {"hall_of_fame", "coefficients", "fitness"} <= set(written)
    # metrics.jsonl: one line per generation with the documented fields
    lines = [json.loads(x) for x in _text(os.path.join(d, "metrics.jsonl")).splitlines()]
    assert len(lines) == GENERATIONS
    assert {"generation", "best_fitness", "median_fitness", "fec_hit_rate", "candidates_per_s",
            "wall_time_s"} <= set(lines[0])
    # hall of fame
    hof = _json(os.path.join(d, "hall_of_fame.json"))
    e = hof["entries"][0]
    assert {"rank", "formula", "latex", "complexity", "metrics"} <= set(e)
    assert set(e["metrics"]) == {"search", "select", "final"}
    header = _text(os.path.join(d, "hall_of_fame.csv")).split('\n', 1)[0].strip().split(",")
    assert header[:4] == ["rank", "chosen", "complexity", "fitness"] and "formula" in header
    assert {"delta_vs_fa", "lo_vs_fa", "hi_vs_bp", "kind"} <= set(header)
    csv_text = _text(os.path.join(d, "hall_of_fame.csv"))
    assert "baseline fa" in csv_text and "baseline bp" in csv_text
    # checkpoints (the newest is the last generation), plots, report
    ck = sorted(os.listdir(os.path.join(d, "checkpoints")))
    assert ck[-1] == f"ckpt-{GENERATIONS:08d}.npz"
    assert {"fitness.png", "pareto.png", "learning_curves.png"} <= set(os.listdir(os.path.join(d, "plots")))
    curves = _json(os.path.join(d, "plots", "curves.json"))
    (series,) = [c["series"] for c in curves.values()]
    assert {"baseline FA", "baseline BP"} <= set(series) and any(k.startswith("rank 0") for k in series)
    html = _text(os.path.join(d, "report.html"))
    assert html.count("data:image/png;base64,") >= 3 and "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert e["formula"] in html or e["latex"] in html
    assert "Δ vs fa" in html and "baseline" in html and "Chosen rule vs fa" in html and "Generalization" in html
    # stdout: the hall of fame table
    assert "rank" in finished["stdout"] and "> chosen" in finished["stdout"]


def test_wandb_offline_run_without_network(finished):
    d = os.path.join(finished["dir"], "wandb")
    runs = [n for n in os.listdir(d) if n.startswith("offline-run-")]
    assert len(runs) == 1
    assert any(f.endswith(".wandb") for f in os.listdir(os.path.join(d, runs[0])))
    assert finished["hits"] == [], finished["hits"]
    assert "wandb sync" in finished["stdout"]


def test_inspect_table_and_json(finished, capsys):
    d = finished["dir"]
    assert cli.main(["inspect", d]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "finished" in lines[0] and "rank" in lines[1] and "complexity" in lines[1] and "fit.final" in lines[1]
    assert lines[3].startswith(">")
    assert cli.main(["inspect", d, "--json", "--top", "1", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    hof = _json(os.path.join(d, "hall_of_fame.json"))
    assert doc["status"] == "finished" and not doc["provisional"] and len(doc["entries"]) == 1
    e = doc["entries"][0]
    assert e["chosen"] and e["formula"] == hof["entries"][0]["formula"]
    assert set(e["fitness"]) == {"search", "select", "final"}
    # baselines as rows, scored on the same final instances; the chosen rule's paired differences to them
    assert [b["name"] for b in doc["baselines"]] == ["fa", "bp"]
    assert [b["feedback"] for b in doc["baselines"]] == ["fa", "bp"]
    assert all(isinstance(b["fitness"]["final"], float) for b in doc["baselines"])
    assert doc["compared_on"] == "final" and "select instances" in doc["choice"]
    for name, base in zip(("fa", "bp"), hof["baselines"]):
        p = e["paired"][name]
        mine = np.array(hof["entries"][0]["instances"], float)
        theirs = np.array(base["instances"], float)
        assert len(mine) == len(theirs) == 2 and p["n"] == 2          # 2 final seeds
        assert p["delta"] == pytest.approx(float(np.mean(mine - theirs)))
        assert p["lo"] <= p["delta"] <= p["hi"]
    assert any("vs fa: chosen rule" in ln for ln in lines) and any("(baseline bp" in ln for ln in lines)
    # the generalization matrix: the chosen rule, FA and BP on the held-out condition, paired differences
    (row,) = doc["generalization"]["rows"]
    assert row["task"] == "yinyang" and row["seeds"] == 2 and row["metric"] == "final_accuracy"
    assert {"rule", "fa", "bp", "vs_fa", "vs_bp"} <= set(row) and row["vs_fa"]["n"] == 2
    assert any(ln.startswith("generalization") for ln in lines)


def test_export_run_rank(finished, capsys, tmp_path):
    d = finished["dir"]
    hof = _json(os.path.join(d, "hall_of_fame.json"))
    assert cli.main(["export", f"{d}:0", "--to", "json", "-o", str(tmp_path / "rule.json")]) == 0
    rule = _json(tmp_path / "rule.json")
    assert rule["program"] == hof["entries"][0]["program"]
    last = len(hof["entries"]) - 1
    assert cli.main(["export", f"{d}:{last}", "--to", "numpy"]) == 0
    assert "def rule(" in capsys.readouterr().out
    assert cli.main(["export", f"{d}:99", "--to", "latex"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_a_runs_rule_seeds_another_search_exactly(finished, tmp_path, capsys):
    """A curriculum in two commands: a run's rule exported to a rule file seeds the next search (exact constants and
    its own instructions, which a formula might not fit into the space); a file that ran with another lr, or a
    spiking rule in a rate search, is refused in one line naming the seed."""
    from plasticity_search.rules import pad
    from plasticity_search.rules.resolve import load_rule_file
    from plasticity_search.search import Search, load_config
    from plasticity_search.search.config import ConfigError

    d = finished["dir"]
    rule_file = str(tmp_path / "rule.json")
    assert cli.main(["export", f"{d}:0", "--to", "json", "-o", rule_file]) == 0
    cfg_path = os.path.join(d, "config.yaml")
    cfg = load_config(cfg_path, {"search.seed_rules": [rule_file], "budget.generations": 1})
    rule = load_rule_file(rule_file)
    search = Search(cfg)
    state = search.init()
    want = pad(rule.program, rule.space, search.space)
    P = np.shape(state.strategy.population.term_on)[0]
    for got, exp in zip(state.strategy.population, want):      # the youngest member, to the bit
        np.testing.assert_array_equal(np.asarray(got)[P - 1], np.asarray(exp))
    lr = rule.defaults["lr"]
    with pytest.raises(ConfigError, match=r"search.seed_rules\[0\].*ran with lr .* this search runs with lr"):
        load_config(cfg_path, {"search.seed_rules": [rule_file], "network.lr": lr * 2})
    spiking_file = str(tmp_path / "stdp.json")
    assert cli.main(["export", "stdp_add", "--to", "json", "-o", spiking_file]) == 0
    with pytest.raises(ConfigError, match=r"search.seed_rules\[0\].*spiking rule"):
        load_config(cfg_path, {"search.seed_rules": [spiking_file]})
    with pytest.raises(ConfigError, match=r"search.seed_rules\[0\].*nope.json"):
        load_config(cfg_path, {"search.seed_rules": [str(tmp_path / "nope.json")]})


# ---------------------------------------------------------------------------------------------------------------
def _bad(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("case", ["missing config", "invalid yaml", "unknown key", "negative population",
                                  "missing run dir (inspect)", "missing run dir (resume)", "not a run dir",
                                  "negative generations"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with open(QUICKSTART) as f:
        quick = f.read()
    args = {
        "missing config": ["run", "nope.yaml"],
        "invalid yaml": ["run", _bad(tmp_path, "bad.yaml", "name: x\n  space: [1, 2\n")],
        "unknown key": ["run", _bad(tmp_path, "unk.yaml", quick + "\nfrobnicate: 1\n")],
        "negative population": ["run", _bad(tmp_path, "neg.yaml", quick.replace("  population: 48", "  population: -4",
                                                                                1))],
        "missing run dir (inspect)": ["inspect", "no_such_run"],
        "missing run dir (resume)": ["run", "no_such_run", "--resume"],
        "not a run dir": ["inspect", "."],
        "negative generations": ["run", QUICKSTART, "--generations", "-1"],
    }[case]
    before = sorted(os.listdir(tmp_path))
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    needle = {"missing config": "does not exist", "invalid yaml": "not valid YAML", "unknown key": "frobnicate",
              "negative population": "search.population", "missing run dir (inspect)": "does not exist",
              "missing run dir (resume)": "does not exist", "not a run dir": "not a run directory",
              "negative generations": "--generations"}[case]
    assert needle in err
    assert sorted(os.listdir(tmp_path)) == before            # nothing written (no runs/, no temp files)


def test_bad_input_in_a_real_process(tmp_path, env):
    r = subprocess.run(_cmd("run", str(tmp_path / "missing.yaml")), cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr
    assert os.listdir(tmp_path) == []


def test_resume_refuses_a_changed_config(finished, capsys, tmp_path):
    d = finished["dir"]
    snapshot = {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}
    changed = _bad(tmp_path, "changed.yaml", _text(finished["cfg"]).replace("population: 8", "population: 6"))
    for args, needle in ((["run", changed, "--out", d, "--resume"], "search.population"),
                         (["run", d, "--resume", "--seed", "7"], "--seed"),
                         (["run", d, "--resume", "--generations", "1"], "only extend"),
                         (["run", finished["cfg"], "--out", d], "--resume")):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)} == snapshot


@pytest.mark.parametrize("damage,needle", [
    (lambda a: a.update({"s.strategy.population.term_p": a["s.strategy.population.term_p"][:1]}), "term_p"),
    (lambda a: a.update({"s.strategy.population.term_p": np.full_like(a["s.strategy.population.term_p"], 10**6)}),
     "out of range"),
    (lambda a: a.update({"s.strategy.population.post_a": -a["s.strategy.population.post_a"] - 1}), "post_a"),
    (lambda a: a.update({"s.strategy.fitness": np.full_like(a["s.strategy.fitness"], np.inf)}), "+inf"),
    (lambda a: a.update({"s.strategy.fitness": a["s.strategy.fitness"][:2]}), "fitness"),
])
def test_a_damaged_checkpoint_state_is_refused_not_run(finished, damage, needle):
    """A checkpoint whose arrays read fine but cannot be this search's state (found by an audit: a cut population
    crashed half-way into the resume with an IndexError, indices out of range ran clamped, a +inf fitness won every
    tournament) is a one-line error before anything is written; the same state undamaged is accepted."""
    from plasticity_search.runs import checkpoint as ckpt
    from plasticity_search.runs import configs
    from plasticity_search.runs.runner import _state_from_checkpoint
    from plasticity_search.search import engine as eng

    arrays, meta = ckpt.load_latest(finished["dir"])
    search = eng.Search(configs.load(os.path.join(finished["dir"], "config.yaml")))
    _state_from_checkpoint(eng, finished["dir"], dict(arrays), meta, search=search)      # as written: fine
    bad = {k: np.array(v) for k, v in arrays.items()}
    damage(bad)
    with pytest.raises(ckpt.CheckpointError, match="cannot be resumed") as exc:
        _state_from_checkpoint(eng, finished["dir"], bad, meta, search=search)
    assert needle in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_the_printed_compare_command_reproduces_the_runs_final_comparison(finished, capsys):
    """The `compare` line printed after a run re-scores the chosen rule and the run's baselines on the run's final
    seeds, steps and network (an audit found it dropping steps, readout rules and the run's own baselines): the
    baselines' per-instance scores and the chosen rule's mean are the run's."""
    import shlex

    line = next(ln for ln in finished["stdout"].splitlines() if ln.startswith("compare"))
    words = shlex.split(line[len("compare"):].split("   (paired")[0])
    assert words[:2] == ["plasticity-search", "evaluate"] and words[2] == f"{finished['dir']}:0"
    assert words[3:5] == ["fa", "bp"] and "--steps" in words and "--seeds" in words
    assert cli.main([*words[1:], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    hof = _json(os.path.join(finished["dir"], "hall_of_fame.json"))
    by_rule = {r["rule"]: r["metrics"]["final_accuracy"] for r in doc["rules"]}
    for bl in hof["baselines"]:
        assert by_rule[bl["name"]]["values"] == bl["instances"], bl["name"]
    chosen = hof["entries"][0]["metrics"]["final"]["final_accuracy"]
    assert abs(by_rule[doc["reference"]]["mean"] - chosen) < 1e-6


def _copy_run(finished, tmp_path) -> str:
    import shutil

    d = str(tmp_path / "copy")
    shutil.copytree(finished["dir"], d, ignore=shutil.ignore_patterns("wandb"))
    return d


def test_an_extension_killed_after_its_config_was_rewritten_still_runs(finished, tmp_path, capsys):
    """`run D --resume --generations N` rewrites config.yaml, then run.json; killed in between (found by an audit
    with a real SIGKILL), the run said "already finished" to every resume but one past N. The budget it finished
    with is run.json's: the extension runs, to exactly N."""
    d = _copy_run(finished, tmp_path)
    cfg = os.path.join(d, "config.yaml")
    text = _text(cfg)
    assert text.count(f"generations: {GENERATIONS}") == 1
    with open(cfg, "w") as f:
        f.write(text.replace(f"generations: {GENERATIONS}", f"generations: {GENERATIONS + 1}"))
    assert cli.main(["run", d, "--resume", "--wandb", "disabled", "--no-curves"]) == 0
    capsys.readouterr()
    rec = _json(os.path.join(d, "run.json"))
    assert rec["status"] == "finished" and rec["generations_done"] == rec["generations"] == GENERATIONS + 1
    from plasticity_search.runs.rundir import read_metrics
    assert [m["generation"] for m in read_metrics(d)] == list(range(1, GENERATIONS + 2))
    assert cli.main(["run", d, "--resume", "--wandb", "disabled", "--no-curves"]) == 0
    assert "already finished" in capsys.readouterr().err


def test_a_resumed_run_keeps_its_wandb_mode(finished, tmp_path, monkeypatch):
    from plasticity_search.runs.runner import plan_run

    d = _copy_run(finished, tmp_path)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert plan_run(d, resume=True, generations=GENERATIONS + 1).wandb_mode == "offline"     # as it ran
    rec = _json(os.path.join(d, "run.json"))
    rec["wandb"]["mode"] = "disabled"
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump(rec, f)
    assert plan_run(d, resume=True, generations=GENERATIONS + 1).wandb_mode == "disabled"
    assert plan_run(d, resume=True, generations=GENERATIONS + 1, wandb="offline").wandb_mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert plan_run(d, resume=True, generations=GENERATIONS + 1).wandb_mode == "offline"


def test_a_damaged_newest_checkpoint_is_named_when_passed_over(finished, tmp_path):
    """An audit zeroed the newest checkpoint: the resume went back to the one before it without a word."""
    from plasticity_search.runs import checkpoint as ckpt

    d = _copy_run(finished, tmp_path)
    gens = ckpt.list_generations(d)
    assert len(gens) == 2
    newest = ckpt.checkpoint_path(d, gens[-1])
    with open(newest, "r+b") as f:
        f.write(b"\0" * os.path.getsize(newest))
    seen = []
    arrays, meta = ckpt.load_latest(d, on_skip=lambda path, why: seen.append((path, why)))
    assert meta["generation"] == gens[0]
    assert seen == [(newest, "not a checkpoint (not an npz archive)")]
    os.remove(ckpt.checkpoint_path(d, gens[0]))
    seen.clear()
    with pytest.raises(ckpt.CheckpointError, match="no readable checkpoint in .*not an npz archive"):
        ckpt.load_latest(d, on_skip=lambda path, why: seen.append(path))
    assert seen == []       # nothing was passed over for an older one


@pytest.mark.parametrize("stop", ["patience", "target_fitness", "time_limit"])
def test_a_run_stopped_early_is_not_extended(finished, tmp_path, stop, capsys):
    """An audit saw `--resume --generations 110` on a run stopped by patience at 85 re-finalize it and stop again:
    the stop condition still holds, so the request is refused in one line (a run stopped by its budget extends),
    also when the run was killed or failed while finalizing (run.json records stopped_by before the finalize)."""
    from plasticity_search.runs.runner import RunError, plan_run

    d = _copy_run(finished, tmp_path)
    assert plan_run(d, resume=True, generations=GENERATIONS + 1).extend
    _edit_json(os.path.join(d, "run.json"), lambda r: r.update(stopped_by=stop))
    with pytest.raises(RunError, match=f"the run stopped by {stop} after {GENERATIONS} generations, so a larger "):
        plan_run(d, resume=True, generations=GENERATIONS + 1)
    assert plan_run(d, resume=True).already_finished       # the same budget: shown as it is, without the hint
    assert cli.main(["run", d, "--resume", "--wandb", "disabled"]) == 0
    assert f"stopped by {stop}: start a new run to search further" in capsys.readouterr().err
    for status in ("running", "failed"):            # killed (a dead pid) or failed in the finalize
        _edit_json(os.path.join(d, "run.json"), lambda r: r.update(status=status, pid=2 ** 22 + 1))
        with pytest.raises(RunError, match=f"the run stopped by {stop} after"):
            plan_run(d, resume=True, generations=GENERATIONS + 1)


def test_a_resumed_run_keeps_its_learning_curves_choice(finished, tmp_path):
    """Found by a resume audit: --no-curves was not recorded, so the printed `run DIR --resume` of a run started
    with it drew learning curves and weight plots the uninterrupted run does not have."""
    from plasticity_search.runs.runner import plan_run

    d = _copy_run(finished, tmp_path)
    assert _json(os.path.join(d, "run.json"))["curves"] is True       # the fixture's run drew them
    assert plan_run(d, resume=True, generations=GENERATIONS + 1).curves
    assert not plan_run(d, resume=True, generations=GENERATIONS + 1, curves=False).curves
    _edit_json(os.path.join(d, "run.json"), lambda r: r.update(curves=False))      # started with --no-curves
    assert not plan_run(d, resume=True, generations=GENERATIONS + 1).curves
    _edit_json(os.path.join(d, "run.json"), lambda r: r.pop("curves"))             # an older run.json: as then
    assert plan_run(d, resume=True, generations=GENERATIONS + 1).curves
    _edit_json(os.path.join(d, "run.json"), lambda r: r.update(curves="no"))
    with pytest.raises(Exception, match="'curves' has the wrong type"):
        plan_run(d, resume=True, generations=GENERATIONS + 1)


@pytest.mark.parametrize("damage,needle", [
    ("metrics line deleted", "generation 2's line is missing"),
    ("metrics line garbled", "generation 2's line is missing"),
    ("checkpoint is a directory", "is a directory"),
])
def test_a_damaged_run_directory_is_refused_before_a_resume_writes(finished, tmp_path, capsys, damage, needle):
    """Found by a kill/resume audit: a deleted metrics line was dropped silently (the finished log had a gap), and a
    directory in a checkpoint's place failed only when the run came to write it, after run.json said running."""
    from plasticity_search.runs import checkpoint as ckpt

    d = _copy_run(finished, tmp_path)
    lines = _text(os.path.join(d, "metrics.jsonl")).splitlines(keepends=True)
    if damage == "metrics line deleted":
        lines.pop(1)
    elif damage == "metrics line garbled":
        lines[1] = "{not json\n"
    else:
        os.makedirs(ckpt.checkpoint_path(d, max(ckpt.list_generations(d)) + 1))
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        f.writelines(lines)
    snapshot = {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}
    assert cli.main(["run", d, "--resume", "--generations", str(GENERATIONS + 1), "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)} == snapshot


def test_a_run_that_fails_mid_way_says_so_and_resumes(finished, tmp_path, capsys, monkeypatch):
    """An error in a generation (here a stand-in for a device running out of memory) used to leave run.json at
    "running", read as "interrupted". The run record now says "failed" with the error's first line; inspect and
    the report show it; a resume continues from the newest checkpoint and clears it."""
    from plasticity_search.search import engine

    d = _copy_run(finished, tmp_path)
    calls = {"n": 0}
    step = engine.Search.steps

    def failing(self, state):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("RESOURCE_EXHAUSTED: out of memory while trying to allocate 17 GiB\nmore detail")
        return step(self, state)

    monkeypatch.setattr(engine.Search, "steps", failing)
    with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):
        cli.main(["run", d, "--resume", "--generations", str(GENERATIONS + 3), "--wandb", "disabled",
                  "--no-curves"])
    rec = _json(os.path.join(d, "run.json"))
    assert rec["status"] == "failed"
    assert rec["error"] == "RuntimeError: RESOURCE_EXHAUSTED: out of memory while trying to allocate 17 GiB"
    capsys.readouterr()
    assert cli.main(["inspect", d, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "[failed, generation" in out and "stopped on an error: RuntimeError: RESOURCE_EXHAUSTED" in out
    assert cli.main(["inspect", d, "--json", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "failed" and doc["error"].startswith("RuntimeError: RESOURCE_EXHAUSTED")

    monkeypatch.setattr(engine.Search, "steps", step)
    assert cli.main(["run", d, "--resume", "--wandb", "disabled", "--no-curves"]) == 0
    rec = _json(os.path.join(d, "run.json"))
    assert rec["status"] == "finished" and rec.get("error") is None
    assert rec["generations_done"] == GENERATIONS + 3
    from plasticity_search.runs.rundir import read_metrics
    assert [m["generation"] for m in read_metrics(d)] == list(range(1, GENERATIONS + 4))


def _edit_json(path, fn):
    d = _json(path)
    fn(d)
    with open(path, "w") as f:
        json.dump(d, f)


@pytest.mark.parametrize("damage,needle", [
    ("paired not a mapping", "entries[0].paired.fa must be a mapping, got str"),
    ("paired delta a string", "entries[0].paired.fa.delta has the wrong type (str)"),
    ("generalization rule a string", "generalization.json': rows[0].rule has the wrong type (str)"),
    ("generalization vs_fa a string", "generalization.json': rows[0].vs_fa must be a mapping, got str"),
])
def test_damaged_nested_fields_are_one_line_before_inspect_writes(finished, tmp_path, capsys, damage, needle):
    """Found by an input audit: only top-level types were checked, so a comparison or a generalization row of the
    wrong type was a traceback in inspect (after plots and report.html had been redrawn) or an error that named
    no file."""
    d = _copy_run(finished, tmp_path)
    hof, gen = os.path.join(d, "hall_of_fame.json"), os.path.join(d, "generalization.json")
    if damage == "paired not a mapping":
        _edit_json(hof, lambda h: h["entries"][0].__setitem__("paired", {"fa": "x"}))
    elif damage == "paired delta a string":
        _edit_json(hof, lambda h: h["entries"][0]["paired"]["fa"].__setitem__("delta", "big"))
    elif damage == "generalization rule a string":
        _edit_json(gen, lambda g: g["rows"][0].__setitem__("rule", "x"))
    else:
        _edit_json(gen, lambda g: g["rows"][0].__setitem__("vs_fa", "x"))
    snapshot = {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}
    for argv in (["inspect", d], ["inspect", d, "--json"], ["export", f"{d}:0", "--to", "sympy"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)} == snapshot


def test_an_edited_formula_text_never_labels_another_rule(finished, tmp_path, capsys):
    """Found by an input audit: the 'formula' text of hall_of_fame.json and of a rule file was shown as is while
    the program was computed, so an edited text labelled one rule's figures with another. Readers now show the
    program's formula."""
    d = _copy_run(finished, tmp_path)
    hof = os.path.join(d, "hall_of_fame.json")
    true_formula = _json(hof)["entries"][0]["formula"]
    assert true_formula != "y*x"
    _edit_json(hof, lambda h: h["entries"][0].update(formula="y*x", latex=r"\Delta w = x y"))
    _edit_json(os.path.join(d, "generalization.json"), lambda g: g.update(rule="y*x"))
    assert cli.main(["inspect", d, "--json", "--no-plots"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["entries"][0]["formula"] == true_formula and doc["entries"][0]["latex"] != r"\Delta w = x y"
    # the generalization report scores the chosen rule: its label is the chosen program's formula too
    assert doc["best"] == 0 and doc["generalization"]["rule"] == true_formula
    rule_file = str(tmp_path / "rule.json")
    assert cli.main(["export", f"{d}:0", "--to", "json", "-o", rule_file]) == 0
    capsys.readouterr()
    _edit_json(rule_file, lambda r: r.update(formula="y*x"))
    from plasticity_search.rules.resolve import load_rule_file
    assert load_rule_file(rule_file).formula == true_formula


def test_a_checkpoint_array_of_the_wrong_dtype_is_refused_before_a_resume_writes(finished, tmp_path, capsys):
    """Found by an input audit: op indices stored as floats passed the range checks and reached the interpreter's
    selects (a traceback), after run.json, config.yaml and metrics.jsonl had been rewritten."""
    from plasticity_search.runs import checkpoint as ckpt

    d = _copy_run(finished, tmp_path)
    os.remove(os.path.join(d, "hall_of_fame.json"))
    path = ckpt.checkpoint_path(d, max(ckpt.list_generations(d)))
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if k.endswith("population.post_op"))
    arrays[key] = arrays[key].astype(np.float64)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    snapshot = {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}
    assert cli.main(["run", d, "--resume", "--generations", str(GENERATIONS + 1), "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "post_op: has dtype" in err, err
    assert {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)} == snapshot


def _set_generation(meta, g):
    tree = meta["state_meta"]["tree"]
    tree["items"][tree["keys"].index("generation")]["v"] = g


@pytest.mark.parametrize("damage,needle", [
    ("fec +inf", "the fec cache holds NaN or +inf"),
    ("select shorter", "select_keys (%d) and select_vals (%d) differ in length"),
    ("generation", "its search state is at generation %d, the file says %d"),
    ("counter", "strategy.counter must be a count >= 0"),
    ("birth", "strategy.birth must lie in [0, counter"),
])
def test_a_checkpoint_with_damaged_caches_or_counts_is_refused(finished, tmp_path, capsys, damage, needle):
    """Found by a resume audit: an +inf in the fitness caches (which then read 1e9 as the best select fitness), a
    cache cut short (zip dropped the rest), a generation other than the file's (metrics.jsonl then skipped
    generations) and birth numbers out of range were resumed as if whole."""
    from plasticity_search.runs import checkpoint as ckpt

    d = _copy_run(finished, tmp_path)
    os.remove(os.path.join(d, "hall_of_fame.json"))
    path = ckpt.checkpoint_path(d, max(ckpt.list_generations(d)))
    with open(path, "rb") as f:
        arrays, meta = ckpt.decode(f.read())
    if damage == "fec +inf":
        arrays["s.fec_vals"][0] = np.inf
    elif damage == "select shorter":
        n = len(arrays["s.select_vals"])
        arrays["s.select_vals"] = arrays["s.select_vals"][:-1]
        needle = needle % (n, n - 1)
    elif damage == "generation":
        _set_generation(meta, meta["generation"] + 5)
        needle = needle % (meta["generation"] + 5, meta["generation"])
    elif damage == "counter":
        arrays["s.strategy.counter"] = np.asarray(-7, np.int32)
    else:
        arrays["s.strategy.birth"][0] = 10 ** 9
    with open(path, "wb") as f:
        f.write(ckpt.encode(arrays, meta))
    snapshot = {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}
    assert cli.main(["run", d, "--resume", "--generations", str(GENERATIONS + 1), "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)} == snapshot


def test_a_config_edited_after_the_run_is_refused_where_results_are_read_with_it(finished, tmp_path, capsys):
    """config.yaml edited after the run (here the network's learning rate): `generalize RUN:RANK` (which runs the
    comparison on the run's network and tasks) and a running run's provisional hall of fame (programs decoded in
    the config's space) refuse it in one line, as a resume does; unedited, both read it."""
    from plasticity_search.runs.configs import load_run_config
    from plasticity_search.runs.results import provisional_hall_of_fame
    from plasticity_search.runs.rundir import RunDirError

    d = _copy_run(finished, tmp_path)
    assert load_run_config(d).network["lr"] == 0.05
    assert provisional_hall_of_fame(d)["entries"]
    path = os.path.join(d, "config.yaml")
    text = _text(path)
    assert "lr: 0.05" in text
    with open(path, "w") as f:
        f.write(text.replace("lr: 0.05", "lr: 0.5", 1))
    with pytest.raises(RunDirError, match="was edited after the run started"):
        provisional_hall_of_fame(d)
    capsys.readouterr()
    assert cli.main(["generalize", f"{d}:0", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was edited after the run started" in err[0]
    # runs side by side: the config differences would be the edited file's (the run's own table still shows)
    other = _copy_run(finished, tmp_path / "other")
    assert cli.main(["inspect", d, other, "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was edited after the run started" in err[0]
    assert cli.main(["inspect", d, "--no-plots"]) == 0
