"""The end of a search: the hall of fame, its baselines and the line that says how the best rule was chosen.

* :func:`finalize`: the Pareto candidates of both archives, snapped to nice constants (``hall_of_fame.snap``) and
  canonicalised, re-scored on the search, select and final tasks; the best is chosen on the select tasks
  (``hall_of_fame.select_seeds`` seeds); entries carry paired differences to the baselines on the same instances.
* :func:`provisional`: the Pareto set of the archive by search fitness, without any evaluation (a running run).

``search`` is the :class:`.engine.Search` (config, space, fitness, tasks and its evaluators).
"""
from __future__ import annotations

import math

import numpy as np

from ..rules.program import complexity, dce, index, stack
from .baselines import (as_array, baseline_groups, group_call, group_key, instance_fitness, resolve_baselines,
                        score_baselines as _score_baselines)
from .canonical import canonical, snap_variants
from .fixed import search_fixed
from .config import default_baselines, rule_settings
from .panels import baseline_label, panels, rank_label
from .fitness import json_float, summarize_metrics
from .evaluator import memoized, program_key
from .hall_of_fame import Entry, HallOfFame, choose_best, entry_text, pareto_front
from .state import SearchState, copy_state, np_prog
from .stats import mean_and_se, paired_difference


def finalize(search, state: SearchState) -> HallOfFame:
    """Re-score the Pareto candidates on select and final tasks and build the hall of fame."""
    state = copy_state(state)
    cands = [prog for _, prog in _pareto_candidates(state)]
    hofc = search.cfg.hall_of_fame
    if not cands:
        return HallOfFame([], 0, hofc.choose, hofc.eps, defaults(search), info(search, state))
    space = search.space
    progs = stack([dce(p, space) for p in cands])
    ev = search.evaluator("search")
    if hofc.snap:       # padded to the generations' batch: no new compile
        progs = snap(search, progs, ev.evaluate(progs, min_size=search.chunk)[0])
    # the host work per program (sympy) is kept in the memo of a finalize computed ahead (.ahead.FinalizeAhead)
    progs = stack([memoized("canonical", program_key(progs, i), lambda i=i: canonical(index(progs, i), space))
                   for i in range(progs.term_on.shape[0])])
    text = [memoized("entry_text", program_key(progs, i), lambda i=i: entry_text(index(progs, i), space))
            for i in range(progs.term_on.shape[0])]
    search_fit, search_m = ev.evaluate(progs, min_size=search.chunk)
    cplx = search.evaluators.complexities(progs)
    scores = {"search": (search_fit, search_m)}
    cmp_split = comparison_split(search)
    cand_curves = None
    # the select choice first (its calls usually have the final split's shapes: side by side, two threads would
    # compile the same program twice), then on the comparison split the candidates and the baselines of their
    # space (FA) in one call, side by side with the other baselines' calls (BP)
    par = search.evaluators.devices is None          # a device mesh: one sharded call after the other
    if search.tasks["select"] and cmp_split != "select":
        scores["select"] = search.choice_evaluator().evaluate(progs)
    if cmp_split == "search":
        baselines, base_curves, _ = search.score_baselines(cmp_split, min_size=len(progs.term_on), parallel=par)
    else:
        baselines, base_curves, (fit_s, m_s, cand_curves) = search.score_baselines(cmp_split, with_programs=progs,
                                                                                   parallel=par)
        scores[cmp_split] = (fit_s, m_s)
    choose_split = "select" if "select" in scores else "search"
    cf = scores[choose_split][0]
    front = pareto_front(list(cf), list(cplx))
    best_local = choose_best([cf[i] for i in front], [cplx[i] for i in front], hofc.choose, hofc.eps)
    rest = sorted((i for k, i in enumerate(front) if k != best_local), key=lambda i: -_fin(cf[i]))
    order = [front[best_local]] + rest
    inf = dict(info(search, state), compared_on=cmp_split,
               choice=choice_line(search, choose_split, scores[choose_split][1], front[best_local],
                                  [(j, cplx[j], cf[j]) for j in front]))
    n_div = int(np.sum(~np.isfinite(np.asarray(cf, np.float64))))
    if n_div:       # a candidate that diverged re-scored has the worst fitness: say so, do not drop it silently
        inf["diverged_on_choice"] = n_div
        inf["choice"] += (f"; {n_div} of {len(cf)} re-scored candidates diverged on the {choose_split} instances "
                          "(worst fitness, left out of the hall of fame)")
    if cand_curves is not None:
        named = [(rank_label(r, text[i][0]),
                  [None if c is None else c[i] for c in cand_curves]) for r, i in enumerate(order[:3])]
        named += [(baseline_label(b["name"]), cv) for b, cv in zip(baselines, base_curves)]
        inf["curves"] = panels(search.tasks[cmp_split], cmp_split, named)
    entries = []
    for rank, i in enumerate(order):
        prog = index(progs, i)
        metrics = {}
        for split, (f, m) in scores.items():
            d = {"fitness": json_float(f[i])}
            d.update(summarize_metrics([{k: v[i] for k, v in mt.items()} for mt in m]))
            metrics[split] = d
        inst = instance_fitness(search.fit, scores[cmp_split][1], i)
        paired = {b["name"]: paired_difference(as_array(inst), as_array(b["instances"])) for b in baselines}
        entries.append(Entry.of(np_prog(prog), space, rank=rank, complexity=cplx[i], fitness=cf[i],
                                metrics=metrics, paired=paired, instances=inst, text=text[i]))
    return HallOfFame(entries, 0, hofc.choose, hofc.eps, defaults(search), inf, baselines)


