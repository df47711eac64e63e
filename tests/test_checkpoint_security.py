"""A run directory is untrusted input: a crafted checkpoint must not run code.

A real run is made once (tiny PCA search, 2 generations), then its newest checkpoint's metadata is rewritten to name
callables instead of state classes, the exact payload of issue 17 (``plasticity_search.runs.rundir:os.system`` with
a field ``command``) and variants through other modules and attribute paths. ``inspect`` and ``run --resume`` must
refuse each with one stderr line and exit 2, and the marker file the payload would create must not exist.
"""
import contextlib
import io
import json

import numpy as np
import pytest
import yaml

from plasticity_search import cli
from plasticity_search.runs import checkpoint as ckpt
from plasticity_search.search import treeio

PCA = {"task": "pca", "seeds": 1, "steps": 40}
CONFIG = {
    "name": "sec",
    "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 2, "n_pre": 1, "n_terms": 2},
    "search": {"population": 4, "tournament": 2, "children": 2},
    "tasks": {"search": [PCA], "select": [PCA], "final": [PCA]},
    "budget": {"generations": 2},
}

PAYLOAD_CLASSES = [
    "plasticity_search.runs.rundir:os.system",          # the exact payload of the issue
    "plasticity_search.cli:os.system",
    "plasticity_search.search.engine:np.lib.format.os.system",
    "plasticity_search.runs.runner:subprocess.Popen",
    "plasticity_search.rules.program:Program.__init__.__globals__",
    "optax:os.system",
    "evosax.algorithms:os.system",
    "flax.struct:dataclasses.sys.modules",
    "os:system",
    "builtins:eval",
    "subprocess:run",
    "plasticity_search.runs.rundir:atomic_write_bytes",   # a real function of ours, not a record type
]


def _main(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("sec")
    cfg = base / "sec.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = base / "run"
    code, _, err = _main(["run", str(cfg), "--out", str(out), "--wandb", "disabled", "--no-curves"])
    assert code == 0, err
    return out


def _tamper(run_dir, cls_name: str, marker: str, kind: str = "namedtuple"):
    gen = ckpt.list_generations(str(run_dir))[-1]
    arrays, meta = ckpt.decode(ckpt.checkpoint_path(str(run_dir), gen))
    meta["state_meta"]["tree"]["items"][2] = {
        "t": kind, "cls": cls_name, "fields": {"command": {"t": "str", "v": f"touch {marker}"}}}
    with open(ckpt.checkpoint_path(str(run_dir), gen), "wb") as f:
        f.write(ckpt.encode(arrays, meta))
    return gen


def test_strategy_slot_is_where_the_payload_goes(run_dir):
    """The tamper above targets the strategy state: check the real tree has it at that position."""
    arrays, meta = ckpt.load_latest(str(run_dir))
    tree = meta["state_meta"]["tree"]
    assert tree["t"] == "dict" and tree["keys"][2] == "strategy"
    assert tree["items"][2]["cls"] in treeio.allowed_classes()


@pytest.mark.parametrize("cls_name", PAYLOAD_CLASSES)
@pytest.mark.parametrize("kind", ["namedtuple", "dataclass"])
def test_crafted_checkpoint_runs_nothing(run_dir, tmp_path, cls_name, kind):
    marker = tmp_path / "PWNED"
    # a copy per case: each case tampers with a pristine run
    import shutil
    rd = tmp_path / "run"
    shutil.copytree(run_dir, rd)
    _tamper(rd, cls_name, marker, kind)
    rec = json.loads((rd / "run.json").read_text())
    rec["status"] = "running"           # as a killed run leaves it: inspect then reads the checkpoint
    (rd / "run.json").write_text(json.dumps(rec))
    (rd / "hall_of_fame.json").unlink()
    for argv in (["inspect", str(rd)], ["run", str(rd), "--resume", "--generations", "3", "--no-curves",
                                       "--wandb", "disabled"]):
        code, _, err = _main(argv)
        assert not marker.exists(), f"{cls_name} executed a command via {argv[0]}"
        assert code == 2, (argv, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert "not allowed" in err or "damaged" in err, err


def test_allowed_table_holds_only_record_types():
    table = treeio.allowed_classes()
    assert "plasticity_search.rules.program:Program" in table
    assert "plasticity_search.search.regevo:RegEvoState" in table
    assert any(k.startswith("evosax.") and k.endswith(":State") for k in table)
    assert any(k.startswith("optax.") for k in table)
    for name, cls in table.items():
        assert isinstance(cls, type) and treeio._is_record_type(cls), name
        assert f"{cls.__module__}:{cls.__qualname__}" == name


def test_unlisted_class_is_refused_on_save():
    from typing import NamedTuple

    class Rogue(NamedTuple):
        a: int

    with pytest.raises(TypeError, match="allowed_classes"):
        treeio.flatten({"x": Rogue(1)}, "s", {})


def test_real_state_round_trips_through_the_table(run_dir):
    from plasticity_search.search import state_from_tree, state_to_tree
    arrays, meta = ckpt.load_latest(str(run_dir))
    state = state_from_tree(arrays, meta["state_meta"])
    a2, m2 = state_to_tree(state)
    assert m2 == meta["state_meta"]
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], a2[k])
    assert json.dumps(m2)


