"""Checks of what comes from files: bounded JSON reading, and rule documents (space, program arrays, defaults).

Everything a file holds is checked before it is used, so that a hostile or damaged file is one line naming the file
and the field, never a traceback, a hang, or a silently clamped value:

* :func:`read_json_file` reads a *regular* file (a FIFO is refused before it is opened, so it cannot block) of
  bounded size, UTF-8, with bounded nesting (a JSON document nested 100000 levels deep is an error, not a
  ``RecursionError``) and without ``NaN`` / ``Infinity``.
* :func:`space_from_doc`, :func:`program_from_doc` and :func:`defaults_from_doc` build a rule's parts from their JSON
  form with every type and range checked: list lengths must match the space; ops, operands, terms' registers,
  synapse factors and targets must be in range (the interpreter would otherwise clamp them); constants and
  coefficients must be finite float32 numbers; ``term_on`` must be booleans.
"""
from __future__ import annotations

import json
import math
import os
import stat

import numpy as np

from ..limits import FLOAT32_MAX, FLOAT32_NORMAL_MIN, MAX_INSTRUCTIONS, MAX_TERMS  # noqa: F401  (re-exported; a rule's space as a config's)
from .program import PROGRAM_DTYPES, Program, RuleError, Space

MAX_JSON_BYTES = 64 << 20      # a rule file or a run's JSON file
MAX_JSON_DEPTH = 64            # nesting of JSON containers

_INT_FIELDS = ("post_op", "post_a", "post_b", "pre_op", "pre_a", "pre_b", "term_p", "term_q", "term_s", "term_tgt")
_FLOAT_FIELDS = ("post_c", "pre_c", "term_coef")


def read_json_file(path: str, what: str, error=RuleError, max_bytes: int = MAX_JSON_BYTES):
    """The JSON document of a regular file; ``error(one line naming the file)`` if it cannot be read or parsed."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"cannot read {what} '{path}': {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise error(f"{what} '{path}' is {kind}")
    if st.st_size > max_bytes:
        raise error(f"{what} '{path}' is larger than {max_bytes} bytes")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what} '{path}': {exc.strerror}") from None
    return parse_json(data, f"{what} '{path}'", error)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:       # JSON parsers disagree on which copy wins; ours would keep the last one silently
            raise ValueError(f"key {str(k)[:60]!r} appears twice in one object")
        out[k] = v
    return out


MAX_JSON_INT_DIGITS = 30      # no count, seed or index of these files comes near; 10**400 is no float at all


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_JSON_INT_DIGITS})")
    return int(text)


def parse_json(data: bytes | str, what: str, error=RuleError, allow_nan: bool = False):
    """``json.loads`` with bounded nesting, no key twice in one object (and no NaN / Infinity unless
    ``allow_nan``); ``error`` (one line starting with ``what``)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start})") from None
    depth = _max_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_int=_bounded_int,
                          **({} if allow_nan else {"parse_constant": _refuse_constant}))
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON: {str(exc)[:100] or type(exc).__name__}") from None


def _max_depth(text: str) -> int:
    """Nesting depth of JSON brackets outside strings (a cheap scan, before the recursive parser runs)."""
    depth = best = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > MAX_JSON_DEPTH:
                    return best
        elif ch in "]}":
            depth -= 1
    return best


# ---------------------------------------------------------------------------------------------------------------
def _type(v) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}.get(
        type(v), type(v).__name__) if v is not None else "null"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def space_from_doc(d, where: str = "space") -> Space:
    """A Space from its JSON form (``Space.to_dict()``), every field type-checked and bounded."""
    if not isinstance(d, dict):
        raise RuleError(f"{where}: expected a mapping, got {_type(d)}")
    known = {"post_vars", "pre_vars", "global_vars", "ops", "syn", "n_post", "n_pre", "n_terms", "elig", "name",
             "structure", "weight_terms", "m_offset"}
    for k, v in d.items():
        if k not in known:
            raise RuleError(f"{where}.{k}: unknown key (known: {', '.join(sorted(known))})")
        if k in ("post_vars", "pre_vars", "global_vars", "ops", "syn"):
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or len(v) > 256:
                raise RuleError(f"{where}.{k}: expected a list of names, got {_type(v)}")
        elif k in ("n_post", "n_pre", "n_terms", "weight_terms"):
            lo, hi = (1, MAX_TERMS) if k in ("n_terms", "weight_terms") else (0, MAX_INSTRUCTIONS)
            if not _is_int(v):
                raise RuleError(f"{where}.{k}: expected int, got {_type(v)} {v!r}"[:200])
            if not lo <= v <= hi:
                raise RuleError(f"{where}.{k}: must be in [{lo}, {hi}], got {v}")
        elif k in ("elig", "m_offset") and not isinstance(v, bool):
            raise RuleError(f"{where}.{k}: expected bool, got {_type(v)}")
        elif k in ("name", "structure") and not isinstance(v, str):
            raise RuleError(f"{where}.{k}: expected str, got {_type(v)}")
    try:
        return Space.from_dict(d)
    except RuleError as exc:
        raise RuleError(f"{where}: {str(exc).splitlines()[0]}") from None
    except (TypeError, ValueError) as exc:
        raise RuleError(f"{where}: malformed ({str(exc).splitlines()[0][:100]})") from None