def _pareto_candidates(state: SearchState, programs: bool = True) -> list:
    """[(FEC hash, program or None)] of the Pareto slots of both archives, each hash once, in order: the
    candidates :func:`finalize` re-scores."""
    out, seen = [], set()
    for arch in (state.archive, state.select_archive):
        for c, j in arch.pareto_slots():
            h = arch.hashes[c][j]
            if h not in seen:
                seen.add(h)
                out.append((h, arch.program(c, j) if programs else None))
    return out


def candidate_hashes(state: SearchState) -> tuple:
    """The FEC hashes of the candidates :func:`finalize` re-scores, in order."""
    return tuple(h for h, _ in _pareto_candidates(state, programs=False))


def evaluators(search) -> list:
    """The evaluators :func:`finalize` calls (built here if they were not yet: a finalize computed ahead in another
    thread then uses the same ones, :class:`.ahead.FinalizeAhead`)."""
    out = [search.evaluator("search"), search.choice_evaluator(), _own_evaluator(search, comparison_split(search))]
    if search.cfg.search.strategy == "hybrid":
        out.append(search.evaluators.refine_split(search.chunk))
    return [e for e in out if e is not None]


def provisional(search, state: SearchState) -> HallOfFame:
    """A provisional hall of fame without any evaluation: the Pareto set of the archive by *search* fitness
    (entries' metrics hold only ``search``); cheap enough for a running or interrupted run."""
    space = search.space
    progs, fits, seen = [], [], set()
    for c, j in state.archive.pareto_slots():
        h = state.archive.hashes[c][j]
        if h not in seen:
            seen.add(h)
            progs.append(dce(state.archive.program(c, j), space))
            fits.append(float(state.archive.fitness[c, j]))
    cplx = [complexity(p, space) for p in progs]
    hofc = search.cfg.hall_of_fame
    inf = dict(info(search, state), provisional=True, chosen_on="search")
    if not progs:
        return HallOfFame([], 0, hofc.choose, hofc.eps, defaults(search), inf)
    front = pareto_front(fits, cplx)
    b = choose_best([fits[i] for i in front], [cplx[i] for i in front], hofc.choose, hofc.eps)
    order = [front[b]] + sorted((i for k, i in enumerate(front) if k != b), key=lambda i: -fits[i])
    entries = [Entry.of(np_prog(progs[i]), space, rank=r, complexity=cplx[i], fitness=fits[i],
                        metrics={"search": {"fitness": json_float(fits[i])}}) for r, i in enumerate(order)]
    return HallOfFame(entries, 0, hofc.choose, hofc.eps, defaults(search), inf)


CHOICE_Z = 2.0      # a comparison this many paired SE from the eps threshold or closer can flip with the seeds


