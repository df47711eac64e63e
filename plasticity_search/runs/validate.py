"""Checks of a run directory's files before any command uses them.

Run directories are shared between colleagues and downloaded with papers, so ``inspect``, ``run --resume`` and
``RUN_DIR:RANK`` treat every file as untrusted: :func:`check_run_dir` reads ``run.json``, ``hall_of_fame.json``,
``metrics.jsonl`` and the ``checkpoints`` entry with bounded readers (regular files only, bounded size and nesting)
and checks the type of every field the readers use, so that a damaged or hostile directory is one line naming the
file and the field (:class:`~.rundir.RunDirError`, exit code 2), never a traceback. The checkpoints themselves are
checked by :mod:`.checkpoint` (npz archives only, meta types) and the search state by the engine.
"""
from __future__ import annotations

import math
import os

from ..errors import has_control_characters
from ..rules.program import RuleError
from .rundir import CHECKPOINT_DIR, GEN_JSON, HOF_JSON, RunDirError, open_run_dir

HOF_SCHEMA = "plasticity-search/hall-of-fame/v1"
MAX_ENTRIES = 100_000
ENTRY_KEYS = ("rank", "formula", "latex", "complexity", "fitness", "metrics", "program", "space")

# run.json: field -> allowed types (None is always allowed)
RUN_FIELDS = {
    "name": (str,), "status": (str,), "created": (str,), "updated": (str,), "finished": (str,),
    "generations_done": (int,), "generations": (int,), "seed": (int,), "pid": (int,), "host": (str,),
    "version": (str,), "elapsed_s": (int, float), "config_sha256": (str,), "wandb": (dict,), "argv": (list,),
    "stopped_by": (str,), "error": (str,), "curves": (bool,),
}


def _type(v) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}.get(
        type(v), type(v).__name__) if v is not None else "null"


def _control(v) -> bool:
    """A string with control characters (:func:`~..errors.has_control_characters`): none of the tool's own writes
    holds one."""
    return isinstance(v, str) and has_control_characters(v)


def _ok(v, types) -> bool:
    if v is None:
        return True
    if isinstance(v, bool):
        return bool in types
    if isinstance(v, float) and not math.isfinite(v):
        return False
    if _control(v):         # every string field of these files is shown on one line of a terminal
        return False
    return isinstance(v, types)


def _what(v) -> str:
    """Why :func:`_ok` refused ``v``, for the message: 'control characters' or 'the wrong type (T)'."""
    return "control characters" if _control(v) else f"the wrong type ({_type(v)})"


def check_run_record(rec: dict, path: str) -> dict:
    """The run record's fields have the types the readers expect (RunDirError naming the field otherwise)."""
    where = f"'{path}/run.json'"
    for k, types in RUN_FIELDS.items():
        if k in rec and not _ok(rec[k], types):
            raise RunDirError(f"{where}: '{k}' has {_what(rec[k])}")
    from ..limits import MAX_GENERATIONS
    from ..tasks.base import MAX_SEED

    # ranges: what a config may hold (a generation count of 10^29 was shown as the run's budget and planned from)
    for k, hi in (("generations_done", MAX_GENERATIONS), ("generations", MAX_GENERATIONS), ("seed", MAX_SEED - 1),
                  ("pid", 2 ** 31 - 1)):
        v = rec.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= hi:
            raise RunDirError(f"{where}: '{k}' must be in [0, {hi}], got {str(v)[:40]}")
    if isinstance(rec.get("elapsed_s"), (int, float)) and rec["elapsed_s"] < 0:
        raise RunDirError(f"{where}: 'elapsed_s' must be >= 0, got {rec['elapsed_s']}")
    wb = rec.get("wandb")
    if isinstance(wb, dict):
        for k in ("mode", "id", "dir"):
            if k in wb and not _ok(wb[k], (str,)):
                raise RunDirError(f"{where}: 'wandb.{k}' has {_what(wb[k])}")
    return rec


def read_hall_of_fame(run_dir: str, texts: bool = True) -> dict | None:
    """The checked ``hall_of_fame.json`` of a run, or None if it has none (``texts``: see
    :func:`check_hall_of_fame`)."""
    from ..rules.documents import read_json_file

    p = os.path.join(run_dir, HOF_JSON)
    if not os.path.lexists(p):
        return None
    doc = read_json_file(p, "hall of fame", RunDirError)
    return check_hall_of_fame(doc, f"'{p}'", texts)