def program_from_doc(d, space: Space, where: str = "program") -> Program:
    """A Program from its JSON form (``Program.to_dict()``): every field a flat list of the right length and
    element type, then :func:`check_program`."""
    if not isinstance(d, dict):
        raise RuleError(f"{where}: expected a mapping of arrays, got {_type(d)}")
    lengths = {"post": space.n_post, "pre": space.n_pre, "term": space.n_terms}
    arrays = {}
    for f in Program._fields:
        if f not in d:
            raise RuleError(f"{where}: missing array '{f}'")
        v, n = d[f], lengths[f.split("_")[0]]
        if not isinstance(v, list):
            raise RuleError(f"{where}.{f}: expected a list, got {_type(v)}")
        if len(v) != n:
            raise RuleError(f"{where}.{f}: has {len(v)} entries, the space says {n}")
        for i, x in enumerate(v):
            if f == "term_on":
                ok = isinstance(x, bool)
            elif f in _FLOAT_FIELDS:
                ok = isinstance(x, (int, float)) and not isinstance(x, bool)
            else:
                ok = _is_int(x)
            if not ok:
                want = "bool" if f == "term_on" else "number" if f in _FLOAT_FIELDS else "int"
                raise RuleError(f"{where}.{f}[{i}]: expected {want}, got {_type(x)} {x!r}"[:200])
            if f in _FLOAT_FIELDS and not (math.isfinite(x) and abs(x) <= FLOAT32_MAX):
                raise RuleError(f"{where}.{f}[{i}]: must be a finite float32 number, got {x}")
            if f in _INT_FIELDS and not -2**31 <= x < 2**31:
                raise RuleError(f"{where}.{f}[{i}]: out of range, got {x}")
        arrays[f] = np.asarray(v, dtype=PROGRAM_DTYPES[f]).reshape(n)
        if f in _FLOAT_FIELDS:      # the compiled rule flushes subnormal numbers to zero: the rule is that rule
            arrays[f][np.abs(arrays[f]) < FLOAT32_NORMAL_MIN] = 0.0
    prog = Program(**arrays)
    check_program(prog, space, where)
    return prog


def check_program(prog: Program, space: Space, where: str = "program", batch: tuple = ()) -> None:
    """Every index of a program within range for its space (the interpreter would clamp them silently):
    ops, operands (instruction i reads registers 0..n_inputs+i-1), terms' registers, synapse factors, targets;
    constants and coefficients finite float32. ``batch``: the leading shape of a population of programs (every
    field ``batch + (n,)``); an error names the first bad entry by its flat index."""
    p = Program(*[np.asarray(x) for x in prog])
    batch = tuple(batch)
    for f in Program._fields:       # a float index would reach the interpreter's selects
        kind = np.dtype(PROGRAM_DTYPES[f]).kind
        if getattr(p, f).dtype.kind not in ({"i", "u"} if kind in "iu" else {kind}):
            raise RuleError(f"{where}.{f}: has dtype {getattr(p, f).dtype}, expected "
                            f"{ {'i': 'integers', 'u': 'integers', 'f': 'floats', 'b': 'booleans'}[kind]}")
    for side, n in (("post", space.n_post), ("pre", space.n_pre)):
        for f in ("op", "a", "b", "c"):
            if getattr(p, f"{side}_{f}").shape != batch + (n,):
                raise RuleError(f"{where}.{side}_{f}: has shape {getattr(p, f'{side}_{f}').shape}, space says "
                                f"{batch + (n,)}")
        n_in = space.n_inputs(side)
        _in_range(p, f"{side}_op", 0, len(space.ops), where)
        for f in ("a", "b"):
            v = getattr(p, f"{side}_{f}").reshape(int(np.prod(batch, dtype=np.int64)), n)
            bad = np.argwhere((v < 0) | (v >= n_in + np.arange(n)))
            if bad.size:
                r, i = (int(x) for x in bad[0])
                at = f"[{r}, {i}]" if batch else f"[{i}]"
                raise RuleError(f"{where}.{side}_{f}{at}: register {int(v[r, i])} out of range "
                                f"(instruction {i} reads registers 0..{n_in + i - 1})")
        _finite(p, f"{side}_c", where)
    for f in Program._fields[8:]:
        if getattr(p, f).shape != batch + (space.n_terms,):
            raise RuleError(f"{where}.{f}: has shape {getattr(p, f).shape}, space says {batch + (space.n_terms,)}")
    _in_range(p, "term_p", 0, space.n_registers("post"), where)
    _in_range(p, "term_q", 0, space.n_registers("pre"), where)
    _in_range(p, "term_s", 0, len(space.syn), where)
    _in_range(p, "term_tgt", 0, 2 if space.elig else 1, where)
    _finite(p, "term_coef", where)


