"""Reading a run's results: the hall of fame (finished run, or provisional from the last checkpoint), the PySR-style
table, the CSV, and rules by rank (``RUN_DIR:RANK``).

The table works on the hall-of-fame JSON document alone (``HallOfFame.to_json()``), so ``inspect`` needs no
compile; only rules (``RUN_DIR:RANK``) and provisional halls of fame go through the search layer's classes.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os

from ..rules.resolve import model_of_space
from .rundir import HOF_JSON, RunDirError, open_run_dir, read_metrics, run_status

SPLITS = ("search", "select", "final")


class ResultsError(RunDirError):
    """A run without results yet, a rank out of range... (one line, exit code 2)."""


# ---------------------------------------------------------------------------------------------------------------
def entries(hof_json: dict) -> list[dict]:
    return list(hof_json.get("entries") or [])


def best_index(hof_json: dict) -> int:
    b = hof_json.get("best", 0)
    return int(b) if isinstance(b, int) else 0


def split_score(entry: dict, split: str):
    """The fitness of an entry on one task split (``metrics[split]['fitness']``; the search fitness as fallback)."""
    m = (entry.get("metrics") or {}).get(split)
    if isinstance(m, dict):
        for k in ("fitness", "score"):
            if isinstance(m.get(k), (int, float)):
                return float(m[k])
    elif isinstance(m, (int, float)):
        return float(m)
    if split == "search" and isinstance(entry.get("fitness"), (int, float)):
        return float(entry["fitness"])
    return None


def flat_metrics(entry: dict) -> dict:
    """{'search.final_accuracy': 0.9, ...} for every numeric metric of every split."""
    out = {}
    for split, m in (entry.get("metrics") or {}).items():
        if isinstance(m, dict):
            for k, v in m.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) or v is None:
                    out[f"{split}.{k}"] = v
                elif isinstance(v, dict) and isinstance(v.get("mean"), (int, float)):
                    out[f"{split}.{k}"] = v["mean"]
        elif isinstance(m, (int, float)):
            out[split] = m
    return out


def table_rows(hof_json: dict, top: int | None = None) -> tuple[list[str], list[list]]:
    """Columns and rows of the hall-of-fame table (for wandb, CSV, inspect)."""
    cols = ["rank", "chosen", "complexity", "fitness", *[f"fitness_{s}" for s in SPLITS], "formula", "latex"]
    rows = []
    b = best_index(hof_json)
    for i, e in enumerate(entries(hof_json)[:top]):
        rows.append([e.get("rank", i), i == b, e.get("complexity"), _num(e.get("fitness")),
                     *[split_score(e, s) for s in SPLITS], e.get("formula", ""), e.get("latex", "")])
    return cols, rows


def hall_of_fame_csv(hof_json: dict) -> str:
    """The hall of fame as CSV with a header: table columns, then every metric as ``split.metric``."""
    es = entries(hof_json)
    cols, rows = table_rows(hof_json)
    mkeys = []
    for e in es:
        for k in flat_metrics(e):
            if k not in mkeys:
                mkeys.append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols + mkeys)
    for e, r in zip(es, rows):
        fm = flat_metrics(e)
        w.writerow([_csv(x) for x in r] + [_csv(fm.get(k)) for k in mkeys])
    return buf.getvalue()


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _csv(x):
    if x is None:
        return ""
    if isinstance(x, bool):
        return "*" if x else ""
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else ""
    return x


# ---------------------------------------------------------------------------------------------------------------
def load_hall_of_fame(run_dir: str, *, engine=None, provisional: bool = True) -> tuple[dict, str]:
    """(hall-of-fame JSON, status) of a run: the final one if the run finished, else provisional.

    The provisional hall of fame of a running/interrupted run comes from its newest checkpoint
    (``Search.hall_of_fame(state)`` if the engine has it, else ``Search.finalize(state)``, which scores on the
    select/final tasks). Raises :class:`ResultsError` when the run has no checkpoint yet.
    """
    rec = open_run_dir(run_dir)
    status = run_status(run_dir, rec)
    p = os.path.join(run_dir, HOF_JSON)
    if os.path.isfile(p) and (status == "finished" or not provisional):
        with open(p) as f:
            return json.load(f), status
    if not provisional:
        raise ResultsError(f"run '{run_dir}' has no hall of fame yet (status: {status})")
    return provisional_hall_of_fame(run_dir, engine=engine), status


def provisional_hall_of_fame(run_dir: str, *, engine=None) -> dict:
    """The hall of fame of a running/interrupted run, from its newest checkpoint, without any evaluation: the
    Pareto set of the engine's archive by *search* fitness (``metrics`` hold only ``search``). An engine with a
    ``Search.hall_of_fame(state)`` method provides it instead; one with neither is finalized (costly)."""
    from . import checkpoint as ckpt
    from .configs import load
    from .rundir import CONFIG_FILE, json_safe
    from .runner import default_engine

    loaded = ckpt.load_latest(run_dir)
    if loaded is None:
        raise ResultsError(f"run '{run_dir}' has no results yet (its first generation has not finished; "
                           "try again shortly)")
    eng = engine or default_engine()
    arrays, meta = loaded
    cfg = load(os.path.join(run_dir, CONFIG_FILE), what="run config")
    search = eng.Search(cfg)
    state = eng.state_from_tree(arrays, meta["state_meta"])
    fn = getattr(search, "hall_of_fame", None)
    if callable(fn):
        return json_safe(fn(state).to_json())
    if hasattr(state, "archive") and hasattr(state.archive, "pareto_slots"):
        return json_safe(_archive_hall_of_fame(search, state, eng))
    return json_safe(search.finalize(state).to_json())


def _archive_hall_of_fame(search, state, eng) -> dict:
    import numpy as np

    from ..rules.formula import to_latex, to_text
    from ..rules.program import Program, complexity, dce
    from ..search import hall_of_fame as H

    space, arch = search.space, state.archive
    progs, fits, seen = [], [], set()
    for c, j in arch.pareto_slots():
        h = arch.hashes[c][j]
        if h in seen:
            continue
        seen.add(h)
        progs.append(dce(arch.program(c, j), space))
        fits.append(float(arch.fitness[c, j]))
    cplx = [complexity(p, space) for p in progs]
    front = H.pareto_front(fits, cplx) if progs else []
    hofc = search.cfg.hall_of_fame
    entries = []
    if front:
        b = H.choose_best([fits[i] for i in front], [cplx[i] for i in front], hofc.choose, hofc.eps)
        order = [front[b]] + sorted((i for k, i in enumerate(front) if k != b), key=lambda i: -fits[i])
        for rank, i in enumerate(order):
            p = progs[i]
            entries.append(H.Entry(rank=rank, formula=to_text(p, space), latex=to_latex(p, space),
                                   complexity=int(cplx[i]), fitness=fits[i], metrics={"search": {"fitness": fits[i]}},
                                   program={f: np.asarray(getattr(p, f)).tolist() for f in Program._fields},
                                   space=space.to_dict()))
    info = {"name": search.cfg.name, "generations": int(getattr(state, "generation", 0)), "provisional": True,
            "chosen_on": "search"}
    return H.HallOfFame(entries, 0, hofc.choose, hofc.eps, info=info).to_json()


def rule_from_run(run_dir: str, rank: int, *, engine=None):
    """The :class:`~plasticity_search.rules.resolve.ResolvedRule` of entry ``rank`` of a run's hall of fame."""
    hof_json, _ = load_hall_of_fame(run_dir, engine=engine)
    es = entries(hof_json)
    if not es:
        raise ResultsError(f"run '{run_dir}' has an empty hall of fame")
    if not 0 <= rank < len(es):
        raise ResultsError(f"rank {rank} is out of range for run '{run_dir}' (ranks 0..{len(es) - 1})")
    return rule_from_entry(es[rank], name=f"{os.path.basename(os.path.normpath(run_dir))}:{rank}", engine=engine,
                           hof_json=hof_json, index=rank)


