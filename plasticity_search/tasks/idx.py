"""`idx:PATH`: MNIST, Fashion-MNIST, EMNIST (or any data set in the same format) from files the user provides.

Nothing is downloaded. IDX format (LeCun et al., yann.lecun.com/exdb/mnist): a big-endian header of two zero bytes,
a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number
of dimensions, then one big-endian uint32 per dimension, then the data. Files may be gzip-compressed (detected from
the content, not the name). Images must be unsigned bytes; they are flattened and divided by 255.

PATH is either
  * a directory holding one set of files: `*train-images*` and `*train-labels*`, plus `*t10k-images*` or
    `*test-images*` and the matching labels (the MNIST / Fashion-MNIST names `train-images-idx3-ubyte[.gz]`,
    `t10k-labels-idx1-ubyte[.gz]`, ..., the EMNIST names `emnist-letters-train-images-idx3-ubyte[.gz]`, ...), or
  * one images file; its labels file is found next to it by name (`images` -> `labels`, `idx3` -> `idx1`), and
    for a `*train-images*` file the matching test files are looked for next to it as well.
Pools (three disjoint eval pools, see `pooled.py`): the test file is split (fixed permutation) into two halves, the
'select' and 'final' pools; the 'search' pool, of the same size (at most half the train file), is carved out of the
train file (fixed permutation) and the rest of the train file is the training pool. Without a test file, all three
held-out pools are carved out of the given file (1/6 each, at most 5000), the rest being the training pool.
n_out = max(train label) + 1 (EMNIST letters: labels 1..26, so 27 outputs, output 0 unused). EMNIST images are
stored transposed relative to MNIST; that is a fixed permutation of the inputs and is left as is.
`make("idx:PATH")` reads the headers and labels (small) to fix n_in and n_out and to report bad files early; images
are read on the first `sample` and cached.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .base import TaskError
from .pooled import PooledTask, Pools, permutation_split

__all__ = ["IdxFiles", "IdxTask", "read_idx", "read_idx_header", "resolve_idx_files"]

IDX_SPLIT_SEED = 19_980_101
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_INTEGER_CODES = (0x08, 0x09, 0x0B, 0x0C)


class IdxFiles(NamedTuple):
    train_images: str
    train_labels: str
    test_images: str | None
    test_labels: str | None


# ---------------------------------------------------------------- parsing


def _read_bytes(path: str, n: int | None = None) -> bytes:
    """The first n (default: all) bytes of a file, decompressed if it is gzip."""
    try:
        with open(path, "rb") as f:
            is_gzip = f.read(2) == b"\x1f\x8b"
        with (gzip.open if is_gzip else open)(path, "rb") as f:
            return f.read() if n is None else f.read(n)
    except FileNotFoundError:
        raise TaskError(f"idx: file not found: {path}") from None
    except (OSError, EOFError) as err:  # includes gzip.BadGzipFile, IsADirectoryError, PermissionError
        raise TaskError(f"idx: cannot read {path}: {err}") from None


def _parse_header(buf: bytes, path: str) -> tuple[int, tuple[int, ...], int]:
    """(type code, dims, data offset) of an IDX header; TaskError if it is not one."""
    if len(buf) < 4:
        raise TaskError(f"idx: {path}: file too short for an IDX header ({len(buf)} bytes)")
    magic = int.from_bytes(buf[:4], "big")
    code, ndim = buf[2], buf[3]
    if buf[0] != 0 or buf[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise TaskError(
            f"idx: {path}: bad magic number 0x{magic:08x} (expected 0x0000TTNN: TT a type code in "
            f"{{08,09,0b,0c,0d,0e}}, NN the number of dimensions, e.g. 0x00000803 for images)"
        )
    offset = 4 + 4 * ndim
    if len(buf) < offset:
        raise TaskError(f"idx: {path}: header truncated (needs {offset} bytes for {ndim} dimensions)")
    dims = tuple(int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return code, dims, offset


def read_idx_header(path: str) -> tuple[int, tuple[int, ...]]:
    """(type code, dims) of an IDX file, reading only its header."""
    first = _read_bytes(path, 4)
    ndim = first[3] if len(first) == 4 else 0
    code, dims, _ = _parse_header(_read_bytes(path, 4 + 4 * ndim), path)
    return code, dims


def read_idx(path: str) -> np.ndarray:
    """The whole array of an IDX file (native byte order, read-only); cached per path, size and mtime."""
    stat = os.stat(path) if os.path.exists(path) else None
    return _read_idx_cached(str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    buf = _read_bytes(path)
    code, dims, offset = _parse_header(buf, path)
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(buf) - offset != expected:
        raise TaskError(
            f"idx: {path}: header says {'x'.join(map(str, dims))} of {dtype.itemsize}-byte values "
            f"({expected} bytes), found {len(buf) - offset} bytes of data"
        )
    array = np.frombuffer(buf, dtype=dtype, count=int(np.prod(dims)), offset=offset).reshape(dims)
    array = array.astype(dtype.newbyteorder("="), copy=False)
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------- finding the files


def _existing(directory: Path, names: list[str]) -> Path | None:
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _gz_variants(name: str) -> list[str]:
    stem = name[:-3] if name.endswith(".gz") else name
    return [stem, stem + ".gz"]


def _labels_for(images: Path) -> Path:
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    candidates = _gz_variants(name)
    found = _existing(images.parent, candidates)
    if found is None:
        raise TaskError(f"idx: no labels file next to {images} (looked for {' or '.join(candidates)})")
    return found


def _test_images_for(train_images: Path) -> Path | None:
    if "train-images" not in train_images.name:
        return None
    names = []
    for test_word in ("t10k-images", "test-images"):
        names += _gz_variants(train_images.name.replace("train-images", test_word))
    return _existing(train_images.parent, names)


def _find_one(directory: Path, patterns: tuple[str, ...], what: str) -> Path | None:
    """The one file matching the patterns (a plain and a .gz copy of the same file count as one; plain wins)."""
    matches = sorted({p for pattern in patterns for p in directory.glob(pattern) if p.is_file()})
    by_stem: dict[str, list[Path]] = {}
    for p in matches:
        by_stem.setdefault(p.name[:-3] if p.name.endswith(".gz") else p.name, []).append(p)
    if len(by_stem) > 1:
        raise TaskError(
            f"idx: {directory} holds several {what} files ({', '.join(sorted(by_stem))}); pass the images file itself"
        )
    if not by_stem:
        return None
    (group,) = by_stem.values()
    return min(group, key=lambda p: p.name.endswith(".gz"))


def resolve_idx_files(path: str | os.PathLike) -> IdxFiles:
    """Find the train (and, if present, test) images and labels files for a directory or an images file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise TaskError(f"idx: path not found: {p}")
    if p.is_dir():
        train_images = _find_one(p, ("*train-images*",), "train-images")
        if train_images is None:
            raise TaskError(f"idx: no *train-images* file in {p}")
    else:
        train_images = p
    train_labels = _labels_for(train_images)
    test_images = _test_images_for(train_images)
    test_labels = _labels_for(test_images) if test_images is not None else None
    return IdxFiles(
        str(train_images),
        str(train_labels),
        None if test_images is None else str(test_images),
        None if test_labels is None else str(test_labels),
    )


