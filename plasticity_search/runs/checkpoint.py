"""Checkpoints: the whole search state (strategy state, population, FEC cache, hall of fame, PRNG key) per generation.

One checkpoint is one file, ``checkpoints/ckpt-<generation:08d>.npz``: the arrays of
``plasticity_search.search.engine.state_to_tree`` plus one entry ``__meta__`` holding UTF-8 JSON::

    {"schema": "plasticity-search/checkpoint/v1", "generation": 5, "n_metrics": 5,
     "config_sha256": "...", "state_meta": {...}, "time": "..."}

No pickle anywhere: object arrays are refused on save and ``np.load(..., allow_pickle=False)`` on load. The file is
written to a temp name, fsynced and renamed (:func:`~.rundir.atomic_write_bytes`), so a process killed at any point
leaves the previous checkpoint intact; the newest readable one wins. The last ``keep`` checkpoints are kept.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time

import numpy as np

from ..errors import first_line
from .rundir import CHECKPOINT_DIR, RunDirError, atomic_write_bytes

CKPT_SCHEMA = "plasticity-search/checkpoint/v1"
META_KEY = "__meta__"
_NAME = re.compile(r"^ckpt-(\d{8})\.npz$")


class CheckpointError(RunDirError):
    """A checkpoint that cannot be written or read back."""


def config_hash(cfg_dict: dict) -> str:
    return hashlib.sha256(json.dumps(cfg_dict, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_path(run_dir: str, generation: int) -> str:
    return os.path.join(run_dir, CHECKPOINT_DIR, f"ckpt-{generation:08d}.npz")


def encode(arrays: dict, meta: dict) -> bytes:
    """The npz bytes of a checkpoint (arrays + JSON meta)."""
    out = {}
    for k, v in arrays.items():
        if not isinstance(k, str) or not k or k == META_KEY:
            raise CheckpointError(f"bad checkpoint array name {k!r}")
        a = np.asarray(v)
        if a.dtype == object:
            raise CheckpointError(f"checkpoint array '{k}' has dtype object (would need pickle)")
        out[k] = a
    out[META_KEY] = np.frombuffer(json.dumps(meta, allow_nan=True).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **out)
    return buf.getvalue()


MAX_CHECKPOINT_BYTES = 4 << 30
_ZIP_MAGIC = b"PK\x03\x04"


def decode(data: bytes | str) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a checkpoint (bytes, or the path of a regular file). Anything but an npz archive of plain
    arrays with a JSON meta entry of the right types is a one-line CheckpointError (numpy's own messages, which
    suggest loading with pickle, are never shown)."""
    if isinstance(data, bytes):
        head, src = data[:4], io.BytesIO(data)
    else:
        import stat
        try:
            st = os.stat(data)
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(f"'{os.path.basename(data)}' is not a regular file")
            if st.st_size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"'{os.path.basename(data)}' is larger than {MAX_CHECKPOINT_BYTES} bytes")
            with open(data, "rb") as f:
                head = f.read(4)
        except OSError as exc:
            raise CheckpointError(f"cannot read '{os.path.basename(data)}': {exc.strerror}") from None
        src = data
    if head != _ZIP_MAGIC:
        raise CheckpointError("not a checkpoint (not an npz archive)")
    try:
        with contextlib.ExitStack() as stack:
            f = src if isinstance(src, io.BytesIO) else stack.enter_context(open(src, "rb"))   # closed by us
            with np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip/npy damage of any kind; object arrays (would need pickle)
        kind = "it holds object arrays" if "pickle" in str(exc) else type(exc).__name__
        raise CheckpointError(f"damaged checkpoint archive ({kind})") from None
    if META_KEY not in arrays:
        raise CheckpointError("checkpoint has no meta entry")
    from ..rules.documents import parse_json
    meta = parse_json(arrays.pop(META_KEY).tobytes(), "checkpoint meta", CheckpointError, allow_nan=True)
    if not isinstance(meta, dict) or meta.get("schema") != CKPT_SCHEMA:
        raise CheckpointError(f"not a checkpoint of schema '{CKPT_SCHEMA}'")
    check_meta(meta)
    return arrays, meta


