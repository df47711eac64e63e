"""Task registry: `register(task)`, `make(name, **overrides)`, `list_tasks()`.

Built-in rate tasks are registered on import. Other modules (e.g. spiking tasks) call `register` with their own
`Task` instances. `make("idx:PATH")` builds an `IdxTask` on user-provided MNIST-format files (never registered).
Keyword overrides are applied with `dataclasses.replace`, e.g. `make("digits_fewshot", k_way=3, n_shot=10)`.
"""

from __future__ import annotations

import dataclasses

from .base import Task, TaskError
from .digits import DigitsTask
from .fewshot import FewShotTask
from .idx import IdxTask
from .mnist1d import MNIST1DTask
from .pca import PCATask
from .teacher_student import TeacherStudentTask
from .yinyang import YinYangTask

__all__ = ["IDX_PREFIX", "list_tasks", "make", "register"]

IDX_PREFIX = "idx:"
_REGISTRY: dict[str, Task] = {}


def _load_spiking() -> None:
    """Spiking tasks live with the spiking simulator and register themselves when it is imported."""
    try:
        import plasticity_search.spiking.tasks  # noqa: F401
    except ImportError:  # pragma: no cover - the simulator is part of the package
        pass


def register(task: Task, *, overwrite: bool = False) -> Task:
    """Add a task under `task.name`; re-registering an equal task is a no-op. Returns the task."""
    if not isinstance(task, Task):
        raise TaskError(f"register expects a Task, got {type(task).__name__}")
    if not task.name or task.name.startswith(IDX_PREFIX):
        raise TaskError(f"invalid task name {task.name!r}")
    known = _REGISTRY.get(task.name)
    if known is not None and known != task and not overwrite:
        raise TaskError(f"task {task.name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[task.name] = task
    return task


def make(name: str, **overrides) -> Task:
    """The task registered as `name` (or an `IdxTask` for "idx:PATH"), with optional field overrides."""
    if not isinstance(name, str):
        raise TaskError(f"task name must be a string, got {name!r}")
    if name.startswith(IDX_PREFIX):
        path = name[len(IDX_PREFIX) :]
        if not path:
            raise TaskError("idx: expected idx:PATH with PATH a directory or an IDX images file")
        return _construct(IdxTask, name, path=path, **overrides)
    if name not in _REGISTRY:
        _load_spiking()
    task = _REGISTRY.get(name)
    if task is None:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(_REGISTRY)}, idx:PATH")
    if not overrides:
        return task
    return _construct(dataclasses.replace, name, task, **overrides)


def _construct(factory, name: str, *args, **kwargs) -> Task:
    try:
        return factory(*args, **kwargs)
    except TaskError:
        raise
    except (TypeError, ValueError) as err:  # unknown or non-overridable field
        cls = IdxTask if name.startswith(IDX_PREFIX) else type(args[0])
        settable = [f.name for f in dataclasses.fields(cls) if f.init]
        raise TaskError(f"task {name!r}: invalid override ({err}); settable fields: {', '.join(settable)}") from None


def list_tasks() -> list[Task]:
    """All registered tasks, in registration order."""
    _load_spiking()
    return list(_REGISTRY.values())


for _task in (
    DigitsTask(),
    FewShotTask(),
    MNIST1DTask(),
    FewShotTask(name="mnist1d_fewshot", dataset="mnist1d"),
    YinYangTask(),
    TeacherStudentTask(),
    PCATask(),
):
    register(_task)
del _task