def rule_from_entry(entry: dict, *, name: str, engine=None, hof_json=None, index=None):
    """A ResolvedRule from one entry: through ``HallOfFame.from_json(..).rule(i)`` when available, else directly
    from the entry's program arrays and space (the same data)."""
    from ..rules.resolve import ResolvedRule

    rule = None
    if hof_json is not None and index is not None:
        try:
            if engine is None:
                from ..search.hall_of_fame import HallOfFame
            else:
                HallOfFame = engine.HallOfFame
            rule = HallOfFame.from_json(hof_json).rule(index)
        except ImportError:
            rule = None
    if rule is None:
        import numpy as np

        from ..export.json_format import _DTYPES
        from ..rules.program import Program, Space

        space = Space.from_dict(entry["space"])
        prog = Program(**{f: np.asarray(entry["program"][f], dtype=_DTYPES.get(f, np.int32))
                          for f in Program._fields})
        model = entry.get("model") or model_of_space(space)
        rule = ResolvedRule(prog, space, name, entry.get("formula", ""), model, dict(entry.get("defaults") or {}))
    rule.name = name
    if entry.get("model") in ("rate", "spiking"):
        rule.model = entry["model"]
    elif model_of_space(rule.space) == "spiking":
        rule.model = "spiking"
    return rule


def run_summary(run_dir: str) -> dict:
    rec = open_run_dir(run_dir)
    metrics = read_metrics(run_dir)
    return {"run_dir": run_dir, "name": rec.get("name"), "status": run_status(run_dir, rec),
            "generations_done": len(metrics), "generations": rec.get("generations"), "seed": rec.get("seed"),
            "elapsed_s": rec.get("elapsed_s"), "wandb": rec.get("wandb")}
