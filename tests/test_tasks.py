"""Tests for plasticity_search.tasks: registry, determinism, disjoint splits, shapes, each task's semantics, IDX."""

import gzip
import struct

import numpy as np
import pytest

from plasticity_search.tasks import (
    SPLITS,
    FewShotTask,
    IdxTask,
    Task,
    TaskData,
    TaskError,
    list_tasks,
    make,
    register,
)
from plasticity_search.tasks.yinyang import yinyang_class

TASKS = list_tasks()
RATE_TASKS = [t for t in TASKS if t.kind == "rate"]
STEPS = 300  # short streams keep the registry-wide tests fast


def _rows(a: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(a)}


# ---------------------------------------------------------------- registry-wide


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_shapes_dtypes_and_declared_sizes(task):
    for steps in (None, STEPS):
        data = task.sample(0, "search", steps)
        n = task.default_steps if steps is None else steps
        assert isinstance(data, TaskData)
        assert data.x_stream.shape == (n, task.n_in)
        assert data.y_stream.shape == (n, task.n_out)
        assert data.x_eval.shape == (task.n_eval, task.n_in)
        assert data.y_eval.shape == (task.n_eval, task.n_out)
        assert data.pc1.shape == (task.n_in,)
        assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in data)
    assert task.kind in ("rate", "spiking") and task.name in {t.name for t in list_tasks()}
    assert hash(task) == hash(make(task.name)) and make(task.name) == task


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_deterministic_and_splits_differ(task):
    a = task.sample(3, "search", STEPS)
    b = task.sample(3, "search", STEPS)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    other_seed = task.sample(4, "search", STEPS)
    assert not np.array_equal(a.x_stream, other_seed.x_stream)
    by_split = {split: task.sample(3, split, STEPS) for split in SPLITS}
    for s1, s2 in [("search", "select"), ("search", "final"), ("select", "final")]:
        assert not np.array_equal(by_split[s1].x_stream, by_split[s2].x_stream)
    assert not np.array_equal(by_split["select"].x_eval, by_split["final"].x_eval)


@pytest.mark.parametrize("task", RATE_TASKS, ids=lambda t: t.name)
def test_eval_set_does_not_depend_on_stream_length(task):
    np.testing.assert_array_equal(task.sample(3, "search", 10).x_eval, task.sample(3, "search", STEPS).x_eval)


@pytest.mark.parametrize("task", RATE_TASKS, ids=lambda t: t.name)
def test_targets_match_objective(task):
    data = task.sample(1, "select", STEPS)
    assert task.objective in ("classification", "regression", "pca")
    if task.objective == "classification":
        for y in (data.y_stream, data.y_eval):
            assert set(np.unique(y)) <= {0.0, 1.0}
            np.testing.assert_array_equal(y.sum(1), 1.0)
    if task.objective == "pca":
        assert not data.y_stream.any() and not data.y_eval.any()
        assert np.linalg.norm(data.pc1) == pytest.approx(1.0, abs=1e-6)
    else:
        assert not data.pc1.any()


def test_sample_batch_stacks_seeds():
    task = make("yinyang")
    batch = task.sample_batch([0, 1, 2], "search", steps=50)
    assert batch.x_stream.shape == (3, 50, 4) and batch.y_eval.shape == (3, task.n_eval, 3)
    np.testing.assert_array_equal(batch.x_stream[1], task.sample(1, "search", 50).x_stream)
    with pytest.raises(TaskError):
        task.sample_batch([], "search")


def test_bad_arguments_raise_task_error():
    task = make("pca")
    for seed, split, steps in [(-1, "search", None), (10**7, "search", None), (0, "train", None), (0, "final", 0)]:
        with pytest.raises(TaskError):
            task.sample(seed, split, steps)


def test_unknown_name_and_bad_override():
    with pytest.raises(TaskError) as err:
        make("no_such_task")
    message = str(err.value)
    assert "no_such_task" in message and "digits" in message and "\n" not in message
    assert isinstance(err.value, ValueError)
    with pytest.raises(TaskError, match="n_in"):
        make("digits", n_in=3)
    with pytest.raises(TaskError, match="bogus"):
        make("digits", bogus=1)


def test_register_rules():
    digits = make("digits")
    assert register(digits) is digits  # equal task: no-op
    with pytest.raises(TaskError, match="already registered"):
        register(make("digits", n_eval=10))
    with pytest.raises(TaskError):
        register("digits")
    assert make("digits", n_eval=10).n_eval == 10 and make("digits").n_eval == 250


# ---------------------------------------------------------------- fixed data sets


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_fixed_dataset_pools_are_disjoint(name):
    task = make(name)
    pools = task.pools()
    train, select, final = _rows(pools.x_train), _rows(pools.x_select), _rows(pools.x_final)
    assert not (train & select) and not (train & final) and not (select & final)
    stream = _rows(task.sample(0, "final", 2000).x_stream)
    assert stream <= {r for r in _rows(pools.x_train.astype(np.float32))}
    assert _rows(task.sample(0, "search").x_eval) <= _rows(pools.x_search)  # its own pool (tests/test_splits.py)
    assert _rows(task.sample(0, "final").x_eval) <= final