def check_hall_of_fame(d, where: str, texts: bool = True) -> dict:
    """The hall-of-fame document (``HallOfFame.to_json()``): every field the table, the report and ``RUN:RANK``
    read has the right type; each entry's program is checked against its space like a rule file. With ``texts``
    each entry's formula and LaTeX are derived from its program (sympy: what a reader shows), not taken from the
    file; :func:`check_run_dir`, which only checks, skips that work."""
    from ..rules.documents import defaults_from_doc, program_from_doc, space_from_doc
    from ..search.hall_of_fame import entry_text

    if not isinstance(d, dict):
        raise RunDirError(f"{where}: not a hall of fame (expected a mapping, got {_type(d)})")
    if d.get("schema") != HOF_SCHEMA:
        raise RunDirError(f"{where}: not a hall of fame (expected schema '{HOF_SCHEMA}')")
    es = d.get("entries")
    if not isinstance(es, list):
        raise RunDirError(f"{where}: 'entries' must be a list, got {_type(es)}")
    if len(es) > MAX_ENTRIES:
        raise RunDirError(f"{where}: more than {MAX_ENTRIES} entries")
    if "best" not in d:
        raise RunDirError(f"{where}: no 'best' (the index of the chosen entry)")
    best = d.get("best")
    if isinstance(best, bool) or not isinstance(best, int) or (es and not 0 <= best < len(es)):
        raise RunDirError(f"{where}: 'best' must be an entry index, got {str(best)[:40]!r}")
    for k, types in (("choose", (str,)), ("eps", (int, float)), ("info", (dict,)), ("baselines", (list,))):
        if k in d and not _ok(d[k], types):
            raise RunDirError(f"{where}: '{k}' has {_what(d[k])}")
    for k in ("choose", "eps", "info", "defaults"):      # written as values, never null; a reader has no default
        if k in d and d[k] is None:
            raise RunDirError(f"{where}: '{k}' has the wrong type (null)")
    if isinstance(d.get("eps"), (int, float)) and not isinstance(d["eps"], bool) and d["eps"] < 0:
        raise RunDirError(f"{where}: 'eps' must be >= 0, got {d['eps']}")
    for k, v in (d.get("info") or {}).items():     # shown by inspect and the report (the choice, the network)
        if isinstance(v, str) and not _ok(v, (str,)):
            raise RunDirError(f"{where}: 'info.{str(k)[:40]!r}' has {_what(v)}")
    try:
        defaults_from_doc(d.get("defaults"), f"{where}: defaults")
    except RuleError as exc:
        raise RunDirError(str(exc)) from None
    for j, b in enumerate(d.get("baselines") or []):
        if not isinstance(b, dict):
            raise RunDirError(f"{where}: baselines[{j}] must be a mapping, got {_type(b)}")
        for k, types in (("name", (str,)), ("formula", (str,)), ("feedback", (str,)), ("fitness", (int, float)),
                         ("metrics", (dict,))):
            if k in b and not _ok(b[k], types):
                raise RunDirError(f"{where}: baselines[{j}].{k} has {_what(b[k])}")
        _check_numbers(b.get("metrics"), f"{where}: baselines[{j}].metrics")
        _check_numbers(b.get("instances"), f"{where}: baselines[{j}].instances")
    for i, e in enumerate(es):
        w = f"{where}: entries[{i}]"
        if not isinstance(e, dict):
            raise RunDirError(f"{w} must be a mapping, got {_type(e)}")
        for k, types in (("rank", (int,)), ("formula", (str,)), ("latex", (str,)), ("complexity", (int,)),
                         ("fitness", (int, float)), ("metrics", (dict,)), ("paired", (dict,)),
                         ("instances", (list,)), ("model", (str,))):
            if k in e and not _ok(e[k], types):
                raise RunDirError(f"{w}.{k} has {_what(e[k])}")
        for k in ("rank", "complexity"):            # shown in every table: counts, never negative
            if isinstance(e.get(k), int) and e[k] < 0:
                raise RunDirError(f"{w}.{k} must be >= 0, got {e[k]}")
        for split, m in (e.get("metrics") or {}).items():
            if not _ok(m, (dict, int, float)):
                raise RunDirError(f"{w}.metrics.{str(split)[:40]} has {_what(m)}")
            _check_numbers(m, f"{w}.metrics.{str(split)[:40]}")
        _check_numbers(e.get("instances"), f"{w}.instances")
        missing = [k for k in ENTRY_KEYS if k not in e]
        if missing:
            raise RunDirError(f"{w} has no '{missing[0]}'")
        _check_paired(e.get("paired"), f"{w}.paired")
        try:
            space = space_from_doc(e["space"], f"{w}.space")
            prog = program_from_doc(e["program"], space, f"{w}.program")
        except RuleError as exc:
            raise RunDirError(str(exc).splitlines()[0]) from None
        if texts:     # the program's formula, not the file's text (an edited 'formula' labelled another rule)
            e["formula"], e["latex"] = entry_text(prog, space)
    return d


