"""Exact (bitwise) serialisation of search-state pytrees into npz-able arrays plus a JSON-able structure.

``flatten(obj)`` walks NamedTuples, dataclasses (incl. flax/evosax struct dataclasses), tuples, lists, dicts, jax and
numpy arrays, typed PRNG keys and Python scalars; arrays go to a flat ``{path: np.ndarray}`` dict and everything
else into a JSON structure that records the classes. ``unflatten`` rebuilds the same object: arrays keep dtype and
bits, jax arrays come back as jax arrays (with their weak type), numpy as numpy, keys as typed keys of the same
implementation. Classes come only from the explicit table :func:`allowed_classes` (NamedTuple and dataclass
types of this package, optax and evosax); any other class name is refused, never imported.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

def _cls_name(obj) -> str:
    t = type(obj)
    return f"{t.__module__}:{t.__qualname__}"


def _is_record_type(c) -> bool:
    """A NamedTuple class or a dataclass type: the only classes a state tree may name."""
    return isinstance(c, type) and ((issubclass(c, tuple) and hasattr(c, "_fields")) or dataclasses.is_dataclass(c))


def _records_of(namespace) -> list[type]:
    return [v for v in vars(namespace).values() if _is_record_type(v)]


@functools.lru_cache(maxsize=1)
def allowed_classes() -> dict[str, type]:
    """The explicit table of classes a checkpoint may contain, keyed ``module:qualname``.

    Our own state records, optax's public optimizer states, and the state/params records of every evosax
    algorithm (from the modules that define those algorithms and their bases). Only NamedTuple and dataclass types
    are ever listed; a name outside this table is refused, and nothing is imported or looked up by attribute from
    what a file says, so a crafted checkpoint cannot name a function such as ``os.system``.
    """
    import sys

    import evosax.algorithms as ea
    import optax

    from ..rules.program import Program
    from .meta_gradient import MetaGradState
    from .regevo import RegEvoState

    classes: list[type] = [Program, RegEvoState, MetaGradState]
    classes += _records_of(optax) + _records_of(optax.transforms)
    for name in dir(ea):
        algo = getattr(ea, name)
        if isinstance(algo, type):
            for base in algo.__mro__:
                mod = sys.modules.get(base.__module__)
                if mod is not None and base.__module__.startswith("evosax."):
                    classes += [c for c in _records_of(mod) if c.__module__.startswith("evosax.")]
    return {f"{c.__module__}:{c.__qualname__}": c for c in classes}


def _load_cls(name) -> type:
    cls = allowed_classes().get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"state tree: class {str(name)[:120]!r} is not allowed in a checkpoint")
    return cls


def _dict_path(prefix: str, key: str, i: int) -> str:
    """Readable array names for identifier keys (``s.counters.elapsed_s``), the position otherwise."""
    return f"{prefix}.{key}" if key.isidentifier() else f"{prefix}.#{i}"


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(obj, prefix: str, arrays: dict):
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, bool):
        return {"t": "bool", "v": obj}
    if isinstance(obj, int):
        return {"t": "int", "v": obj}
    if isinstance(obj, float):
        arrays[prefix] = np.asarray(obj, np.float64)
        return {"t": "float"}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    if _is_key(obj):
        arrays[prefix] = np.asarray(jax.random.key_data(obj))
        return {"t": "key", "impl": str(jax.random.key_impl(obj))}
    if isinstance(obj, jax.Array):
        arrays[prefix] = np.asarray(obj)
        return {"t": "jax", "weak": bool(getattr(obj, "weak_type", False))}
    if isinstance(obj, (np.ndarray, np.generic)):
        arrays[prefix] = np.asarray(obj)
        return {"t": "np", "scalar": isinstance(obj, np.generic)}
    if _is_record_type(type(obj)) and _cls_name(obj) not in allowed_classes():
        raise TypeError(f"state tree: class {_cls_name(obj)} at {prefix} is not in treeio.allowed_classes()")
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return {"t": "namedtuple", "cls": _cls_name(obj),
                "fields": {f: flatten(getattr(obj, f), f"{prefix}.{f}", arrays) for f in obj._fields}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"t": "dataclass", "cls": _cls_name(obj),
                "fields": {f.name: flatten(getattr(obj, f.name), f"{prefix}.{f.name}", arrays)
                           for f in dataclasses.fields(obj) if f.init}}
    if isinstance(obj, (tuple, list)):
        return {"t": "tuple" if isinstance(obj, tuple) else "list",
                "items": [flatten(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("state tree: dict keys must be strings")
        return {"t": "dict", "keys": list(obj),
                "items": [flatten(v, _dict_path(prefix, k, i), arrays) for i, (k, v) in enumerate(obj.items())]}
    raise TypeError(f"state tree: cannot serialise {type(obj).__name__} at {prefix}")


def _weak(x):
    try:
        from jax._src.lax.lax import _convert_element_type
        return _convert_element_type(x, x.dtype, weak_type=True)
    except Exception:  # pragma: no cover - private API moved: a strong type is numerically the same
        return x


def unflatten(spec: dict, prefix: str, arrays: dict):
    t = spec["t"]
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        return spec["v"]
    if t == "float":
        return float(arrays[prefix])
    if t == "key":
        return jax.random.wrap_key_data(jnp.asarray(arrays[prefix]), impl=spec["impl"])
    if t == "jax":
        x = jnp.asarray(np.asarray(arrays[prefix]))
        return _weak(x) if spec.get("weak") else x
    if t == "np":
        a = np.array(arrays[prefix])
        return a[()] if spec.get("scalar") else a
    if t in ("namedtuple", "dataclass"):
        cls = _load_cls(spec.get("cls"))
        fields = spec.get("fields")
        names = cls._fields if t == "namedtuple" else [f.name for f in dataclasses.fields(cls) if f.init]
        if t == "namedtuple" and not issubclass(cls, tuple) or t == "dataclass" and issubclass(cls, tuple):
            raise ValueError(f"state tree: {prefix} is not a {t}")
        if not isinstance(fields, dict) or sorted(fields) != sorted(names):
            raise ValueError(f"state tree: {prefix} does not have the fields of {spec['cls']}")
        return cls(**{f: unflatten(s, f"{prefix}.{f}", arrays) for f, s in fields.items()})
    if t in ("tuple", "list"):
        items = [unflatten(s, f"{prefix}.{i}", arrays) for i, s in enumerate(spec["items"])]
        return tuple(items) if t == "tuple" else items
    if t == "dict":
        return {k: unflatten(s, _dict_path(prefix, k, i), arrays)
                for i, (k, s) in enumerate(zip(spec["keys"], spec["items"]))}
    raise ValueError(f"state tree: unknown node type {t!r}")


__all__ = ["flatten", "unflatten"]
