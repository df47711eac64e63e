"""Reading a run's results: the hall of fame (finished run, or provisional from the last checkpoint), the PySR-style
table, the CSV, and rules by rank (``RUN_DIR:RANK``).

The table works on the hall-of-fame JSON document alone (``HallOfFame.to_json()``), so ``inspect`` needs no
compile; only rules (``RUN_DIR:RANK``) and provisional halls of fame go through the search layer's classes.
"""
from __future__ import annotations

import csv
import io
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


def baselines(hof_json: dict) -> list[dict]:
    """The run's baselines ({name, formula, feedback, fitness, metrics, instances}); [] for older runs."""
    return [b for b in (hof_json.get("baselines") or []) if isinstance(b, dict) and isinstance(b.get("name"), str)]


def paired(entry: dict, name: str) -> dict | None:
    p = (entry.get("paired") or {}).get(name)
    return p if isinstance(p, dict) else None


def table_rows(hof_json: dict, top: int | None = None) -> tuple[list[str], list[list]]:
    """Columns and rows of the hall-of-fame table (for wandb, CSV, inspect): the entries, then the baselines
    (``kind`` baseline, fitness on the compared split); ``delta_vs_B`` / ``lo_vs_B`` / ``hi_vs_B``: the paired
    difference to baseline B and its 95% interval."""
    names = [b["name"] for b in baselines(hof_json)]
    cmp_split = (hof_json.get("info") or {}).get("compared_on", "final")
    cols = ["rank", "chosen", "complexity", "fitness", *[f"fitness_{s}" for s in SPLITS],
            *[f"{k}_vs_{n}" for n in names for k in ("delta", "lo", "hi")], "formula", "latex", "kind"]
    rows = []
    b = best_index(hof_json)
    for i, e in enumerate(entries(hof_json)[:top]):
        ps = [paired(e, n) or {} for n in names]
        rows.append([e.get("rank", i), i == b, e.get("complexity"), _num(e.get("fitness")),
                     *[split_score(e, s) for s in SPLITS], *[_num(p.get(k)) for p in ps for k in ("delta", "lo", "hi")],
                     e.get("formula", ""), e.get("latex", ""), "rule"])
    for bl in baselines(hof_json):
        rows.append([None, False, None, None, *[_num(bl.get("fitness")) if s == cmp_split else None for s in SPLITS],
                     *[None] * (3 * len(names)), bl.get("formula", ""), "", f"baseline {bl['name']}"])
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
    cmp_split = (hof_json.get("info") or {}).get("compared_on", "final")
    flats = [flat_metrics(e) for e in es]
    flats += [{f"{cmp_split}.{k}": v for k, v in (bl.get("metrics") or {}).items()} for bl in baselines(hof_json)]
    for fm, r in zip(flats, rows):
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
def load_hall_of_fame(run_dir: str, *, provisional: bool = True) -> tuple[dict, str]:
    """(hall-of-fame JSON, status) of a run: the final one if the run finished, else provisional.

    The provisional hall of fame of a running/interrupted run comes from its newest checkpoint
    (``Search.hall_of_fame(state)``: no evaluation). Raises :class:`ResultsError` when the run has no checkpoint
    yet.
    """
    rec = open_run_dir(run_dir)
    status = run_status(run_dir, rec)
    p = os.path.join(run_dir, HOF_JSON)
    if os.path.isfile(p) and (status == "finished" or not provisional):
        from .validate import read_hall_of_fame

        return read_hall_of_fame(run_dir), status      # checked; formulas as their programs give them
    if not provisional:
        raise ResultsError(f"run '{run_dir}' has no hall of fame yet (status: {status})")
    return provisional_hall_of_fame(run_dir), status


def provisional_hall_of_fame(run_dir: str) -> dict:
    """The hall of fame of a running/interrupted run, from its newest checkpoint, without any evaluation: the
    Pareto set of the engine's archive by *search* fitness (``metrics`` hold only ``search``)."""
    from ..search import engine as eng
    from . import checkpoint as ckpt
    from .configs import load_run_config
    from .rundir import json_safe

    loaded = ckpt.load_latest(run_dir)
    if loaded is None:
        raise ResultsError(f"run '{run_dir}' has no results yet (its first generation has not finished; "
                           "try again shortly)")
    arrays, meta = loaded
    cfg = load_run_config(run_dir)          # refused if edited since the run started
    search = eng.Search(cfg)
    try:
        state = eng.state_from_tree(arrays, meta["state_meta"])
        search.check_state(state)
    except ValueError as exc:
        raise ResultsError(f"run '{run_dir}': {str(exc).splitlines()[0][:300]}") from None
    return json_safe(search.hall_of_fame(state).to_json())


def rule_from_run(run_dir: str, rank: int):
    """The :class:`~plasticity_search.rules.resolve.ResolvedRule` of entry ``rank`` of a run's hall of fame."""
    hof_json, _ = load_hall_of_fame(run_dir)
    es = entries(hof_json)
    if not es:
        raise ResultsError(f"run '{run_dir}' has an empty hall of fame")
    if not 0 <= rank < len(es):
        raise ResultsError(f"rank {rank} is out of range for run '{run_dir}' (ranks 0..{len(es) - 1})")
    return rule_from_entry(es[rank], name=f"{os.path.basename(os.path.normpath(run_dir))}:{rank}",
                           hof_json=hof_json, index=rank)


def rule_from_entry(entry: dict, *, name: str, hof_json=None, index=None):
    """A ResolvedRule from one entry: through ``HallOfFame.from_json(..).rule(i)`` when the whole hall of fame is
    given, else directly from the entry's program arrays and space (the same data)."""
    from ..rules.program import Program, Space
    from ..rules.resolve import ResolvedRule
    from ..search.hall_of_fame import HallOfFame

    if hof_json is not None and index is not None:
        rule = HallOfFame.from_json(hof_json).rule(index)
    else:
        space = Space.from_dict(entry["space"])
        prog = Program.from_dict(entry["program"])
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
    status = run_status(run_dir, rec)
    return {"run_dir": run_dir, "name": rec.get("name"), "status": status,
            # metrics.jsonl runs ahead of run.json (written at checkpoints); a damaged log does not hide them
            "generations_done": max(len(metrics), int(rec.get("generations_done") or 0)),
            "generations": rec.get("generations"), "seed": rec.get("seed"),
            "elapsed_s": rec.get("elapsed_s"), "wandb": rec.get("wandb"),
            "error": rec.get("error") if status == "failed" else None}