def choice_line(search, split: str, per_task: list, i: int, front=()) -> str:
    """One line that says how the chosen rule was picked, with the standard error of its fitness and how far the
    comparisons that picked it are from flipping.

    ``front``: the Pareto front's rules as (index, complexity, fitness). The eps rule compares each rule's fitness
    with the best one's minus eps: the chosen rule was within it, every simpler rule of the front below it. Those
    comparisons are of rules measured on the same instances, so their noise is the standard error of the *paired*
    differences (a spread every rule shares, such as harder seeds, cancels; two unlike rules can also differ by
    more than either spreads). The line states the smallest distance of a comparison from the threshold in its
    paired SE and warns below :data:`CHOICE_Z` (the choice may then be noise). A front of one rule makes no
    comparison. Without a usable pair (a rival that diverged on every instance) the chosen rule's own standard error
    against eps/2 decides, as it did before pairs were used.
    """
    inst = lambda j: as_array(instance_fitness(search.fit, per_task, j))  # noqa: E731
    _, se, n = mean_and_se(inst(i))
    hofc = search.cfg.hall_of_fame
    eps = hofc.eps if hofc.choose == "eps" else 0.0
    how = (f"simplest rule within eps={hofc.eps:g} of the best {split} fitness" if hofc.choose == "eps"
           else f"highest {split} fitness")
    line = f"{how}, {n} {split} instances (SE of the chosen rule {se:.4f}"
    noisy = np.isfinite(se) and se > hofc.eps / 2
    warn = "SE > eps/2: raise hall_of_fame.select_seeds"
    front = list(front)
    if len(front) == 1:
        noisy = False
        line += "; the only rule of the Pareto front"
    elif front:
        fit = {j: _fin(f) for j, _, f in front}
        c_i = next((c for j, c, _ in front if j == i), math.inf)
        top = max(front, key=lambda r: fit[r[0]])[0]
        top_inst = inst(top)
        zs = []
        for j in (j for j, c, _ in front if j != top and (j == i or c < c_i)):
            margin = fit[j] - fit[top] + eps if j == i else fit[top] - eps - fit[j]
            pse = paired_difference(inst(j), top_inst)["se"]
            if pse is not None and math.isfinite(pse) and math.isfinite(margin):
                zs.append(math.inf if pse == 0 else margin / pse)
        if zs:
            z = min(zs)
            noisy = z < CHOICE_Z
            warn = (f"a comparison within {CHOICE_Z:g} paired SE of the threshold: other select seeds may choose "
                    "otherwise (hall_of_fame.select_seeds; rules that differ by about eps stay this close)")
            line += (f"; the comparisons that picked it are at least {z:.1f} paired SE from the "
                     f"{'eps ' if eps else ''}threshold" if math.isfinite(z) else
                     "; the comparisons that picked it have no spread over the instances")
    line += ")"
    if hofc.choose == "eps" and noisy:
        line += "; " + warn
    return line


def baseline_specs(search) -> tuple[str, ...]:
    return default_baselines(search.cfg, search.tasks["search"][0][0].objective)


def _own_evaluator(search, split: str):
    return search.choice_evaluator() if split == "select" else search.evaluator(split)


def _baseline_setup(search, split: str):
    """(resolved baselines, the run's network for the rate model, evaluator_for): the run's own evaluator of
    ``split`` for its space and network, else one of the baseline's own."""
    net = search.network
    bls = resolve_baselines(search.baseline_specs(), search.space, search.model,
                            net if search.model == "rate" else None)
    own_net = net if search.model == "rate" else None

    def evaluator_for(space, network, n):
        if space is search.space and network == own_net:
            return _own_evaluator(search, split)
        # a baseline outside the run's space or network has its own compile, for this one call: a batch of
        # exactly its size, compiled for a single use (jit_options.one_shot)
        return search.evaluators.build(search.evaluators.choice_entries(split), split, max(n, 1), space=space,
                                       network=network, floor=1, one_shot=True)

    return bls, own_net, evaluator_for


def comparison_split(search) -> str:
    """The split the hall of fame is compared to its baselines on: final, else select, else search."""
    return "final" if search.tasks["final"] else ("select" if search.tasks["select"] else "search")