def check_meta(meta: dict) -> dict:
    """The meta fields a resume reads have the right types (CheckpointError naming the field otherwise)."""
    for k in ("generation", "n_metrics"):
        v = meta.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CheckpointError(f"checkpoint meta '{k}' must be an integer >= 0, got {str(v)[:40]!r}")
    if meta["n_metrics"] != meta["generation"]:     # every checkpoint has seen exactly its generations' lines
        raise CheckpointError(f"checkpoint meta 'n_metrics' ({meta['n_metrics']}) differs from its generation "
                              f"({meta['generation']})")
    if not isinstance(meta.get("config_sha256"), str):
        raise CheckpointError("checkpoint meta 'config_sha256' must be a string")
    if not isinstance(meta.get("state_meta"), dict):
        raise CheckpointError("checkpoint meta 'state_meta' must be a mapping")
    return meta


def save(run_dir: str, generation: int, arrays: dict, state_meta: dict, *, n_metrics: int, cfg_sha: str,
         keep: int = 2, extra: dict | None = None) -> str:
    """Write checkpoint ``generation`` atomically; delete all but the newest ``keep`` of those numbered up to it.
    A file numbered above it is one a resume passed over (damaged or unreadable, and named when passed over): it
    is left alone, and no longer counts among the newest, which left a run one checkpoint of its own beside a
    damaged ``ckpt-99999999.npz``. Returns its path."""
    meta = {"schema": CKPT_SCHEMA, "generation": int(generation), "n_metrics": int(n_metrics),
            "config_sha256": cfg_sha, "state_meta": state_meta, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(extra or {})}
    path = checkpoint_path(run_dir, generation)
    atomic_write_bytes(path, encode(arrays, meta))
    older = [g for g in list_generations(run_dir) if g <= generation]
    for g in older[:-keep] if keep > 0 else []:
        try:
            os.remove(checkpoint_path(run_dir, g))
        except OSError:
            pass
    return path


def list_generations(run_dir: str) -> list[int]:
    d = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(d):
        return []
    return sorted(int(m.group(1)) for m in map(_NAME.match, os.listdir(d)) if m)


def load_latest(run_dir: str, on_skip=None) -> tuple[dict[str, np.ndarray], dict] | None:
    """The newest readable checkpoint as (arrays, meta), or None if the run has none yet. ``on_skip(path, why)`` is
    called for each newer file that is damaged and passed over (a resume says so instead of going back silently)."""
    d = os.path.join(run_dir, CHECKPOINT_DIR)
    if os.path.islink(d):       # a resume would write and prune checkpoints wherever it points (another run's)
        raise CheckpointError(f"run directory '{run_dir}': '{CHECKPOINT_DIR}' is a symbolic link (a run keeps its "
                              "checkpoints in a directory of its own)")
    if os.path.lexists(d) and not os.path.isdir(d):
        raise CheckpointError(f"run directory '{run_dir}': '{CHECKPOINT_DIR}' is not a directory")
    gens = list_generations(run_dir)
    for g in gens:      # a damaged file is skipped below (and replaced when the run gets there); a directory is not
        if os.path.isdir(checkpoint_path(run_dir, g)):
            raise CheckpointError(f"run directory '{run_dir}': checkpoint '{checkpoint_path(run_dir, g)}' is a "
                                  "directory, not a file")
    skipped = []
    for g in reversed(gens):
        try:
            arrays, meta = decode(checkpoint_path(run_dir, g))
        except Exception as exc:  # noqa: BLE001 - a damaged file: fall back to the previous checkpoint
            skipped.append((checkpoint_path(run_dir, g), first_line(exc)))
            continue
        if meta.get("generation") != g:
            skipped.append((checkpoint_path(run_dir, g), f"checkpoint {g} claims generation {meta.get('generation')}"))
            continue
        for path, why in skipped if on_skip is not None else ():
            on_skip(path, why)
        return arrays, meta
    if gens:
        raise CheckpointError(f"no readable checkpoint in '{run_dir}' ({skipped[-1][1]})")
    return None