# ---------------------------------------------------------------- the task


def _check_pair(images: str, labels: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Validate an images/labels pair from the headers and the labels; return (image dims, labels)."""
    code, dims = read_idx_header(images)
    if code != 0x08 or len(dims) < 2:
        raise TaskError(
            f"idx: {images}: expected unsigned-byte images with >= 2 dimensions, got type 0x{code:02x} dims {dims}"
        )
    if not _is_gzip(images):  # a cheap size check now; gzip files are checked when read in full
        expected = 4 + 4 * len(dims) + int(np.prod(dims))
        if os.path.getsize(images) != expected:
            raise TaskError(f"idx: {images}: file has {os.path.getsize(images)} bytes, header implies {expected}")
    y = read_idx(labels)
    label_code = read_idx_header(labels)[0]
    if label_code not in _INTEGER_CODES or y.ndim != 1:
        raise TaskError(
            f"idx: {labels}: expected a 1-D array of integer labels, got type 0x{label_code:02x} dims {y.shape}"
        )
    if len(y) != dims[0]:
        raise TaskError(f"idx: {labels} has {len(y)} labels but {images} has {dims[0]} images")
    if len(y) and y.min() < 0:
        raise TaskError(f"idx: {labels}: negative labels")
    return dims, y.astype(np.int64)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


@functools.lru_cache(maxsize=4)
def _idx_pools(files: IdxFiles) -> Pools:
    x_train = read_idx(files.train_images)
    _, y_train = _check_pair(files.train_images, files.train_labels)
    if files.test_images is None:
        n_hold = _held_out_size(len(y_train))
        train, search, select, final = permutation_split(len(y_train), n_hold, n_hold, n_hold, IDX_SPLIT_SEED)
        x, y = x_train, y_train
        return Pools(x[train], y[train], x[search], y[search], x[select], y[select], x[final], y[final], 255.0)
    x_test = read_idx(files.test_images)
    _, y_test = _check_pair(files.test_images, files.test_labels)
    perm = np.random.default_rng(IDX_SPLIT_SEED).permutation(len(y_test))
    select, final = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    train, search, _, _ = permutation_split(
        len(y_train), _search_size(len(y_train), len(y_test)), 0, 0, IDX_SPLIT_SEED + 1
    )
    return Pools(
        x_train[train], y_train[train], x_train[search], y_train[search],
        x_test[select], y_test[select], x_test[final], y_test[final], 255.0,
    )


def _held_out_size(n: int) -> int:
    """Size of each of the three eval pools carved out of a lone file of n samples."""
    return min(n // 6, 5000)


def _search_size(n_train: int, n_test: int) -> int:
    """Size of the 'search' pool carved out of the train file: that of the 'select' pool, at most half the file."""
    return min(n_test // 2, n_train // 2)


@dataclass(frozen=True, kw_only=True)
class IdxTask(PooledTask):
    """A classification task on user-provided IDX files; `IdxTask(path=...)` or `make("idx:PATH")`."""

    name: str = field(init=False)
    kind: str = field(default="rate", init=False)
    description: str = field(init=False)
    n_in: int = field(init=False)
    n_out: int = field(init=False)
    objective: str = field(default="classification", init=False)
    default_steps: int = 10_000
    n_eval: int = field(init=False)
    path: str
    max_eval: int = 1000  # n_eval = min(max_eval, size of the smallest held-out pool)
    files: IdxFiles = field(init=False, repr=False)

    def __post_init__(self):
        files = resolve_idx_files(self.path)
        dims, y_train = _check_pair(files.train_images, files.train_labels)
        if len(y_train) == 0:
            raise TaskError(f"idx: {files.train_labels}: no samples")
        n_out = int(y_train.max()) + 1
        if files.test_images is None:
            pool = _held_out_size(len(y_train))
        else:
            test_dims, y_test = _check_pair(files.test_images, files.test_labels)
            if test_dims[1:] != dims[1:]:
                raise TaskError(f"idx: {files.test_images}: images are {test_dims[1:]}, train images are {dims[1:]}")
            if len(y_test) and y_test.max() >= n_out:
                raise TaskError(
                    f"idx: {files.test_labels}: label {y_test.max()} not seen in training (max {n_out - 1})"
                )
            pool = min(len(y_test) // 2, _search_size(len(y_train), len(y_test)))
        if pool < 1:
            source = files.test_images or files.train_images
            raise TaskError(f"idx: too few samples to hold out evaluation pools from {source}")
        set_ = functools.partial(object.__setattr__, self)
        set_("files", files)
        set_("name", f"idx:{self.path}")
        set_("description", f"IDX images {Path(files.train_images).name}: {len(y_train)} train, {n_out} classes")
        set_("n_in", int(np.prod(dims[1:])))
        set_("n_out", n_out)
        set_("n_eval", min(self.max_eval, pool))

    def pools(self) -> Pools:
        return _idx_pools(self.files)
