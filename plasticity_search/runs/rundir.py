"""The run directory: creation, validation, atomic writes, the run record and the metrics log.

Layout (``runs/<name>-<YYYYmmdd-HHMMSS>/`` or ``--out DIR``)::

    run.json              the run record: schema, status (running | finished | failed | interrupted), error,
                          generations done, pid, wandb id
    config.yaml           the resolved config (every default written out); a resume compares against it
    metrics.jsonl         one JSON line per generation (the engine's metrics dict)
    checkpoints/          ckpt-<generation>.npz: full search state + PRNG key + JSON meta (no pickle); last 2 kept
    hall_of_fame.json     HallOfFame.to_json() (+ run info); written when the run finishes
    hall_of_fame.csv      the same table flattened, with a header
    plots/*.png           fitness.png, pareto.png, learning_curves.png, stdp_window.png (spiking rules)
    report.html           one self-contained page (images embedded)
    wandb/                the wandb run (offline-run-* in offline mode; ``wandb sync`` uploads it later)
    run.lock              held (flock) by the process that runs the search

Every file is written whole or not at all (temp file in the same directory + ``os.replace``), so a process killed
at any point leaves the last good state behind. A new run directory appears only once its ``run.json`` and
``config.yaml`` are in place (built under a temporary name, then renamed).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass

RUN_SCHEMA = "plasticity-search/run/v1"
RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
HOF_JSON = "hall_of_fame.json"
HOF_CSV = "hall_of_fame.csv"
GEN_JSON = "generalization.json"      # the chosen rule, FA and BP on held-out conditions (search.generalize)
CHECKPOINT_DIR = "checkpoints"
PLOTS_DIR = "plots"
REPORT_FILE = "report.html"
LOCK_FILE = "run.lock"


class RunDirError(ValueError):
    """A path that is not a usable run directory (one line, exit code 2 on the command line)."""


# ---------------------------------------------------------------------------------------------------------------
def atomic_write_bytes(path: str, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` whole or not at all: temp file in the same directory, fsync, ``os.replace``."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    if fsync:
        _fsync_dir(d)


def atomic_write_text(path: str, text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str, obj, *, fsync: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n", fsync=fsync)


def _fsync_dir(d: str) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def json_safe(x):
    """NaN/inf -> None, numpy scalars/arrays -> Python, recursively (JSON documents never hold NaN)."""
    import math

    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return json_safe(x.tolist())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


# ---------------------------------------------------------------------------------------------------------------
def default_run_dir(name: str, root: str = "runs", now: float | None = None) -> str:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3``... if that exists already)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = os.path.join(root, f"{_safe_name(name)}-{stamp}")
    path, k = base, 2
    while os.path.exists(path):
        path, k = f"{base}-{k}", k + 1
    return path


def _safe_name(name: str) -> str:
    s = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip("._")
    return s or "run"


def check_new_run_dir(path: str) -> None:
    """Raise :class:`RunDirError` unless ``path`` can become a new run directory (absent, or an empty dir)."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise RunDirError(f"--out '{path}' exists and is not a directory")
        if os.listdir(path):
            hint = " (it is a run: add --resume to continue it)" if is_run_dir(path) else ""
            raise RunDirError(f"--out '{path}' exists and is not empty{hint}")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise RunDirError(f"cannot create run directory '{path}': '{parent}' is not a directory")


def create_run_dir(path: str, files: dict[str, str]) -> None:
    """Create ``path`` holding ``files`` ({relative name: text}) in one step: built as a hidden sibling, renamed.

    ``path`` must be absent or an empty directory (see :func:`check_new_run_dir`).
    """
    check_new_run_dir(path)
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    _remove_stale_builds(parent, os.path.basename(path))
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        os.makedirs(tmp)
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        os.makedirs(os.path.join(tmp, CHECKPOINT_DIR))
        os.replace(tmp, path)   # an empty directory at `path` is replaced atomically too
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise RunDirError(f"--out '{path}' exists and is not empty") from None
        raise RunDirError(f"cannot create run directory '{path}': {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(parent)


def _remove_stale_builds(parent: str, base: str) -> None:
    """Remove the hidden half-built copies of run directory ``base`` (``.base.tmp-PID``) that a process killed while
    creating it left in ``parent`` (only those whose process is gone)."""
    prefix = f".{base}.tmp-"
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):]
        if not (name.startswith(prefix) and pid.isdigit()) or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue            # its process still runs (or the pid was reused): leave it
        except ProcessLookupError:
            pass
        except (OverflowError, OSError):      # e.g. PermissionError: another user's process
            continue
        p = os.path.join(parent, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)


def is_run_dir(path: str) -> bool:
    try:
        return read_run_record(path) is not None
    except RunDirError:
        return False


def open_run_dir(path: str) -> dict:
    """Validate ``path`` as a run directory; returns its run record. One-line :class:`RunDirError` otherwise."""
    if not os.path.exists(path):
        raise RunDirError(f"run directory '{path}' does not exist")
    if not os.path.isdir(path):
        raise RunDirError(f"'{path}' is not a run directory (not a directory)")
    rec = read_run_record(path)
    if rec is None:
        raise RunDirError(f"'{path}' is not a run directory (no {RUN_FILE}; runs are made by `plasticity-search run`)")
    if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
        raise RunDirError(f"run directory '{path}' has no {CONFIG_FILE}")
    return rec