# ---- tampered sizes, links and texts (an audit of 2026-11-29): one line, exit 2, nothing written ---------------
def _copy(run_dir, tmp_path):
    import shutil
    rd = tmp_path / "run"
    shutil.copytree(run_dir, rd)
    return rd


def _refused(argv, needle):
    code, _, err = _main(argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert needle in lines[-1], err
    return lines


def _resume(rd):
    return ["run", str(rd), "--resume", "--generations", "3", "--no-curves", "--wandb", "disabled"]


def _rewrite_checkpoints(rd, edit):
    """Apply ``edit(meta)`` to every checkpoint of the run (so that none is left to fall back to)."""
    for g in ckpt.list_generations(str(rd)):
        arrays, meta = ckpt.decode(ckpt.checkpoint_path(str(rd), g))
        edit(meta)
        with open(ckpt.checkpoint_path(str(rd), g), "wb") as f:
            f.write(ckpt.encode(arrays, meta))     # encode checks names and dtypes only


def _tree_item(tree, key):
    return tree["items"][tree["keys"].index(key)]


@pytest.mark.parametrize("n_metrics", [0, 10**9])
def test_a_checkpoint_whose_metrics_count_is_not_its_generation_is_refused(run_dir, tmp_path, n_metrics):
    """n_metrics = 0 made a resume delete the run's metrics lines; 10**9 built a list of a billion numbers."""
    rd = _copy(run_dir, tmp_path)
    before = (rd / "metrics.jsonl").read_bytes()
    _rewrite_checkpoints(rd, lambda m: m.update(n_metrics=n_metrics))
    _refused(_resume(rd), "differs from its generation")
    assert (rd / "metrics.jsonl").read_bytes() == before


def test_an_archive_size_other_than_the_configs_is_refused(run_dir, tmp_path):
    """A checkpoint's archive of 10**12 slots per level asked numpy for 7 TiB (a traceback)."""
    rd = _copy(run_dir, tmp_path)

    def edit(meta):
        arch = _tree_item(meta["state_meta"]["tree"], "archive")
        per = arch["items"][arch["keys"].index("per")]
        per["v"] = 10**12
    _rewrite_checkpoints(rd, edit)
    _refused(_resume(rd), "slots per complexity level")


def test_a_checkpoints_link_into_another_run_is_refused(run_dir, tmp_path):
    """A resume through a symlinked checkpoints directory wrote into and pruned another run's checkpoints."""
    import os
    import shutil
    rd = _copy(run_dir, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    listing = sorted(os.listdir(other / "checkpoints"))
    shutil.rmtree(rd / "checkpoints")
    os.symlink(other / "checkpoints", rd / "checkpoints")
    _refused(_resume(rd), "is a symbolic link")
    assert sorted(os.listdir(other / "checkpoints")) == listing


def test_control_characters_in_a_run_record_are_refused(run_dir, tmp_path):
    """An error text or a baseline name with a terminal escape sequence was printed raw by inspect."""
    rd = _copy(run_dir, tmp_path)
    rec = json.loads((rd / "run.json").read_text())
    rec.update(status="failed", error="line1\nline2\u001b[2J")
    (rd / "run.json").write_text(json.dumps(rec))
    _refused(["inspect", str(rd), "--no-plots"], "'error' has control characters")
    rd2 = _copy(run_dir, tmp_path / "b")
    hof = json.loads((rd2 / "hall_of_fame.json").read_text())
    hof["baselines"][0]["name"] = "\u001b[31mEVIL"
    (rd2 / "hall_of_fame.json").write_text(json.dumps(hof))
    _refused(["inspect", str(rd2), "--no-plots"], "control characters")
    # a tab or a newline is no escape sequence: an error text with a tab, a name with a tab read as before, and
    # only the error's first line is shown
    rd3 = _copy(run_dir, tmp_path / "c")
    rec = json.loads((rd3 / "run.json").read_text())
    rec.update(name="my\trun", status="failed", error="ValueError: bad\tvalue\nsecond line")
    (rd3 / "run.json").write_text(json.dumps(rec))
    code, out, err = _main(["inspect", str(rd3), "--no-plots"])
    assert code == 0, err
    assert "stopped on an error: ValueError: bad\tvalue  (continue with" in out and "second line" not in out


def test_an_integer_no_float_can_hold_is_refused(run_dir, tmp_path):
    """10**400 in a hall of fame (or a rule file) ended in OverflowError tracebacks."""
    rd = _copy(run_dir, tmp_path)
    text = (rd / "hall_of_fame.json").read_text()
    hof = json.loads(text)
    hof["entries"][0]["metrics"]["final"]["fitness"] = 10**400
    (rd / "hall_of_fame.json").write_text(json.dumps(hof))
    _refused(["inspect", str(rd), "--no-plots"], "digits")
    _refused(["export", f"{rd}:0", "--to", "latex"], "digits")


@pytest.mark.parametrize("counter, value", [("stop_best", np.nan), ("elapsed_s", np.inf), ("elapsed_s", -5.0)])
def test_a_counter_that_is_no_count_is_refused(run_dir, tmp_path, counter, value):
    """The early-stop best, the wall time: NaN or +inf (or a negative time) in a checkpoint is refused like a NaN
    fitness (a NaN best would never improve: patience would stop the resumed run at once)."""
    rd = _copy(run_dir, tmp_path)
    for g in ckpt.list_generations(str(rd)):
        arrays, meta = ckpt.decode(ckpt.checkpoint_path(str(rd), g))
        name = f"s.counters.{counter}"
        if name not in arrays:      # the early-stop best exists once a select fitness was finite
            arrays[name] = np.asarray(0.0)
            counters = _tree_item(meta["state_meta"]["tree"], "counters")
            counters["keys"].append(counter)
            counters["items"].append({"t": "float"})
        arrays[name] = np.asarray(value, np.asarray(arrays[name]).dtype)
        with open(ckpt.checkpoint_path(str(rd), g), "wb") as f:
            f.write(ckpt.encode(arrays, meta))     # encode checks names and dtypes only
    _refused(_resume(rd), f"counter '{counter}'")


@pytest.mark.parametrize("edit, needle", [
    (lambda h: h["entries"][0].update(rank=-3), "rank must be >= 0"),
    (lambda h: h["entries"][0].update(complexity=-7), "complexity must be >= 0"),
    (lambda h: h.update(eps=-1), "'eps' must be >= 0"),
])
def test_negative_ranks_complexities_and_eps_are_refused(run_dir, tmp_path, edit, needle):
    rd = _copy(run_dir, tmp_path)
    hof = json.loads((rd / "hall_of_fame.json").read_text())
    edit(hof)
    (rd / "hall_of_fame.json").write_text(json.dumps(hof))
    _refused(["inspect", str(rd), "--no-plots"], needle)