def _in_range(p: Program, f: str, lo: int, hi: int, where: str) -> None:
    v = np.asarray(getattr(p, f)).reshape(-1)
    bad = np.nonzero((v < lo) | (v >= hi))[0]
    if bad.size:
        i = int(bad[0])
        raise RuleError(f"{where}.{f}[{i}]: {int(v[i])} out of range [{lo}, {hi - 1}]")


def _finite(p: Program, f: str, where: str) -> None:
    v = np.asarray(getattr(p, f), np.float64).reshape(-1)
    bad = np.nonzero(~np.isfinite(v) | (np.abs(v) > FLOAT32_MAX))[0]
    if bad.size:
        raise RuleError(f"{where}.{f}[{int(bad[0])}]: must be a finite float32 number, got {v[bad[0]]}")


# simulation defaults a rule may carry: positive numbers (time constants in steps or ms), and w_bounds [lo, hi]
_POSITIVE_DEFAULTS = ("lr", "feedback_lr", "tau_mean", "tau_theta", "tau_plus", "tau_minus", "tau_x", "tau_y",
                      "tau_elig")


def defaults_from_doc(d, where: str = "defaults") -> dict:
    """A rule's simulation defaults: a mapping of names to finite numbers (positive learning rates and time
    constants), ``w_bounds`` a pair ``[lo, hi]`` with lo < hi (or null: unbounded)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise RuleError(f"{where}: expected a mapping of names to numbers, got {_type(d)}")
    out = {}
    for k, v in d.items():
        if k == "w_bounds":
            if v is None:           # unbounded (what a spiking run without w_bounds writes): the same as no entry
                continue
            if (not isinstance(v, list) or len(v) != 2
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
                    or not v[0] < v[1]):
                raise RuleError(f"{where}.w_bounds: expected [lo, hi] with finite lo < hi, got {v!r}"[:200])
            out[k] = [float(x) for x in v]
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RuleError(f"{where}.{k}: expected a number, got {_type(v)} {v!r}"[:200])
        if not math.isfinite(v):
            raise RuleError(f"{where}.{k}: must be a finite number, got {v}")
        if k in _POSITIVE_DEFAULTS and not v > 0:
            raise RuleError(f"{where}.{k}: must be > 0, got {v}")
        out[k] = v
    return out


def rule_parts_from_doc(d: dict, where: str = "rule file") -> tuple[Space, Program, dict]:
    """(space, program, defaults) of a rule file document, all checked; the text fields must be strings."""
    for k in ("name", "formula", "model", "reference", "latex"):
        if k in d and not isinstance(d[k], str):
            raise RuleError(f"{where}: '{k}' must be a string, got {_type(d[k])}")
    if d.get("model", "rate") not in ("rate", "spiking"):
        raise RuleError(f"{where}: 'model' must be 'rate' or 'spiking', got {str(d.get('model'))[:40]!r}")
    if "space" not in d or "program" not in d:
        raise RuleError(f"{where}: missing '{'space' if 'space' not in d else 'program'}'")
    space = space_from_doc(d["space"], f"{where}: space")
    prog = program_from_doc(d["program"], space, f"{where}: program")
    return space, prog, defaults_from_doc(d.get("defaults"), f"{where}: defaults")


__all__ = ["check_program", "defaults_from_doc", "parse_json", "program_from_doc", "read_json_file",
           "rule_parts_from_doc", "space_from_doc"]
