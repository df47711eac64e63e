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
