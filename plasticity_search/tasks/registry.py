"""Task registry: `register(task)`, `make(name, **overrides)`, `list_tasks()`.

The built-in tasks (rate and spiking) are registered by the package, :mod:`plasticity_search.tasks`, which imports
each of them; this module is the mechanism only, so task modules may use `make` (a spiking task draws its samples
from a rate task). Users call `register` with their own `Task` instances. `make("idx:PATH")` builds an `IdxTask`
on user-provided MNIST-format files (never registered).
Keyword overrides are applied with `dataclasses.replace`, e.g. `make("digits_fewshot", k_way=3, n_shot=10)`.

A task of the user's own is named by import path, `make("mypkg.tasks:make_task")` (also as `task:` in a config and
as `evaluate --task`): the module is imported with `importlib.import_module` (a dotted name of identifiers; never
text that is evaluated) and the attribute is a `Task` instance, a `Task` subclass or a function, called with no
arguments, whose return annotation is a `Task` class (`def make_task() -> MyTask:`): a function without that
declaration is never called, so a config cannot name an arbitrary function of an installed package (`pip:main`).
Importing a module runs its code, as `import` does: name only modules you trust. Standard-library modules are
refused (`os:abort` is not a task). The imported task is kept for the process.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types

from .base import Task, TaskError
from .idx import IdxTask

__all__ = ["IDX_PREFIX", "import_task", "is_import_path", "list_tasks", "make", "register"]

IDX_PREFIX = "idx:"
KINDS = ("rate", "spiking")
_REGISTRY: dict[str, Task] = {}
_IMPORTED: dict[str, Task] = {}
_IMPORT_PATH = re.compile(r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
                          r":(?P<attr>[A-Za-z_][A-Za-z0-9_]*)$")


def is_import_path(name) -> bool:
    """Whether `name` names a user task as `package.module:attribute` (not `idx:PATH`)."""
    return (isinstance(name, str) and not name.startswith(IDX_PREFIX)
            and _IMPORT_PATH.match(name) is not None)


def import_task(path: str) -> Task:
    """The task named `package.module:attribute` (see the module docstring); one-line TaskError otherwise."""
    import importlib

    if path in _IMPORTED:
        return _IMPORTED[path]
    m = _IMPORT_PATH.match(path) if isinstance(path, str) else None
    if m is None or path.startswith(IDX_PREFIX):
        raise TaskError(f"task {path!r}: expected an import path package.module:function")
    module, attr = m.group("module"), m.group("attr")
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise TaskError(f"task {path!r}: {module!r} is a standard-library module, not a module of tasks")
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's module is one line
        raise TaskError(f"task {path!r}: cannot import module {module!r} ({_one_line(exc)}); it must be "
                        "importable: installed, or in a directory on PYTHONPATH") from None
    if not hasattr(mod, attr):
        raise TaskError(f"task {path!r}: module {module!r} has no attribute {attr!r}")
    obj = getattr(mod, attr)
    if isinstance(obj, Task):
        task = obj
    elif isinstance(obj, types.FunctionType) or (isinstance(obj, type) and issubclass(obj, Task)):
        if isinstance(obj, types.FunctionType) and not _declares_task(obj):
            raise TaskError(f"task {path!r}: {attr}() does not declare that it returns a Task (annotate it: "
                            f"def {attr}() -> MyTask:); it is not called")
        try:
            task = obj()
        except Exception as exc:  # noqa: BLE001 - the user's factory failed
            raise TaskError(f"task {path!r}: {attr}() failed ({_one_line(exc)})") from None
        if not isinstance(task, Task):
            raise TaskError(f"task {path!r}: {attr}() returned {type(task).__name__}, not a "
                            "plasticity_search.tasks.Task")
    else:
        raise TaskError(f"task {path!r}: {module}.{attr} is a {type(obj).__name__}, not a Task or a function "
                        "returning one")
    if task.kind not in KINDS:
        raise TaskError(f"task {path!r}: kind must be one of {', '.join(KINDS)}, got {task.kind!r}")
    _IMPORTED[path] = task
    return task


def _declares_task(fn) -> bool:
    """Whether ``fn``'s return annotation is a Task class (resolved in its module, as typing does)."""
    import typing

    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001 - an unresolvable annotation is no declaration
        return False
    return isinstance(ret, type) and issubclass(ret, Task)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def register(task: Task, *, overwrite: bool = False) -> Task:
    """Add a task under `task.name`; re-registering an equal task is a no-op. Returns the task."""
    if not isinstance(task, Task):
        raise TaskError(f"register expects a Task, got {type(task).__name__}")
    if not isinstance(task.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", task.name, re.ASCII):
        raise TaskError(f"invalid task name {task.name!r}: letters, digits, '_', '.', '-', starting with a letter "
                        "or '_' (':' would read as idx:PATH or module:function)"[:300])
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
    if task is None and is_import_path(name):
        task = import_task(name)
    if task is None:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(_REGISTRY)}, idx:PATH, "
                        "or a task of yours as module:function")
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
