"""Honest splits: for every registered task (rate and spiking) and for `idx:` tasks, the 'search', 'select' and
'final' splits never share an evaluation sample, and their streams come from different samples or generators.

A "sample" is a row of x (one input vector / segment / pattern), compared by its bytes. For `spiking_teacher` a row is
one 1 ms time step of 5 binary spike inputs, which cannot be unique; there a sample is a window of `WINDOW` steps of
(input spikes, teacher membrane).
"""

import struct
from itertools import permutations

import numpy as np
import pytest

from plasticity_search.tasks import SPLITS, list_tasks, make
from plasticity_search.tasks.base import split_rngs
from plasticity_search.tasks.pooled import PooledTask

SEEDS = (0, 1)
STEPS = 120  # short streams keep this fast; pooled streams are still a fraction of an epoch
WINDOW = 100
IDX_CASES = ("idx:with-test", "idx:train-only")
TASK_NAMES = [t.name for t in list_tasks()] + list(IDX_CASES)


def _write_idx(path, array: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def _unique_images(rng: np.random.Generator, n: int) -> np.ndarray:
    images = rng.integers(0, 256, size=(n, 3, 5), dtype=np.uint8)
    assert len(np.unique(images.reshape(n, -1), axis=0)) == n
    return images


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    (root / "with_test").mkdir()
    for word, n in (("train", 60), ("t10k", 24)):
        _write_idx(root / "with_test" / f"{word}-images-idx3-ubyte", _unique_images(rng, n))
        _write_idx(root / "with_test" / f"{word}-labels-idx1-ubyte", (np.arange(n) % 4).astype(np.uint8))
    (root / "train_only").mkdir()
    _write_idx(root / "train_only" / "letters-images-idx3-ubyte", _unique_images(rng, 48))
    _write_idx(root / "train_only" / "letters-labels-idx1-ubyte", (np.arange(48) % 3).astype(np.uint8))
    return root


@pytest.fixture(params=TASK_NAMES)
def task(request, idx_root):
    if request.param == "idx:with-test":
        return make(f"idx:{idx_root / 'with_test'}")
    if request.param == "idx:train-only":
        return make(f"idx:{idx_root / 'train_only' / 'letters-images-idx3-ubyte'}")
    return make(request.param)


def _units(task, x: np.ndarray, y: np.ndarray) -> set[bytes]:
    """Hashable samples of one (x, y) sequence (see the module docstring)."""
    if task.name == "spiking_teacher":
        xy = np.concatenate([x, y], axis=1)
        n = len(xy) // WINDOW
        return {w.tobytes() for w in np.ascontiguousarray(xy[: n * WINDOW]).reshape(n, -1)}
    return {row.tobytes() for row in np.ascontiguousarray(x)}


def _shared_training_pool(task) -> bool:
    """Pooled data sets (and spiking tasks that encode them) draw every split's stream from one training pool."""
    base = make(task.dataset) if task.kind == "spiking" and hasattr(task, "dataset") else task
    return isinstance(base, PooledTask)


def _by_split(task):
    data = {split: [task.sample(seed, split, STEPS) for seed in SEEDS] for split in SPLITS}
    evals = {s: set().union(*(_units(task, d.x_eval, d.y_eval) for d in data[s])) for s in SPLITS}
    streams = {s: set().union(*(_units(task, d.x_stream, d.y_stream) for d in data[s])) for s in SPLITS}
    return data, evals, streams


def test_registry_covers_rate_and_spiking_tasks():
    kinds = {t.kind for t in list_tasks()}
    assert {"rate", "spiking"} <= kinds
    assert len(TASK_NAMES) == len(set(TASK_NAMES))


def test_eval_samples_are_disjoint_across_splits(task):
    _, evals, _ = _by_split(task)
    for s in SPLITS:
        # the eval set is not degenerate (every seed's eval set has distinct samples)
        assert len(evals[s]) >= task.n_eval // (WINDOW if task.name == "spiking_teacher" else 1)
    for a, b in permutations(SPLITS, 2):
        assert not (evals[a] & evals[b]), f"{task.name}: {a} and {b} share eval samples"


def test_streams_differ_and_never_contain_another_splits_eval_samples(task):
    data, evals, streams = _by_split(task)
    for a, b in permutations(SPLITS, 2):
        assert not (streams[a] & evals[b]), f"{task.name}: the {a} stream holds {b} eval samples"
        for da, db in zip(data[a], data[b]):
            assert not np.array_equal(da.x_stream, db.x_stream)
    if _shared_training_pool(task):
        # one training pool for all splits, by design: the streams are independent draws from it ...
        for da, db in zip(data["search"], data["final"]):
            assert (da.x_stream == db.x_stream).all(axis=1).mean() < 0.2
        # ... and no split ever trains on a sample of any eval pool, its own included
        all_eval = set().union(*evals.values())
        assert not any(streams[s] & all_eval for s in SPLITS)
    else:
        for a, b in permutations(SPLITS, 2):
            assert not (streams[a] & streams[b]), f"{task.name}: {a} and {b} streams share samples"


def test_pooled_tasks_have_three_disjoint_eval_pools(task):
    if not isinstance(task, PooledTask):
        pytest.skip("not a pooled data set")
    pools = task.pools()
    rows = {
        name: {r.tobytes() for r in np.ascontiguousarray(x).reshape(len(x), -1)}
        for name, x in (("train", pools.x_train), ("search", pools.x_search), ("select", pools.x_select),
                        ("final", pools.x_final))
    }
    for a, b in permutations(rows, 2):
        assert not (rows[a] & rows[b]), f"{task.name}: pools {a} and {b} overlap"
    for split in SPLITS:
        assert len(pools.eval_pool(split)[1]) >= task.n_eval
    assert len(pools.y_train) > 0
    # the pools are fixed: the same on every call and for every seed
    np.testing.assert_array_equal(task.pools().x_final, pools.x_final)


def test_per_split_generators_and_instance_keys_differ():
    import jax

    from plasticity_search.rate import instance_keys
    from plasticity_search.spiking import instance_key

    draws = {(seed, split): split_rngs(seed, split, 3)[1].random(4).tobytes() for seed in SEEDS for split in SPLITS}
    assert len(set(draws.values())) == len(draws)
    spiking = {
        (seed, split): np.asarray(jax.random.key_data(instance_key(seed, split))).tobytes()
        for seed in SEEDS for split in SPLITS
    }
    assert len(set(spiking.values())) == len(spiking)
    rate = {split: np.asarray(jax.random.key_data(instance_keys(SEEDS, split))) for split in SPLITS}
    rows = [r.tobytes() for split in SPLITS for r in rate[split]]
    assert len(set(rows)) == len(rows)