def _check_numbers(c, where: str) -> None:
    """A metrics mapping ({name: value}) or an instance list holds finite numbers or null (non-finite values are
    written as null): a string or a list there was shown as a score, a boolean as 1.0."""
    if not isinstance(c, (dict, list)):
        return
    for k, v in c.items() if isinstance(c, dict) else enumerate(c):
        if _control(k):
            raise RunDirError(f"{where}: a name has control characters")
        if v is not None and (isinstance(v, bool) or not _ok(v, (int, float))):
            raise RunDirError(f"{where}[{str(k)[:40]!r}] has {_what(v)}" if isinstance(k, str)
                              else f"{where}[{k}] has {_what(v)}")


PAIRED_FIELDS = {"delta": (int, float), "lo": (int, float), "hi": (int, float), "se": (int, float),
                 "wins": (int, float), "n": (int,), "diverged": (int, bool),
                 "ref_diverged": (int, bool)}


def _check_paired(p, where: str) -> None:
    """A paired comparison per baseline name (``search.stats.paired_difference``): numbers or null."""
    if p is None:
        return
    if not isinstance(p, dict):
        raise RunDirError(f"{where} must be a mapping, got {_type(p)}")
    for name, st in p.items():
        if _control(name):
            raise RunDirError(f"{where}: a baseline name has control characters")
        if st is None:
            continue
        if not isinstance(st, dict):
            raise RunDirError(f"{where}.{str(name)[:40]} must be a mapping, got {_type(st)}")
        for k, types in PAIRED_FIELDS.items():
            if k in st and not _ok(st[k], types):
                raise RunDirError(f"{where}.{str(name)[:40]}.{k} has {_what(st[k])}")


GEN_ROW_FIELDS = {"condition": (str,), "task": (str,), "layers": (str,), "metric": (str,), "seeds": (int,),
                  "rule": (int, float), "fa": (int, float), "bp": (int, float), "network": (dict,)}


def read_generalization(run_dir: str) -> dict | None:
    """The checked ``generalization.json`` of a run, or None if it has none."""
    from ..rules.documents import read_json_file

    p = os.path.join(run_dir, GEN_JSON)
    if not os.path.lexists(p):
        return None
    d = read_json_file(p, "generalization report", RunDirError)
    where = f"'{p}'"
    if not isinstance(d, dict):
        raise RunDirError(f"{where}: expected a mapping, got {_type(d)}")
    for k in ("rule", "split"):
        if k in d and not _ok(d[k], (str,)):
            raise RunDirError(f"{where}: '{k}' has {_what(d[k])}")
    rows = d.get("rows")
    if not isinstance(rows, list):
        raise RunDirError(f"{where}: 'rows' must be a list, got {_type(rows)}")
    for i, r in enumerate(rows):
        w = f"{where}: rows[{i}]"
        if not isinstance(r, dict):
            raise RunDirError(f"{w} must be a mapping, got {_type(r)}")
        for k, types in GEN_ROW_FIELDS.items():
            if k in r and not _ok(r[k], types):
                raise RunDirError(f"{w}.{k} has {_what(r[k])}")
        for k in ("vs_fa", "vs_bp"):
            if r.get(k) is not None:
                _check_paired({k: r[k]}, w)
    return d


def check_checkpoint_dir(run_dir: str) -> None:
    p = os.path.join(run_dir, CHECKPOINT_DIR)
    if os.path.lexists(p) and not os.path.isdir(p):
        raise RunDirError(f"run directory '{run_dir}': '{CHECKPOINT_DIR}' is not a directory")


def check_run_dir(run_dir: str) -> dict:
    """Every file of a run directory that the commands read, checked; returns the run record."""
    rec = open_run_dir(run_dir)
    check_checkpoint_dir(run_dir)
    read_hall_of_fame(run_dir, texts=False)        # the reader that shows it derives the formulas
    read_generalization(run_dir)
    return rec


__all__ = ["check_checkpoint_dir", "check_hall_of_fame", "check_run_dir", "check_run_record", "read_generalization",
           "read_hall_of_fame"]