def test_digits_inputs_and_epoch_stream():
    task = make("digits")
    data = task.sample(0, "search", steps=len(task.pools().y_train))
    assert data.x_stream.min() >= 0.0 and data.x_stream.max() <= 1.0 and data.x_stream.max() == 1.0
    # one full epoch presents every training sample exactly once
    assert len(_rows(data.x_stream)) == len(_rows(task.pools().x_train))


def test_mnist1d_statistics():
    data = make("mnist1d").sample(0, "search")
    assert abs(data.x_stream.mean()) < 0.1 and 0.8 < data.x_stream.std() < 1.2
    counts = data.y_stream.sum(0)
    assert counts.min() > 0.07 * len(counts) * 40  # roughly balanced classes (4000 steps, 10 classes)


# ---------------------------------------------------------------- few-shot


def test_fewshot_episode_structure():
    task = make("digits_fewshot")
    assert (task.n_out, task.default_steps, task.n_eval) == (5, 100, 25)
    data = task.sample(7, "search")
    labels = data.y_stream.argmax(1)
    assert set(labels) <= set(range(5))
    np.testing.assert_array_equal(np.bincount(labels, minlength=5), 20)
    np.testing.assert_array_equal(np.bincount(data.y_eval.argmax(1), minlength=5), 5)
    assert not (_rows(data.x_stream) & _rows(data.x_eval))  # queries are not training samples
    assert not np.array_equal(labels, np.sort(labels))  # presented in shuffled order


def test_fewshot_arguments():
    task = FewShotTask(k_way=3, n_shot=4, n_query=2)
    data = task.sample(0, "final")
    assert data.x_stream.shape == (12, 64) and data.y_eval.shape == (6, 3)
    np.testing.assert_array_equal(np.bincount(data.y_stream.argmax(1)), 4)
    assert make("mnist1d_fewshot", k_way=10).sample(0, "select").y_stream.shape == (200, 10)
    with pytest.raises(TaskError):
        FewShotTask(k_way=11)
    with pytest.raises(TaskError, match="pool"):
        FewShotTask(n_shot=60).sample(0, "final")


def test_fewshot_split_pools_are_disjoint():
    task = make("digits_fewshot")
    seen = {}
    for split in SPLITS:
        batch = task.sample_batch(range(20), split)
        seen[split] = _rows(batch.x_stream.reshape(-1, 64)) | _rows(batch.x_eval.reshape(-1, 64))
    assert not (seen["search"] & seen["final"]) and not (seen["search"] & seen["select"])
    assert not (seen["select"] & seen["final"])


# ---------------------------------------------------------------- procedural tasks


def test_pca_pc1_is_top_eigenvector():
    task = make("pca")
    for seed, split in [(0, "search"), (5, "final")]:
        data = task.sample(seed, split, steps=20_000)
        assert np.linalg.norm(data.pc1) == pytest.approx(1.0, abs=1e-6)
        assert abs(data.x_stream.mean(0)).max() < 0.05
        _, vecs = np.linalg.eigh(np.cov(data.x_stream, rowvar=False))
        assert abs(vecs[:, -1] @ data.pc1) > 0.99
    assert abs(task.sample(0, "search").pc1 @ task.sample(1, "search").pc1) < 0.99  # drawn per seed


def test_yinyang_balanced_in_unit_square_and_labelled_by_reference_rule():
    data = make("yinyang").sample(0, "search", steps=3000)
    x = data.x_stream
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x[:, 2:], 1.0 - x[:, :2], atol=1e-6)
    assert (np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5 + 1e-6).all()
    fractions = data.y_stream.mean(0)
    assert np.all(np.abs(fractions - 1 / 3) < 0.05), fractions
    labels = data.y_stream.argmax(1)
    np.testing.assert_array_equal(yinyang_class(x[:, 0].astype(float), x[:, 1].astype(float)), labels)


def test_teacher_student_is_a_fixed_function_per_seed():
    task = make("teacher_student")
    data = task.sample(2, "search", steps=500)
    w1, w2 = task.teacher(2, "search")
    np.testing.assert_allclose(np.tanh(data.x_eval @ w1.T) @ w2.T, data.y_eval, rtol=1e-4, atol=1e-5)
    other = task.teacher(2, "final")[0]
    assert not np.allclose(w1, other)
    assert 0.1 < data.y_stream.std() < 2.0


# ---------------------------------------------------------------- IDX files