def read_run_record(path: str) -> dict | None:
    from ..rules.documents import read_json_file
    from .validate import check_run_record

    p = os.path.join(path, RUN_FILE)
    if not os.path.lexists(p):
        return None
    try:
        rec = read_json_file(p, RUN_FILE, RunDirError)   # bounded: regular file, size, nesting
    except RunDirError as exc:
        raise RunDirError(f"'{path}' is not a run directory ({exc})") from None
    if not isinstance(rec, dict) or rec.get("schema") != RUN_SCHEMA:
        raise RunDirError(f"'{path}' is not a run directory ({RUN_FILE} has no schema '{RUN_SCHEMA}')")
    return check_run_record(rec, path)


def new_run_record(name: str, **extra) -> dict:
    from .. import __version__ as version

    return {"schema": RUN_SCHEMA, "name": name, "status": "running", "created": _now_iso(),
            "updated": _now_iso(), "finished": None, "generations_done": 0, "pid": os.getpid(),
            "host": socket.gethostname(), "version": version, **extra}


def write_run_record(path: str, rec: dict) -> None:
    rec = dict(rec, updated=_now_iso())
    atomic_write_json(os.path.join(path, RUN_FILE), rec)


def run_status(path: str, rec: dict) -> str:
    """'finished', 'running' (a live process holds the lock), 'failed' (stopped on an error, run.json's 'error'
    says which) or 'interrupted' (Ctrl-C, or killed)."""
    if rec.get("status") == "finished" and os.path.isfile(os.path.join(path, HOF_JSON)):
        return "finished"
    if lock_held(path):
        return "running"
    return "failed" if rec.get("status") == "failed" else "interrupted"


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------------------------------------------------
@dataclass
class RunLock:
    """An exclusive ``flock`` on ``run.lock``: one process runs a search in a directory at a time.

    The kernel drops the lock when the process dies (SIGKILL included), so a killed run can be resumed at once.
    """
    path: str
    fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        lock = os.path.join(self.path, LOCK_FILE)
        if os.path.lexists(lock) and (os.path.islink(lock) or not os.path.isfile(lock)):
            raise RunDirError(f"run directory '{self.path}': {LOCK_FILE} is not a regular file (remove it)")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise RunDirError(f"run directory '{self.path}': cannot open {LOCK_FILE}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunDirError(f"run directory '{self.path}' is in use by another plasticity-search process") from None
        self.fd = fd
        return self

    def write_pid(self) -> None:
        """Record this process's id in the lock file (for people; the lock itself is the flock). Called once the
        run is past its checks, so that a refused resume leaves the file as it was."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)   # closing drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def lock_held(path: str) -> bool:
    import fcntl

    p = os.path.join(path, LOCK_FILE)
    if not os.path.exists(p):
        return False
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------------
def append_metrics(path: str, metrics: dict) -> None:
    """Append one JSON line to ``metrics.jsonl`` (flushed; a torn last line is dropped by :func:`read_metrics`)."""
    line = json.dumps(json_safe(metrics), allow_nan=False) + "\n"
    with open(os.path.join(path, METRICS_FILE), "a") as f:
        f.write(line)
        f.flush()


def read_metrics(path: str) -> list[dict]:
    """The metrics lines of a run (a torn or foreign line is skipped)."""
    p = os.path.join(path, METRICS_FILE)
    out = []
    if not os.path.isfile(p):
        return out
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break   # torn last line of a killed process
            try:
                d = json.loads(line)
            except (ValueError, RecursionError):   # a damaged or foreign line (also one nested too deeply)
                continue
            if isinstance(d, dict) and isinstance(d.get("generation", 0), int):
                out.append(d)
    return out


def check_metrics(path: str, n: int) -> None:
    """A checkpoint that has seen ``n`` metrics lines resumes only if ``metrics.jsonl`` still begins with generations
    1..n (a line deleted or damaged since would leave a gap in the finished run's log)."""
    gens = [d.get("generation") for d in read_metrics(path)[:n]]
    if gens != list(range(1, n + 1)):
        first = next((i + 1 for i, g in enumerate(gens) if g != i + 1), len(gens) + 1)
        raise RunDirError(f"'{os.path.join(path, METRICS_FILE)}' is damaged: generation {first}'s line is missing "
                          f"or unreadable (the checkpoint being resumed has seen generations 1..{n})")


def sync_metrics(path: str) -> None:
    """fsync ``metrics.jsonl`` (before a checkpoint that has seen its lines is written)."""
    p = os.path.join(path, METRICS_FILE)
    if os.path.isfile(p):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def truncate_metrics(path: str, n: int) -> list[dict]:
    """Keep the first ``n`` metrics lines (those the checkpoint being resumed has seen); rewrite atomically."""
    lines = read_metrics(path)[:n]
    atomic_write_text(os.path.join(path, METRICS_FILE), "".join(json.dumps(d) + "\n" for d in lines))
    return lines


def cleanup_temp_files(path: str) -> None:
    """Remove temp files a killed process left behind (``.*.tmp-<pid>``)."""
    for d in (path, os.path.join(path, CHECKPOINT_DIR), os.path.join(path, PLOTS_DIR)):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith(".") and ".tmp-" in name:
                p = os.path.join(d, name)
                if os.path.isdir(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    try:
                        os.remove(p)
                    except OSError:
                        pass
