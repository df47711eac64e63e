"""Scale-out: the same results on 1 device, 8 fake devices, and two processes acting as two hosts."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "helpers", "dist_worker.py")


def _env(**kw):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.update({"PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}, **kw)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metrics(path):
    with open(path) as f:
        d = json.load(f)
    return d, {k: np.array(v, dtype=float) for k, v in d["metrics"].items()}


def test_eight_fake_devices_match_one(tmp_path):
    one, eight = tmp_path / "one.json", tmp_path / "eight.json"
    subprocess.run([sys.executable, WORKER, str(one)], env=_env(), check=True, timeout=300)
    subprocess.run([sys.executable, WORKER, str(eight)], check=True, timeout=300,
                   env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"))
    d1, m1 = _metrics(one)
    d8, m8 = _metrics(eight)
    assert d1["device_count"] == 1 and d8["device_count"] == 8
    for k in m1:
        np.testing.assert_allclose(m1[k], m8[k], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_two_processes_match_one(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    subprocess.run([sys.executable, WORKER, str(one)], env=_env(), check=True, timeout=300)
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, WORKER, str(two)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                       JAX_PROCESS_ID=str(i)))
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), outs
    d1, m1 = _metrics(one)
    d2, m2 = _metrics(two)
    assert d2["process_count"] == 2 and d2["device_count"] == 2
    for k in m1:
        np.testing.assert_allclose(m1[k], m2[k], rtol=1e-5, atol=1e-6, equal_nan=True)


SEARCH_WORKER = os.path.join(ROOT, "tests", "helpers", "search_worker.py")


def test_quickstart_search_on_eight_devices_matches_one(tmp_path):
    """The same seed gives the same hall of fame (formulas identical, fitness within 1e-5) on 1 and 8 devices."""
    one, eight = tmp_path / "one.json", tmp_path / "eight.json"
    subprocess.run([sys.executable, SEARCH_WORKER, str(one), "none"], env=_env(), check=True, timeout=600)
    subprocess.run([sys.executable, SEARCH_WORKER, str(eight), "8"], check=True, timeout=600,
                   env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"))
    with open(one) as f:
        h1 = json.load(f)
    with open(eight) as f:
        h8 = json.load(f)
    e1, e8 = h1["entries"], h8["entries"]
    assert [e["formula"] for e in e1] == [e["formula"] for e in e8]
    for a, b in zip(e1, e8):
        assert a["complexity"] == b["complexity"]
        np.testing.assert_allclose(a["fitness"], b["fitness"], rtol=1e-5, atol=1e-5)


# ---- `plasticity-search run` as two processes (two "hosts" on 127.0.0.1) -------------------------------------
QUICKSTART = os.path.join(ROOT, "search_spaces", "quickstart.yaml")
RUN_TINY = {"search": {"population": 8, "tournament": 2, "children": 4}, "network": {"hidden": [8]},
            "tasks": {"search": [{"task": "digits", "seeds": 1, "steps": 60}],
                      "select": [{"task": "digits", "seeds": 1, "steps": 60}],
                      "final": [{"task": "digits", "seeds": 2, "steps": 60}]},
            "hybrid": {"every": 2, "steps": 1, "population": 4}, "budget": {"generations": 3},
            "hall_of_fame": {"select_seeds": 2}, "generalization": {"at_end": False}}


def _run_config(path) -> str:
    import yaml

    with open(QUICKSTART) as f:
        cfg = yaml.safe_load(f)
    for k, v in RUN_TINY.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    cfg["name"] = "tiny2"
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return str(path)


def _cli(args, cwd, cache, **env):
    return [sys.executable, "-m", "plasticity_search.cli", "run", *args], dict(
        cwd=str(cwd), env=_env(JAX_COMPILATION_CACHE_DIR=str(cache), WANDB_MODE="disabled", **env))


def _two_hosts(args, cwds, cache, timeout=300):
    """Start the same `run` command as process 0 and 1 of one job; both must exit 0. Returns their outputs."""
    port = _free_port()
    procs = []
    for i, cwd in enumerate(cwds):
        cmd, kw = _cli(args + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                       cwd, cache)
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw))
    try:
        outs = [p.communicate(timeout=timeout)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs], outs


def _files(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


@pytest.mark.slow   # about 100 s on 2 cores (four CLI runs, two of them as two processes); the engine on two
#                      processes (test_two_processes_match_one) and the flags (below) stay in the default run
def test_run_on_two_processes_matches_one_and_only_process_0_writes(tmp_path):
    """`run` on two processes (gloo, 127.0.0.1) = the same run on one, also across a resume; process 1 runs in an
    empty directory of its own and leaves it empty (it never reads or writes the run directory)."""
    cfg, cache = _run_config(tmp_path / "tiny2.yaml"), tmp_path / "jax-cache"
    one = tmp_path / "one"
    cmd, kw = _cli([cfg, "--out", str(one), "--no-curves"], tmp_path, cache)
    subprocess.run(cmd, check=True, timeout=300, capture_output=True, **kw)

    host0, host1 = tmp_path / "host0", tmp_path / "host1"
    host0.mkdir()
    host1.mkdir()
    # two generations, then the run is resumed and extended to three (the start state comes from process 0)
    rcs, outs = _two_hosts([cfg, "--generations", "2", "--no-curves", "--wandb", "offline"], (host0, host1), cache)
    assert rcs == [0, 0], outs
    (run_dir,) = os.listdir(host0 / "runs")
    assert _files(host1) == []
    assert "process 1/2: 2 generations" in outs[1]
    rel = os.path.join("runs", run_dir)          # relative: process 1 has no such directory
    rcs, outs = _two_hosts([rel, "--resume", "--generations", "3", "--no-curves"], (host0, host1), cache)
    assert rcs == [0, 0], outs
    assert _files(host1) == []
    assert "process 1/2: 3 generations" in outs[1]
    assert any(f.startswith("wandb") for f in os.listdir(host0 / "runs" / run_dir))

    with open(one / "hall_of_fame.json") as f:
        h1 = json.load(f)
    with open(host0 / "runs" / run_dir / "hall_of_fame.json") as f:
        h2 = json.load(f)
    assert len(h1["entries"]) > 0
    assert [e["formula"] for e in h1["entries"]] == [e["formula"] for e in h2["entries"]]
    for a, b in zip(h1["entries"], h2["entries"]):
        assert a["complexity"] == b["complexity"]
        np.testing.assert_allclose(a["fitness"], b["fitness"], rtol=1e-5, atol=1e-5)
    with open(one / "metrics.jsonl") as f1, open(host0 / "runs" / run_dir / "metrics.jsonl") as f2:
        m1, m2 = [json.loads(x) for x in f1], [json.loads(x) for x in f2]
    assert [m["best_fitness"] for m in m1] == pytest.approx([m["best_fitness"] for m in m2], rel=1e-5, abs=1e-6)

    # a request process 0 refuses (the seed of a run cannot change on resume): both processes exit 2 with its line
    rcs, outs = _two_hosts([rel, "--resume", "--seed", "5", "--no-curves"], (host0, host1), cache)
    assert rcs == [2, 2], outs
    for out in outs:
        assert "config changed since the run started: --seed" in out, out
    assert _files(host1) == []


def test_run_multihost_bad_flags_exit_2(tmp_path):
    cfg = _run_config(tmp_path / "tiny2.yaml")
    for extra, needle in ((["--coordinator", "nohostport", "--num-processes", "2", "--process-id", "0"], "HOST:PORT"),
                          (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2"],
                           "process id"),
                          (["--coordinator", "127.0.0.1:1234", "--num-processes", "2"], "process's id"),
                          (["--num-processes", "3"], "coordinator"),
                          (["--process-id", "0"], "needs a coordinator address"),     # would run the job alone
                          (["--process-id", "1"], "needs a coordinator address")):
        cmd, kw = _cli([cfg, "--out", str(tmp_path / "never")] + extra, tmp_path, tmp_path / "cache")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
        assert r.returncode == 2, (extra, r.stderr)
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0], (extra, r.stderr)
        assert not (tmp_path / "never").exists()


def test_process_id_without_a_coordinator(monkeypatch):
    """--process-id with no coordinator would run the whole job on that host alone: refused, unless the count says
    it is one process; a launcher's JAX_PROCESS_ID=0 alone stays a single process (a review found it refused)."""
    from plasticity_search import distributed as dist

    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(var, raising=False)
    for args in ((None, None, 0), (None, None, 1), (None, 1, 1)):
        with pytest.raises(dist.DistributedError, match="needs a coordinator address"):
            dist.settings(*args)
    assert dist.settings(None, 1, 0) == (None, 1, 0)
    monkeypatch.setenv("JAX_PROCESS_ID", "0")
    assert dist.settings() == (None, None, 0)
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    with pytest.raises(dist.DistributedError, match="process id 1 needs"):
        dist.settings()
