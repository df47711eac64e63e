"""The search state and its exact serialisation.

``state_to_tree`` / ``state_from_tree`` turn a :class:`SearchState` into npz-able arrays plus JSON-able metadata and
back, exactly: a restored state continues bit-for-bit. The strategy's own state (a pytree of records listed in
:func:`.treeio.allowed_classes`) is stored under ``strategy``.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from ..rules.documents import check_program
from ..rules.program import Program, Space
from .hall_of_fame import Archive
from .treeio import flatten, unflatten

TREE_SCHEMA = "plasticity-search/search-state/v1"


@dataclass
class SearchState:
    generation: int                 # completed generations
    key: jax.Array                  # typed PRNG key
    strategy: Any                   # the strategy's state: RegEvoState | evosax state | MetaGradState | ...
    fec: dict                       # FEC hash -> raw search fitness
    select: dict                    # FEC hash -> select fitness
    archive: Archive                # per complexity: best programs by search fitness
    select_archive: Archive         # per complexity: best programs by select fitness
    counters: dict = field(default_factory=dict)   # n_candidates, n_hits, n_evaluated, n_select, elapsed_s


def state_to_tree(state: SearchState) -> tuple[dict, dict]:
    """(arrays {path: np.ndarray}, meta JSON-able) of a state; see :func:`state_from_tree`."""
    arrays: dict = {}
    tree = {
        "generation": state.generation, "key": state.key, "strategy": state.strategy,
        "fec_keys": list(state.fec), "fec_vals": np.asarray(list(state.fec.values()), np.float64),
        "select_keys": list(state.select), "select_vals": np.asarray(list(state.select.values()), np.float64),
        "archive": _archive_tree(state.archive), "select_archive": _archive_tree(state.select_archive),
        "counters": {k: (float(v) if isinstance(v, float) else int(v)) for k, v in state.counters.items()},
    }
    spec = flatten(tree, "s", arrays)
    return arrays, {"schema": TREE_SCHEMA, "tree": spec}


def state_from_tree(arrays: dict, meta: dict) -> SearchState:
    if not isinstance(meta, dict) or meta.get("schema") != TREE_SCHEMA:
        raise ValueError(f"not a search state (expected schema '{TREE_SCHEMA}')")
    try:
        return _state_from(unflatten(meta["tree"], "s", dict(arrays)))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(f"damaged search state: {msg}") from None


def check_state(state: SearchState, space: Space, per: tuple[int, int] | None = None) -> None:
    """A ValueError naming the first thing a resumed search could not run on (a damaged or edited checkpoint
    that :func:`state_from_tree` could read): every program in the strategy state and the archives within range
    for ``space`` (the interpreter would clamp bad indices silently), each population's arrays of one length,
    fitness without NaN or +inf (a +inf would win every tournament), the archives of ``space`` with ``per`` slots
    per complexity level (the hall of fame's and the select archive's, if given)."""
    def walk(x, where):
        if isinstance(x, Program):
            check_program(x, space, where, np.shape(x.term_on)[:-1])
        elif isinstance(x, tuple) and hasattr(x, "_fields"):        # a strategy's NamedTuple state
            for f in x._fields:
                walk(getattr(x, f), f"{where}.{f}")
            if isinstance(getattr(x, "population", None), Program):
                n = np.shape(x.population.term_on)[:-1]
                for f in ("fitness", "birth"):
                    if hasattr(x, f) and np.shape(getattr(x, f)) != n:
                        raise ValueError(f"{where}.{f} has shape {np.shape(getattr(x, f))}, its population {n}")
            for f, kinds in (("fitness", "f"), ("birth", "iu")):
                if hasattr(x, f) and np.asarray(getattr(x, f)).dtype.kind not in kinds:
                    raise ValueError(f"{where}.{f} has dtype {np.asarray(getattr(x, f)).dtype}")
            if hasattr(x, "fitness"):
                _fitness_ok(x.fitness, f"{where}.fitness")
            if hasattr(x, "birth") and hasattr(x, "counter"):     # birth numbers count up from 0 to counter
                counter, birth = np.asarray(x.counter), np.asarray(x.birth)
                if counter.dtype.kind not in "iu" or counter.shape != () or int(counter) < 0:
                    raise ValueError(f"{where}.counter must be a count >= 0, got {counter!r}")
                if birth.size and (int(birth.min()) < 0 or int(birth.max()) >= int(counter)):
                    raise ValueError(f"{where}.birth must lie in [0, counter = {int(counter)}), got "
                                     f"[{int(birth.min())}, {int(birth.max())}]")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{where}.{k}")

    try:
        if isinstance(state.generation, bool) or not isinstance(state.generation, int) or state.generation < 0:
            raise ValueError(f"generation must be a count >= 0, got {state.generation!r}")
        for name in ("fec", "select"):      # the caches of scored programs: finite, or -inf (a diverged one)
            _fitness_ok(list(getattr(state, name).values()), f"the {name} cache")
        for k, v in state.counters.items():  # counts, wall time and the early-stop bests: numbers, never NaN/+inf
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v == math.inf:
                raise ValueError(f"counter {str(k)[:40]!r} must be a number (not NaN or +inf), got {str(v)[:40]!r}")
            if str(k).startswith("n_") or k == "elapsed_s":
                if v < 0:
                    raise ValueError(f"counter {str(k)[:40]!r} must be >= 0, got {v!r}")
        walk(state.strategy, "strategy")
        for j, name in enumerate(("archive", "select_archive")):
            a = getattr(state, name)
            if a.space != space:
                raise ValueError(f"{name} belongs to another rule space")
            want = per[j] if per is not None else a.per
            if isinstance(a.per, bool) or not isinstance(a.per, int) or a.per != want or not 1 <= a.per <= 10_000:
                raise ValueError(f"{name} has {str(a.per)[:20]} slots per complexity level, not {want}")
            n = (Archive(space, a.per).levels, a.per)       # [complexity level, slot]
            check_program(a.programs, space, name, n)
            if np.shape(a.fitness) != n or len(a.hashes) != n[0] or any(len(h) != n[1] for h in a.hashes):
                raise ValueError(f"{name}: fitness {np.shape(a.fitness)} or hashes do not match {n} slots")
            _fitness_ok(a.fitness, f"{name}.fitness")
    except ValueError as exc:       # RuleError included
        raise ValueError(f"damaged search state: {str(exc).splitlines()[0][:200]}") from None


def _fitness_ok(f, where: str) -> None:
    v = np.asarray(f, np.float64)
    if np.any(np.isnan(v) | (v == np.inf)):
        raise ValueError(f"{where} holds NaN or +inf")


def _cache_from(t: dict, name: str) -> dict:
    keys, vals = t[f"{name}_keys"], np.asarray(t[f"{name}_vals"]).reshape(-1)
    if len(keys) != len(vals):      # zip would cut the longer one silently
        raise ValueError(f"{name}_keys ({len(keys)}) and {name}_vals ({len(vals)}) differ in length")
    return {k: float(v) for k, v in zip(keys, vals)}


def _state_from(t: dict) -> SearchState:
    return SearchState(
        generation=int(t["generation"]), key=t["key"], strategy=t["strategy"],
        fec=_cache_from(t, "fec"), select=_cache_from(t, "select"),
        archive=_archive_from(t["archive"]), select_archive=_archive_from(t["select_archive"]),
        counters=dict(t["counters"]))


def _archive_tree(a: Archive) -> dict:
    return {"space": a.space.to_dict(), "per": a.per, "programs": a.programs, "fitness": a.fitness,
            "hashes": [list(h) for h in a.hashes]}


def _archive_from(t: dict) -> Archive:
    d = t["space"]
    return Archive(Space.from_dict(d), int(t["per"]), Program(*[np.asarray(x) for x in t["programs"]]),
                   np.asarray(t["fitness"]), t["hashes"])


def copy_state(s: SearchState) -> SearchState:
    """A copy that a step may change without touching ``s`` (the strategy state is immutable JAX arrays)."""
    cp = lambda a: Archive(a.space, a.per, Program(*[np.array(x) for x in a.programs]), np.array(a.fitness),  # noqa
                           [list(h) for h in a.hashes])
    return SearchState(s.generation, s.key, s.strategy, dict(s.fec), dict(s.select), cp(s.archive),
                       cp(s.select_archive), dict(s.counters))


def np_prog(p) -> Program:
    """``p`` with numpy fields (device arrays copied in one transfer)."""
    return Program(*[np.asarray(x) for x in jax.device_get(tuple(p))])


def take(p: Program, idx) -> Program:
    idx = np.asarray(idx, np.int64)
    return Program(*[np.asarray(x)[idx] for x in p])


__all__ = ["SearchState", "TREE_SCHEMA", "state_to_tree", "state_from_tree", "check_state", "copy_state", "np_prog",
           "take"]