def _write_idx(path, array: np.ndarray, code: int = 0x08, compress: bool = False, magic: bytes | None = None):
    header = magic if magic is not None else bytes([0, 0, code, array.ndim])
    payload = header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(">u1").tobytes()
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def _fake_mnist(directory, compress: bool, prefix: str = "", test_word: str = "t10k", n_classes: int = 4):
    rng = np.random.default_rng(0)
    gz = ".gz" if compress else ""
    directory.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in (("train", 60), (test_word, 24)):
        images = rng.integers(0, 256, size=(n, 3, 5), dtype=np.uint8)
        labels = np.arange(n) % n_classes
        _write_idx(directory / f"{prefix}{split}-images-idx3-ubyte{gz}", images, compress=compress)
        _write_idx(directory / f"{prefix}{split}-labels-idx1-ubyte{gz}", labels, compress=compress)
        data[split] = images, labels
    return data


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_directory(tmp_path, compress):
    raw = _fake_mnist(tmp_path / "mnist", compress)
    task = make(f"idx:{tmp_path / 'mnist'}")
    assert isinstance(task, IdxTask) and task.objective == "classification"
    assert (task.n_in, task.n_out, task.n_eval) == (15, 4, 12)
    data = task.sample(0, "search", steps=100)
    assert data.x_stream.shape == (100, 15) and data.x_stream.min() >= 0 and data.x_stream.max() <= 1
    train_rows = _rows((raw["train"][0].reshape(60, -1) / 255.0).astype(np.float32))
    test_rows = _rows((raw["t10k"][0].reshape(24, -1) / 255.0).astype(np.float32))
    assert _rows(data.x_stream) <= train_rows
    # the label of every streamed row is the label of that image
    flat = (raw["train"][0].reshape(60, -1) / 255.0).astype(np.float32)
    for x, y in zip(data.x_stream[:20], data.y_stream[:20]):
        i = np.flatnonzero((flat == x).all(1))[0]
        assert y.argmax() == raw["train"][1][i]
    select = _rows(task.sample(0, "select").x_eval)
    final = _rows(task.sample(0, "final").x_eval)
    assert select <= test_rows and final <= test_rows and not (select & final)
    again = make(f"idx:{tmp_path / 'mnist'}")
    np.testing.assert_array_equal(task.sample(1, "final").x_eval, again.sample(1, "final").x_eval)


def test_idx_emnist_names_and_single_file(tmp_path):
    _fake_mnist(tmp_path, compress=True, prefix="emnist-letters-", test_word="test", n_classes=7)
    by_dir = make(f"idx:{tmp_path}")
    assert by_dir.n_out == 7 and by_dir.files.test_images.endswith("emnist-letters-test-images-idx3-ubyte.gz")
    by_file = make(f"idx:{tmp_path / 'emnist-letters-train-images-idx3-ubyte.gz'}")
    assert by_file.files == by_dir.files
    # a lone test file: held-out pools are carved out of it
    alone = make(f"idx:{tmp_path / 'emnist-letters-test-images-idx3-ubyte.gz'}")
    assert alone.files.test_images is None and alone.n_eval == 24 // 6
    assert alone.sample(0, "final").x_eval.shape == (4, 15)


def test_idx_errors(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        make(f"idx:{tmp_path / 'missing'}")
    with pytest.raises(TaskError, match="train-images"):
        make(f"idx:{tmp_path}")  # empty directory

    _fake_mnist(tmp_path / "bad", compress=False)
    bad = tmp_path / "bad" / "train-images-idx3-ubyte"
    _write_idx(bad, np.zeros((60, 3, 5), np.uint8), magic=b"\x12\x34\x08\x03")
    with pytest.raises(TaskError, match="magic") as err:
        make(f"idx:{tmp_path / 'bad'}")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)

    _fake_mnist(tmp_path / "short", compress=True)
    short = tmp_path / "short" / "train-images-idx3-ubyte.gz"
    short.write_bytes(gzip.compress(gzip.decompress(short.read_bytes())[:-7]))
    task = make(f"idx:{tmp_path / 'short'}")  # gzip sizes are only checked when the images are read
    with pytest.raises(TaskError, match="bytes"):
        task.sample(0, "search")

    _fake_mnist(tmp_path / "mismatch", compress=False)
    _write_idx(tmp_path / "mismatch" / "train-labels-idx1-ubyte", np.zeros(59, np.uint8))
    with pytest.raises(TaskError, match="59 labels"):
        make(f"idx:{tmp_path / 'mismatch'}")

    _fake_mnist(tmp_path / "nolabels", compress=False)
    (tmp_path / "nolabels" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(TaskError, match="no labels file"):
        make(f"idx:{tmp_path / 'nolabels'}")

    (tmp_path / "notgz").mkdir()
    (tmp_path / "notgz" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    _write_idx(tmp_path / "notgz" / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(TaskError, match="cannot read"):
        make(f"idx:{tmp_path / 'notgz'}")


def test_task_base_class_validates_subclass_output():
    class Broken(Task):
        def _generate(self, seed, split, steps):
            z = np.zeros((steps, 2), np.float32)
            return TaskData(z, z, z, z, np.zeros(2, np.float32))

    broken = Broken("broken", "rate", "wrong eval size", 2, 2, "regression", 5, 3)
    with pytest.raises(TaskError, match="x_eval"):
        broken.sample(0, "search")
