"""Task registry: `register(task)`, `make(name, **overrides)`, `list_tasks()`.

The built-in tasks (rate and spiking) are registered by the package, :mod:`plasticity_search.tasks`, which imports
each of them; this module is the mechanism only, so task modules may use `make` (a spiking task draws its samples
from a rate task). Users call `register` with their own `Task` instances. `make("idx:PATH")` builds an `IdxTask`
on user-provided MNIST-format files (never registered).
Keyword overrides are applied with `dataclasses.replace`, e.g. `make("digits_fewshot", k_way=3, n_shot=10)`.
"""

from __future__ import annotations

import dataclasses

from .base import Task, TaskError
from .idx import IdxTask

__all__ = ["IDX_PREFIX", "list_tasks", "make", "register"]

IDX_PREFIX = "idx:"
_REGISTRY: dict[str, Task] = {}


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
    return list(_REGISTRY.values())