def score_baselines(search, split: str = "final", min_size: int = 0, with_programs=None,
                    parallel: bool = True) -> tuple[list[dict], list, tuple | None]:
    """The run's baselines on ``split`` (same tasks, seeds and initial weights as the hall of fame), their
    learning curves, and the (fitness, per-task metrics, curves) of ``with_programs`` (programs of the run's space,
    evaluated in the same call as the baselines of that space); see :func:`.baselines.score_baselines`. Groups
    computed ahead (:func:`baseline_jobs`) are taken from ``search.ahead``."""
    if not search.baseline_specs() or not search.tasks[split]:
        return [], [], (None if with_programs is None
                        else _own_evaluator(search, split).evaluate(with_programs, curves=True))
    bls, own_net, evaluator_for = _baseline_setup(search, split)
    ride = None if with_programs is None else (with_programs, search.space, own_net)
    ahead = getattr(search, "ahead", None)
    done = None if ahead is None else (lambda key: ahead.get(("baseline", split) + key))
    return _score_baselines(bls, evaluator_for, search.fit, min_size, with_programs=ride, parallel=parallel,
                            done=done)


def baseline_jobs(search) -> dict:
    """The end-of-run baseline calls that do not depend on the search ({key: thunk}): on the comparison split,
    the baselines outside the candidates' call (other network or space: BP), as :func:`score_baselines` runs them
    (the candidates ride with the baselines of their own space and network, which therefore stay at the end)."""
    split = comparison_split(search)
    if split == "search" or not search.baseline_specs() or not search.tasks[split]:
        return {}
    bls, own_net, evaluator_for = _baseline_setup(search, split)
    ride_key = group_key(search.space, own_net)
    return {("baseline", split) + key: group_call(bls, idx, evaluator_for)
            for key, idx in baseline_groups(bls).items() if key != ride_key}


def snap(search, progs, fit):
    """Try 'nice' constants for each candidate; keep the nicest variant within snap_tol of its fitness. With
    ``hybrid.seeds`` candidates and variants are compared on the refinement's search instances (the same split,
    more instances), so that rounding does not undo a refinement on the noise of a generation's few."""
    tol = search.cfg.hall_of_fame.snap_tol
    own = search.evaluators.refine_split(search.chunk) if search.cfg.search.strategy == "hybrid" else None
    judge = own if own is not None else search.evaluator("search")
    if own is not None:
        fit = own.evaluate(progs)[0]
    fixed = search_fixed(search.cfg.search, search.space)
    variants, owner = [], []
    for i in range(progs.term_on.shape[0]):
        prog = index(progs, i)
        if fixed is not None and not fixed.holds(prog):
            continue            # the fixed part laid out elsewhere (an expanded program): its constants stay
        for v in snap_variants(prog, search.space, None if fixed is None else fixed.free(prog)):
            variants.append(v)
            owner.append(i)
    out = [index(progs, i) for i in range(progs.term_on.shape[0])]
    if not variants:
        return progs
    vf, _ = judge.evaluate(stack(variants), min_size=search.chunk)
    done = set()
    for j, i in enumerate(owner):       # variants are ordered nicest first
        if i in done or not np.isfinite(fit[i]) or not np.isfinite(vf[j]):
            continue
        if vf[j] >= fit[i] - tol:
            out[i] = variants[j]
            done.add(i)
    return stack([dce(p, search.space) for p in out])


def defaults(search) -> dict:
    """The simulation defaults every candidate ran with (exporters use them)."""
    return rule_settings(search.cfg)


def info(search, state: SearchState) -> dict:
    c, fit = state.counters, search.fit
    return {"name": search.cfg.name, "seed": search.cfg.seed, "strategy": search.kind,
            "generations": state.generation, "n_candidates": int(c.get("n_candidates", 0)),
            "n_evaluated": int(c.get("n_evaluated", 0)), "n_select": int(c.get("n_select", 0)),
            "fec_hit_rate": (c["n_hits"] / c["n_candidates"]) if c.get("n_candidates") else 0.0,
            "wall_time_s": float(c.get("elapsed_s", 0.0)), "network": search.cfg.network,
            "fitness": {"metric": fit.metric, "penalties": [list(p) for p in fit.penalties],
                        "complexity_penalty": fit.complexity_penalty},
            "chosen_on": "select" if search.tasks["select"] else "search"}


def _fin(x) -> float:
    return float(x) if np.isfinite(x) else -math.inf


__all__ = ["finalize", "provisional", "candidate_hashes", "evaluators", "choice_line", "baseline_specs",
           "score_baselines", "snap", "defaults",
           "info"]
