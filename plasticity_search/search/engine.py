"""The search engine: config -> strategy + FEC cache + inner loop + fitness -> hall of fame.

    search = Search(cfg)
    state = search.init()
    while not search.done(state):
        state, metrics = search.step(state)        # one generation; JSON-able metrics
    hof = search.finalize(state)                   # Pareto set re-scored on select and final tasks

or simply ``run_search(cfg) -> HallOfFame``. ``state_to_tree`` / ``state_from_tree`` turn a :class:`SearchState` into
npz-able arrays plus JSON-able metadata and back, exactly: a restored state continues bit-for-bit.

Strategies (``search.strategy``):

* ``regularized_evolution``: :mod:`.regevo`; per generation ``children`` candidates by tournament + mutation;
  each child is hashed on the probe batch (FEC): a child equal to an evaluated program reuses its fitness, and only
  the unique, uncached children are evaluated, padded to one of three fixed sizes (few compiles).
* ``evosax``: any distribution-based evosax algorithm over the constants of ``coefficients.structure``; each
  generation evaluates the ES population and its current mean.
* ``metagrad``: one optax step of the meta-gradient per generation (:mod:`.metagrad`), then the new constants are
  evaluated like any candidate.
* ``hybrid``: regularized evolution, and every ``hybrid.every`` generations the ``hybrid.top_k`` best distinct
  programs get their constants refined by evosax or the meta-gradient; a refined program that is fitter replaces
  its parent in the population (Lamarckian).

Each generation the ``hall_of_fame.select_top_k`` best new candidates are re-scored on the ``select`` tasks.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..inner import InnerConfig, InnerLoop, check_space, instance_keys, make_evaluator, task_batch
from ..rules.fec import fec_hashes
from ..rules.formula import to_text
from ..rules.program import Program, Space, complexity, dce, index, stack
from .coeffs import Parametrization, coeff_es, structure_parametrization
from .config import SearchConfig, default_baselines, load_config, rule_in_space
from .fitness import WORST, FitnessFn, json_float, summarize_metrics
from .hall_of_fame import Archive, Entry, HallOfFame, choose_best, pareto_front
from .metagrad import MetaGrad
from .regevo import RegularizedEvolution, jitted
from .baselines import as_array, instance_fitness, resolve_baselines, score_baselines
from .curves import baseline_label, panels, rank_label
from .stats import mean_and_se, paired_difference
from .treeio import flatten, unflatten

TREE_SCHEMA = "plasticity-search/search-state/v1"


# --------------------------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------------------------
@dataclass
class SearchState:
    generation: int                 # completed generations
    key: jax.Array                  # typed PRNG key
    strategy: Any                   # RegEvoState | evosax state | MetaGradState
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


def _state_from(t: dict) -> SearchState:
    return SearchState(
        generation=int(t["generation"]), key=t["key"], strategy=t["strategy"],
        fec={k: float(v) for k, v in zip(t["fec_keys"], np.asarray(t["fec_vals"]).reshape(-1))},
        select={k: float(v) for k, v in zip(t["select_keys"], np.asarray(t["select_vals"]).reshape(-1))},
        archive=_archive_from(t["archive"]), select_archive=_archive_from(t["select_archive"]),
        counters=dict(t["counters"]))


def _archive_tree(a: Archive) -> dict:
    return {"space": a.space.to_dict(), "per": a.per, "programs": a.programs, "fitness": a.fitness,
            "hashes": [list(h) for h in a.hashes]}


def _archive_from(t: dict) -> Archive:
    d = t["space"]
    return Archive(Space.from_dict(d), int(t["per"]), Program(*[np.asarray(x) for x in t["programs"]]),
                   np.asarray(t["fitness"]), t["hashes"])


# --------------------------------------------------------------------------------------------------------------
# evaluation of programs on one split (all its tasks x seeds), in fixed-size padded chunks
# --------------------------------------------------------------------------------------------------------------
class SplitEval:
    def __init__(self, space: Space, items: list, fitness: FitnessFn, chunk: int, devices: int | None = None):
        self.space, self.fitness = space, fitness
        self.items = items                       # [(task, evaluator, data, keys)]
        self.buckets = sorted({max(1, chunk // 4), max(1, chunk // 2), max(1, chunk)})
        self.mesh = None
        if devices is not None:
            # shard the population axis over a mesh; chunk sizes become multiples of the device count and the
            # padding candidates are dropped below, so they never reach fitness or the hall of fame
            from .. import distributed as dist
            self.mesh = dist.population_mesh(devices)
            self.buckets = sorted({dist.padded_size(b, self.mesh) for b in self.buckets})
            self.items = [(t, fn, dist.replicate(d, self.mesh), dist.replicate(k, self.mesh))
                          for t, fn, d, k in self.items]

    @classmethod
    def build(cls, space, tasks_and_entries, network, fitness, split, chunk, steps=None, seeds=None, devices=None,
              spiking=None):
        items = []
        for task, entry in tasks_and_entries:
            st = steps if steps is not None else entry.steps
            sd = entry.seed_list if seeds is None else entry.seed_list[:seeds]
            if task.kind == "spiking":
                items.append(_spiking_item(space, task, spiking, sd, split, st))
                continue
            cfg = InnerConfig(network=network, steps=st)
            fn = make_evaluator(space, task, cfg)
            items.append((task, fn, task_batch(task, sd, split, st), instance_keys(sd, split)))
        return cls(space, items, fitness, chunk, devices)

    def evaluate(self, progs: Program, curves: bool = False, min_size: int = 0):
        """(raw fitness [n], per task {metric: np [n, S]}), plus per task learning curves [n, S, C] (None for
        spiking tasks) with ``curves=True``. ``min_size``: pad a small batch to the bucket of that many programs
        (equal shapes share one compile)."""
        progs = Program(*[np.asarray(x) for x in progs])
        n = progs.term_on.shape[0]
        per_task = [{} for _ in self.items]
        per_curve: list = [[] for _ in self.items]
        start = 0
        while start < n:
            m = min(n - start, self.buckets[-1])
            size = next(b for b in self.buckets if b >= min(max(m, min_size), self.buckets[-1]))
            idx = np.concatenate([np.arange(start, start + m), np.full(size - m, start)])
            chunk = Program(*[jnp.asarray(x[idx]) for x in progs])
            if self.mesh is not None:
                from .. import distributed as dist
                chunk = dist.shard_population(chunk, self.mesh)
            for t, (task, fn, data, keys) in enumerate(self.items):
                metrics, cv = fn(chunk, data, keys)
                if self.mesh is not None:
                    metrics, cv = dist.gather((metrics, cv if curves else None))
                for k, v in metrics.items():
                    per_task[t].setdefault(k, []).append(np.asarray(v)[:m])
                if curves and cv is not None:
                    per_curve[t].append(np.asarray(cv)[:m])
            start += m
        per_task = [{k: np.concatenate(v, 0) for k, v in d.items()} for d in per_task]
        fit = self.fitness.aggregate([self.fitness.per_instance(d) for d in per_task])
        if curves:
            return fit, per_task, [np.concatenate(c, 0) if c else None for c in per_curve]
        return fit, per_task


def _spiking_item(space, task, spiking_cfg, seeds, split, steps):
    """(task, fn, data, keys) for a spiking task: ``fn(pop, data, keys) -> (metrics [P, S], None)``."""
    from ..spiking import make_evaluator as spiking_evaluator, make_instances
    from ..spiking.evaluate import Instances

    ev = spiking_evaluator(space, task, spiking_cfg)
    inst = make_instances(task, seeds, split, steps)

    def fn(pop, data, keys):
        return ev(pop, Instances(data, keys)), None

    return task, fn, inst.data, inst.keys


def _np_prog(p) -> Program:
    return Program(*[np.asarray(x) for x in p])


def _take(p: Program, idx) -> Program:
    idx = np.asarray(idx, np.int64)
    return Program(*[np.asarray(x)[idx] for x in p])


# --------------------------------------------------------------------------------------------------------------
class Search:
    """One search run's fixed machinery (strategy, evaluators, data) for a validated :class:`SearchConfig`."""

    def __init__(self, cfg: SearchConfig):
        if not isinstance(cfg, SearchConfig):
            cfg = load_config(cfg)
        self.cfg = cfg
        self.kind = cfg.search.strategy
        self.model = cfg.model                  # 'rate' | 'spiking': the kind of its tasks
        self.fit = FitnessFn.from_config(cfg)
        self.network = cfg.network_config()
        if self.kind in ("evosax", "metagrad"):
            self.param = structure_parametrization(cfg.coefficients.structure)
            self.space = self.param.space
        else:
            self.param = None
            self.space = cfg.rule_space()
        if self.model == "rate":
            check_space(self.space)
        s = cfg.search
        self.regevo = RegularizedEvolution(self.space, s.population, s.tournament, s.children,
                                           tuple(s.mutation[m] for m in s.mutation), s.aging, s.init_terms)
        if self.kind == "evosax":
            self.chunk = s.population + 1
        elif self.kind == "metagrad":
            self.chunk = 1
        else:
            self.chunk = s.children
        self.spiking = cfg.spiking_eval_config() if self.model == "spiking" else None
        self.tasks = {split: [(cfg.make_task(e), e) for e in getattr(cfg.tasks, split)]
                      for split in ("search", "select", "final")}
        self._evals: dict = {}
        self._jit_cache: dict = {}
        from .. import distributed as dist
        self.devices = dist.check_devices(cfg.budget.devices)   # all devices of all processes when several run

    # --- lazily built evaluators (task data is generated on first use) ---------------------------------------------
    def evaluator(self, split: str, chunk: int | None = None) -> SplitEval | None:
        chunk = chunk or self.chunk     # the same padded sizes on every split: equal shapes share one compile
        key = (split, chunk)
        if key not in self._evals:
            if not self.tasks[split]:
                return None
            self._evals[key] = SplitEval.build(self.space, self.tasks[split], self.network, self.fit, split, chunk,
                                               devices=self.devices, spiking=self.spiking)
        return self._evals[key]

    def hurdle_evaluator(self) -> SplitEval | None:
        h = self.cfg.search.hurdle
        if h is None:
            return None
        if "hurdle" not in self._evals:
            self._evals["hurdle"] = SplitEval.build(self.space, self.tasks["search"], self.network, self.fit,
                                                    "search", self.chunk, steps=h.steps, seeds=h.seeds,
                                                    devices=self.devices, spiking=self.spiking)
        return self._evals["hurdle"]

    # --- candidates -----------------------------------------------------------------------------------------------
    def complexities(self, progs: Program) -> np.ndarray:
        progs = _np_prog(progs)
        return np.array([complexity(index(progs, i), self.space) for i in range(progs.term_on.shape[0])], np.int64)

    def _evaluate(self, state: SearchState, progs: Program, use_fec: bool, chunk: int | None = None):
        """Raw search fitness [n] and hashes of candidates; FEC hits reuse the cache. Updates state counters."""
        progs = _np_prog(progs)
        n = progs.term_on.shape[0]
        hashes = fec_hashes(progs, self.space)
        fit = np.full(n, np.nan)
        todo, first = [], {}
        for i, h in enumerate(hashes):
            if use_fec and h in state.fec:
                fit[i] = state.fec[h]
            elif use_fec and h in first:
                continue
            else:
                first.setdefault(h, i)
                todo.append(i)
        hits = n - len(todo)
        if todo:
            sub = _take(progs, todo)
            hurdle = self.hurdle_evaluator()
            if hurdle is not None:
                f1, _ = hurdle.evaluate(sub)
                passed = np.nonzero(f1 >= self.cfg.search.hurdle.threshold)[0]
                f = f1.copy()
                if len(passed):
                    f2, _ = self.evaluator("search", chunk).evaluate(_take(sub, passed))
                    f[passed] = f2
                state.counters["n_hurdle_failed"] = state.counters.get("n_hurdle_failed", 0) + len(todo) - len(passed)
            else:
                f, _ = self.evaluator("search", chunk).evaluate(sub)
            for j, i in enumerate(todo):
                fit[i] = f[j]
                state.fec[hashes[i]] = float(f[j])
        for i, h in enumerate(hashes):
            if np.isnan(fit[i]):
                fit[i] = state.fec[h] if h in state.fec else fit[first[h]]
        state.counters["n_candidates"] = state.counters.get("n_candidates", 0) + n
        state.counters["n_hits"] = state.counters.get("n_hits", 0) + (hits if use_fec else 0)
        state.counters["n_evaluated"] = state.counters.get("n_evaluated", 0) + len(todo)
        state.counters["_step_evaluated"] = state.counters.get("_step_evaluated", 0) + len(todo)
        return fit, hashes

    def _offer(self, state: SearchState, progs: Program, fit, hashes, cplx=None):
        cplx = self.complexities(progs) if cplx is None else cplx
        state.archive.add(_np_prog(progs), fit, cplx, hashes)
        return cplx

    def _rescore_select(self, state: SearchState, progs: Program, sel_fitness, hashes) -> None:
        """Re-score the top ``select_top_k`` distinct candidates (by selection fitness) on the select tasks."""
        k = self.cfg.hall_of_fame.select_top_k
        ev = self.evaluator("select")
        if k == 0 or ev is None:
            return
        sel_fitness = np.asarray(sel_fitness, np.float64)
        order = np.argsort(-np.where(np.isfinite(sel_fitness), sel_fitness, -np.inf), kind="stable")
        pick, seen = [], set()
        for i in order:
            if len(pick) >= k or not np.isfinite(sel_fitness[i]):
                break
            h = hashes[i]
            if h in seen or h in state.select:
                continue
            seen.add(h)
            pick.append(int(i))
        if not pick:
            return
        sub = _take(_np_prog(progs), pick)
        f, _ = ev.evaluate(sub)
        hs = [hashes[i] for i in pick]
        for h, v in zip(hs, f):
            state.select[h] = float(v)
        state.select_archive.add(sub, f, self.complexities(sub), hs)
        state.counters["n_select"] = state.counters.get("n_select", 0) + len(pick)

    # --- jitted pieces (one compile per Search) ---------------------------------------------------------------------
    def _es(self, n: int, population: int):
        c = self.cfg.coefficients
        return coeff_es(c.algorithm, population, n, float(c.std_init), tuple(sorted(c.es_params.items())))

    def _jit(self, name: str, fn: Callable):
        if name not in self._jit_cache:
            self._jit_cache[name] = jax.jit(fn)
        return self._jit_cache[name]

    def _metagrad(self, param: Parametrization, steps_key: str = "meta") -> tuple[MetaGrad, tuple]:
        if steps_key not in self._jit_cache:
            c = self.cfg.coefficients
            loops, batch = [], []
            for task, e in self.tasks["search"]:
                loop = InnerLoop(self.space, task, InnerConfig(network=self.network, steps=e.steps))
                loops.append(loop)
                batch.append((task_batch(task, e.seed_list, "search", e.steps), instance_keys(e.seed_list, "search")))
            loss_name, fit = c.loss, self.fit
            if loss_name == "fitness":
                loss_fn = lambda m: -fit.per_instance(m, jnp)  # noqa: E731
            else:
                from ..inner import METRIC_SIGN
                sign = float(METRIC_SIGN[loss_name])
                loss_fn = lambda m: -sign * m[loss_name]  # noqa: E731
            mg = MetaGrad(param, tuple(loops), loss_fn, c.optimizer, c.lr, c.clip_norm, c.truncation, c.meta_batch,
                          c.max_consecutive_errors)
            self._jit_cache[steps_key] = (mg, tuple(batch), jax.jit(mg.update))
        return self._jit_cache[steps_key]

    # --- contract ------------------------------------------------------------------------------------------------
    def init(self) -> SearchState:
        t0 = time.perf_counter()
        cfg = self.cfg
        key = jax.random.key(cfg.seed)
        per = cfg.hall_of_fame.per_complexity
        state = SearchState(0, key, None, {}, {}, Archive(self.space, per), Archive(self.space, 1),
                            {"n_candidates": 0, "n_hits": 0, "n_evaluated": 0, "n_select": 0, "elapsed_s": 0.0})
        key, k_init = jax.random.split(key)
        if self.kind in ("regularized_evolution", "hybrid"):
            pop = _np_prog(jitted(self.regevo, 'initialize')(k_init))
            pop = Program(*[np.array(x) for x in pop])
            for i, spec in enumerate(cfg.search.seed_rules):
                prog = rule_in_space(spec, self.space, self.model)
                for dst, src in zip(pop, prog):
                    dst[i] = np.asarray(src)
            fit, hashes = self._evaluate(state, pop, cfg.search.fec)
            cplx = self._offer(state, pop, fit, hashes)
            sel = self.fit.penalized(fit, cplx)
            state.strategy = self.regevo.init(pop, sel)
            self._rescore_select(state, pop, sel, hashes)
        elif self.kind == "evosax":
            theta0 = self._theta0()
            es = self._es(self.param.n, cfg.search.population)
            state.strategy = es.init(k_init, theta0)
            self._eval_thetas(state, theta0[None])
        else:
            theta0 = self._theta0()
            mg, _, _ = self._metagrad(self.param)
            state.strategy = mg.init(theta0)
            self._eval_thetas(state, theta0[None])
        state.key = key
        state.counters.pop("_step_evaluated", None)
        state.counters["elapsed_s"] = time.perf_counter() - t0
        return state

    def _theta0(self) -> np.ndarray:
        c = self.cfg.coefficients
        return np.asarray(c.init if c.init is not None else self.param.theta0, np.float32)

    def _eval_thetas(self, state, thetas):
        progs = _np_prog(self.param.to_programs(jnp.asarray(thetas)))
        fit, hashes = self._evaluate(state, progs, use_fec=False)
        cplx = self._offer(state, progs, fit, hashes)
        self._rescore_select(state, progs, self.fit.penalized(fit, cplx), hashes)
        return fit

    def step(self, state: SearchState) -> tuple[SearchState, dict]:
        t0 = time.perf_counter()
        state = _copy_state(state)
        state.counters["_step_evaluated"] = 0
        key, k_step, k_extra = jax.random.split(state.key, 3)
        extra = {}
        if self.kind in ("regularized_evolution", "hybrid"):
            children = _np_prog(jitted(self.regevo, 'ask')(k_step, state.strategy))
            fit, hashes = self._evaluate(state, children, self.cfg.search.fec)
            cplx = self._offer(state, children, fit, hashes)
            sel = self.fit.penalized(fit, cplx)
            state.strategy, _ = jitted(self.regevo, 'tell')(state.strategy, children, sel)
            if self.kind == "hybrid" and (state.generation + 1) % self.cfg.hybrid.every == 0:
                extra["n_refined"] = self._refine(state, jax.random.fold_in(k_extra, 0))
            self._maybe_restart(state, jax.random.fold_in(k_extra, 1))
            pop = _np_prog(state.strategy.population)
            pop_fit = np.asarray(state.strategy.fitness, np.float64)
            top = np.argsort(-np.where(np.isfinite(pop_fit), pop_fit, -np.inf), kind="stable")
            top = top[:max(1, 2 * self.cfg.hall_of_fame.select_top_k)]
            self._rescore_select(state, _take(pop, top), pop_fit[top], fec_hashes(_take(pop, top), self.space))
            best, median = float(np.max(pop_fit)), float(np.median(pop_fit))
        elif self.kind == "evosax":
            es = self._es(self.param.n, self.cfg.search.population)
            k_ask, k_tell = jax.random.split(k_step)
            mean = es.mean(state.strategy)
            thetas, es_state = es.ask(k_ask, state.strategy)
            allt = jnp.concatenate([thetas, mean[None]], 0)
            fit = self._eval_thetas(state, allt)
            state.strategy, _ = es.tell(k_tell, es_state, thetas, jnp.asarray(fit[:-1], jnp.float32))
            extra["mean_fitness"] = json_float(fit[-1])
            best, median = float(np.max(fit)), float(np.median(fit))
        else:
            mg, batch, update = self._metagrad(self.param)
            state.strategy, m = update(k_step, state.strategy, batch)
            fit = self._eval_thetas(state, np.asarray(state.strategy.theta)[None])
            extra.update(meta_loss=json_float(m["meta_loss"]), grad_norm=json_float(m["grad_norm"]),
                         skipped=bool(m["skipped"]))
            best = median = float(fit[0])
        state.key = key
        state.generation += 1
        self._track_best(state)
        dt = time.perf_counter() - t0
        state.counters["elapsed_s"] = state.counters.get("elapsed_s", 0.0) + dt
        n_step = state.counters.pop("_step_evaluated", 0)
        c = state.counters
        ever, ever_c = state.archive.best()
        metrics = {
            "generation": state.generation,
            "best_fitness": json_float(best),
            "median_fitness": json_float(median),
            "best_fitness_ever": json_float(ever),
            "best_complexity": ever_c,
            "best_select_fitness": json_float(max(state.select.values()) if state.select else WORST),
            "fec_hit_rate": (c["n_hits"] / c["n_candidates"]) if c.get("n_candidates") else 0.0,
            "candidates_per_s": n_step / dt if dt > 0 else 0.0,
            "n_evaluated": int(c.get("n_evaluated", 0)),
            "wall_time_s": dt,
        }
        metrics.update(extra)
        return state, metrics

    def done(self, state: SearchState) -> bool:
        return self.stop_reason(state) is not None

    def stop_reason(self, state: SearchState) -> str | None:
        """None while the search goes on; else 'generations', 'time_limit', 'target_fitness' or 'patience'."""
        c, b = state.counters, self.cfg.budget
        if state.generation >= self.cfg.generations:
            return "generations"
        if b.time_limit_s is not None and c.get("elapsed_s", 0.0) >= b.time_limit_s:
            return "time_limit"
        if b.target_fitness is not None and c.get("stop_best", -math.inf) >= b.target_fitness:
            return "target_fitness"
        if b.patience is not None and state.generation - c.get("stop_best_gen", 0) >= b.patience:
            return "patience"
        return None

    def _track_best(self, state: SearchState) -> None:
        """The early-stop statistic: the best select fitness so far (search fitness without select tasks); a gain
        of at most ``budget.min_delta`` does not count as an improvement."""
        best = max(state.select.values()) if self.tasks["select"] and state.select else state.archive.best()[0]
        c = state.counters
        if np.isfinite(best) and best > c.get("stop_best", -math.inf) + self.cfg.budget.min_delta:
            c["stop_best"], c["stop_best_gen"] = float(best), int(state.generation)

    def _maybe_restart(self, state: SearchState, key) -> None:
        """Restart on stagnation: a fresh random population after ``restart_after`` generations without a new best."""
        after = self.cfg.search.restart_after
        if after is None:
            return
        c = state.counters
        best = float(np.max(np.asarray(state.strategy.fitness, np.float64)))
        if best > c.get("restart_best", -np.inf):
            c["restart_best"], c["restart_gen"] = best, state.generation + 1
            return
        if state.generation + 1 - c.get("restart_gen", 0) < after:
            return
        pop = _np_prog(jitted(self.regevo, 'initialize')(key))
        fit, hashes = self._evaluate(state, pop, self.cfg.search.fec)
        cplx = self._offer(state, pop, fit, hashes)
        state.strategy = self.regevo.init(pop, self.fit.penalized(fit, cplx))
        c["restart_best"], c["restart_gen"] = float("-inf"), state.generation + 1
        c["n_restarts"] = c.get("n_restarts", 0) + 1

    # --- hybrid: Lamarckian refinement of the constants of the best programs ------------------------------------
    def _refine(self, state: SearchState, key) -> int:
        h = self.cfg.hybrid
        st = state.strategy
        pop = _np_prog(st.population)
        pf = np.asarray(st.fitness, np.float64)
        order = np.argsort(-np.where(np.isfinite(pf), pf, -np.inf), kind="stable")
        hashes = fec_hashes(pop, self.space)
        picked, seen = [], set()
        for i in order:
            if len(picked) >= h.top_k or not np.isfinite(pf[i]):
                break
            if hashes[i] not in seen:
                seen.add(hashes[i])
                picked.append(int(i))
        n_improved = 0
        for r, i in enumerate(picked):
            prog = index(pop, i)
            base_fit = state.fec.get(hashes[i], WORST)
            kr = jax.random.fold_in(key, r)
            if h.refine == "evosax":
                new_prog, new_fit = self._refine_es(state, prog, base_fit, kr)
            else:
                new_prog, new_fit = self._refine_mg(state, prog, base_fit, kr)
            if new_prog is not None and new_fit > base_fit:
                c = self.complexities(stack([new_prog]))
                sel = self.fit.penalized(np.array([new_fit]), c)
                state.strategy = self.regevo.replace_members(state.strategy, np.array([i]), stack([new_prog]), sel)
                n_improved += 1
        state.counters["n_refined"] = state.counters.get("n_refined", 0) + n_improved
        return n_improved

    def _refine_es(self, state, prog, base_fit, key):
        h = self.cfg.hybrid
        param = Parametrization.from_program(prog, self.space)
        if param.n == 0:
            return None, WORST
        es = self._es(param.n, h.population)
        theta0 = jnp.asarray(param.theta0)
        scale = jnp.maximum(jnp.abs(theta0), 0.1)
        k0, key = jax.random.split(key)
        es_state = es.init(k0, jnp.zeros(param.n))
        best_fit, best_prog = base_fit, None
        for s in range(h.steps):
            ka, kt = jax.random.split(jax.random.fold_in(key, s))
            us, es_state = es.ask(ka, es_state)
            progs = _np_prog(param.to_programs(theta0 + scale * us))
            fit, hashes = self._evaluate(state, progs, self.cfg.search.fec, chunk=h.population)
            self._offer(state, progs, fit, hashes)
            es_state, _ = es.tell(kt, es_state, us, jnp.asarray(np.where(np.isfinite(fit), fit, -np.inf),
                                                                  jnp.float32))
            j = int(np.argmax(np.where(np.isfinite(fit), fit, -np.inf)))
            if np.isfinite(fit[j]) and fit[j] > best_fit:
                best_fit, best_prog = float(fit[j]), index(progs, j)
        return best_prog, best_fit

    def _refine_mg(self, state, prog, base_fit, key):
        h = self.cfg.hybrid
        param = Parametrization.from_program(prog, self.space, all_constants=True)
        # one compiled meta-step for every program of the space: the base program is an argument
        generic = Parametrization.from_program(self.space.empty(), self.space, all_constants=True)
        mg, batch, _ = self._metagrad(generic, "meta_refine")
        upd = self._jit("meta_refine_update", lambda k, s, b, base: mg.update(k, s, b, base=base))
        ms = mg.init(param.theta0)
        base = jax.tree.map(jnp.asarray, _np_prog(prog))
        for s in range(h.steps):
            ms, _ = upd(jax.random.fold_in(key, s), ms, batch, base)
        new = _np_prog(param.to_program(ms.theta))
        fit, hashes = self._evaluate(state, stack([new]), self.cfg.search.fec, chunk=1)
        self._offer(state, stack([new]), fit, hashes)
        return new, float(fit[0])

    # --- finalize ----------------------------------------------------------------------------------------------
    def finalize(self, state: SearchState) -> HallOfFame:
        """Re-score the Pareto candidates on select and final tasks and build the hall of fame."""
        state = _copy_state(state)
        cands, seen = [], set()
        for arch in (state.archive, state.select_archive):
            for c, j in arch.pareto_slots():
                h = arch.hashes[c][j]
                if h not in seen:
                    seen.add(h)
                    cands.append(arch.program(c, j))
        if not cands:
            return HallOfFame([], 0, self.cfg.hall_of_fame.choose, self.cfg.hall_of_fame.eps,
                              self._defaults(), self._info(state))
        progs = stack([dce(p, self.space) for p in cands])
        ev = self.evaluator("search")
        if self.cfg.hall_of_fame.snap:       # padded to the generations' batch: no new compile
            progs = self._snap(progs, ev.evaluate(progs, min_size=self.chunk)[0])
        progs = stack([canonical(index(progs, i), self.space) for i in range(progs.term_on.shape[0])])
        search_fit, search_m = ev.evaluate(progs, min_size=self.chunk)
        cplx = self.complexities(progs)
        scores = {"search": (search_fit, search_m)}
        cmp_split = "final" if self.tasks["final"] else ("select" if self.tasks["select"] else "search")
        cand_curves = None
        for split in ("select", "final"):
            e = self.choice_evaluator() if split == "select" else self.evaluator(split)
            if e is not None:
                if split == cmp_split:
                    fit_s, m_s, cand_curves = e.evaluate(progs, curves=True)
                    scores[split] = (fit_s, m_s)
                else:
                    scores[split] = e.evaluate(progs)
        choose_split = "select" if "select" in scores else "search"
        cf = scores[choose_split][0]
        front = pareto_front(list(cf), list(cplx))
        hofc = self.cfg.hall_of_fame
        best_local = choose_best([cf[i] for i in front], [cplx[i] for i in front], hofc.choose, hofc.eps)
        rest = sorted((i for k, i in enumerate(front) if k != best_local), key=lambda i: -_fin(cf[i]))
        order = [front[best_local]] + rest
        baselines, base_curves = self.score_baselines(cmp_split, min_size=len(progs.term_on))
        info = dict(self._info(state), compared_on=cmp_split,
                    choice=self._choice_line(choose_split, scores[choose_split][1], front[best_local]))
        if cand_curves is not None:
            named = [(rank_label(r, to_text(index(progs, i), self.space)),
                      [None if c is None else c[i] for c in cand_curves]) for r, i in enumerate(order[:3])]
            named += [(baseline_label(b["name"]), cv) for b, cv in zip(baselines, base_curves)]
            info["curves"] = panels(self.tasks[cmp_split], cmp_split, named)
        entries = []
        for rank, i in enumerate(order):
            prog = index(progs, i)
            metrics = {}
            for split, (f, m) in scores.items():
                d = {"fitness": json_float(f[i])}
                d.update(summarize_metrics([{k: v[i] for k, v in mt.items()} for mt in m]))
                metrics[split] = d
            inst = instance_fitness(self.fit, scores[cmp_split][1], i)
            paired = {b["name"]: paired_difference(as_array(inst), as_array(b["instances"])) for b in baselines}
            entries.append(Entry.of(_np_prog(prog), self.space, rank=rank, complexity=cplx[i], fitness=cf[i],
                                    metrics=metrics, paired=paired, instances=inst))
        return HallOfFame(entries, 0, hofc.choose, hofc.eps, self._defaults(), info, baselines)

    # --- the final choice and the baselines ------------------------------------------------------------------
    def choice_evaluator(self) -> SplitEval | None:
        """The select tasks with ``hall_of_fame.select_seeds`` seeds each: what the final choice is made on."""
        n = self.cfg.hall_of_fame.select_seeds
        if n is None or not self.tasks["select"]:
            return self.evaluator("select")
        if "choice" not in self._evals:
            entries = [(t, dataclasses.replace(e, seeds=_n_seeds(e, n))) for t, e in self.tasks["select"]]
            self._evals["choice"] = SplitEval.build(self.space, entries, self.network, self.fit, "select",
                                                    self.chunk, devices=self.devices, spiking=self.spiking)
        return self._evals["choice"]

    def _choice_line(self, split: str, per_task: list, i: int) -> str:
        """One line that says how the chosen rule was picked, with the standard error of its fitness."""
        mean, se, n = mean_and_se(as_array(instance_fitness(self.fit, per_task, i)))
        hofc = self.cfg.hall_of_fame
        how = (f"simplest rule within eps={hofc.eps:g} of the best {split} fitness" if hofc.choose == "eps"
               else f"highest {split} fitness")
        line = f"{how}, {n} {split} instances (SE of the chosen rule {se:.4f})"
        if hofc.choose == "eps" and np.isfinite(se) and se > hofc.eps / 2:
            line += "; SE > eps/2: raise hall_of_fame.select_seeds"
        return line

    def baseline_specs(self) -> tuple[str, ...]:
        return default_baselines(self.cfg, self.tasks["search"][0][0].objective if self.model == "rate" else None)

    def score_baselines(self, split: str = "final", min_size: int = 0) -> tuple[list[dict], list]:
        """The run's baselines on ``split`` (same tasks, seeds and initial weights as the hall of fame), and their
        learning curves; see :func:`.baselines.score_baselines`."""
        specs = self.baseline_specs()
        if not specs or not self.tasks[split]:
            return [], []
        bls = resolve_baselines(specs, self.space, self.model, self.network if self.model == "rate" else None)

        def evaluator_for(space, network, n):
            if space is self.space and network == self.network:
                return self.choice_evaluator() if split == "select" else self.evaluator(split)
            entries = self.tasks[split]
            if split == "select" and self.cfg.hall_of_fame.select_seeds is not None:
                entries = [(t, dataclasses.replace(e, seeds=_n_seeds(e, self.cfg.hall_of_fame.select_seeds)))
                           for t, e in entries]
            return SplitEval.build(space, entries, network, self.fit, split, max(n, 1), devices=self.devices,
                                   spiking=self.spiking)

        return score_baselines(bls, evaluator_for, self.fit, min_size)

    def _snap(self, progs, fit):
        """Try 'nice' constants for each candidate; keep the nicest variant within snap_tol of its fitness."""
        tol = self.cfg.hall_of_fame.snap_tol
        variants, owner = [], []
        for i in range(progs.term_on.shape[0]):
            for v in snap_variants(index(progs, i), self.space):
                variants.append(v)
                owner.append(i)
        out = [index(progs, i) for i in range(progs.term_on.shape[0])]
        if not variants:
            return progs
        vf, _ = self.evaluator("search").evaluate(stack(variants), min_size=self.chunk)
        done = set()
        for j, i in enumerate(owner):       # variants are ordered nicest first
            if i in done or not np.isfinite(fit[i]) or not np.isfinite(vf[j]):
                continue
            if vf[j] >= fit[i] - tol:
                out[i] = variants[j]
                done.add(i)
        return stack([dce(p, self.space) for p in out])

    def _defaults(self) -> dict:
        if self.model == "spiking":      # the simulation defaults every candidate ran with (exporters use them)
            from ..spiking.plasticity import hyper_dict
            return hyper_dict(self.cfg.spiking_eval_config()["rule_defaults"])
        n = self.network
        return {"lr": n.lr, "tau_mean": n.tau_mean, "tau_theta": n.tau_theta}

    def _info(self, state: SearchState) -> dict:
        c = state.counters
        return {"name": self.cfg.name, "seed": self.cfg.seed, "strategy": self.kind,
                "generations": state.generation, "n_candidates": int(c.get("n_candidates", 0)),
                "n_evaluated": int(c.get("n_evaluated", 0)), "n_select": int(c.get("n_select", 0)),
                "fec_hit_rate": (c["n_hits"] / c["n_candidates"]) if c.get("n_candidates") else 0.0,
                "wall_time_s": float(c.get("elapsed_s", 0.0)), "network": self.cfg.network,
                "fitness": {"metric": self.fit.metric, "penalties": [list(p) for p in self.fit.penalties],
                            "complexity_penalty": self.fit.complexity_penalty},
                "chosen_on": "select" if self.tasks["select"] else "search"}

    # --- helpers for the runs layer -----------------------------------------------------------------------------
    def hall_of_fame(self, state: SearchState) -> HallOfFame:
        """A provisional hall of fame without any evaluation: the Pareto set of the archive by *search* fitness
        (entries' metrics hold only ``search``); cheap enough for a running or interrupted run."""
        progs, fits, seen = [], [], set()
        for c, j in state.archive.pareto_slots():
            h = state.archive.hashes[c][j]
            if h not in seen:
                seen.add(h)
                progs.append(dce(state.archive.program(c, j), self.space))
                fits.append(float(state.archive.fitness[c, j]))
        cplx = [complexity(p, self.space) for p in progs]
        hofc = self.cfg.hall_of_fame
        info = dict(self._info(state), provisional=True, chosen_on="search")
        if not progs:
            return HallOfFame([], 0, hofc.choose, hofc.eps, self._defaults(), info)
        front = pareto_front(fits, cplx)
        b = choose_best([fits[i] for i in front], [cplx[i] for i in front], hofc.choose, hofc.eps)
        order = [front[b]] + sorted((i for k, i in enumerate(front) if k != b), key=lambda i: -fits[i])
        entries = [Entry.of(_np_prog(progs[i]), self.space, rank=r, complexity=cplx[i], fitness=fits[i],
                            metrics={"search": {"fitness": json_float(fits[i])}}) for r, i in enumerate(order)]
        return HallOfFame(entries, 0, hofc.choose, hofc.eps, self._defaults(), info)


def _n_seeds(entry, n: int):
    """``n`` seeds for a task entry: 0..n-1 for a count, the listed seeds extended past their maximum otherwise."""
    if isinstance(entry.seeds, int):
        return n
    seeds = list(entry.seeds)[:n]
    nxt = max(seeds, default=-1) + 1
    return tuple(seeds + list(range(nxt, nxt + n - len(seeds))))


def _fin(x) -> float:
    return float(x) if np.isfinite(x) else -math.inf


def _copy_state(s: SearchState) -> SearchState:
    cp = lambda a: Archive(a.space, a.per, Program(*[np.array(x) for x in a.programs]), np.array(a.fitness),  # noqa
                           [list(h) for h in a.hashes])
    return SearchState(s.generation, s.key, s.strategy, dict(s.fec), dict(s.select), cp(s.archive),
                       cp(s.select_archive), dict(s.counters))


# --------------------------------------------------------------------------------------------------------------
# canonical programs and nice constants
# --------------------------------------------------------------------------------------------------------------
def canonical(prog: Program, space: Space, rtol: float = 1e-5) -> Program:
    """The program recompiled from its simplified formula when that is no more complex and computes the same
    update on the probe batch (so equal formulas get equal complexity); otherwise the DCE'd program."""
    from ..rules.fec import probe_outputs
    from ..rules.formula import from_sympy, simplify_expr, to_sympy_raw
    from ..rules.program import RuleError
    prog = dce(_np_prog(prog), space)
    try:
        dw, de = to_sympy_raw(prog, space, digits=9)
        cand, _ = from_sympy(simplify_expr(dw), simplify_expr(de), space, fit=False)
    except (RuleError, TypeError, ValueError, ZeroDivisionError):
        return prog
    cand = dce(_np_prog(cand), space)
    a, b = probe_outputs(stack([prog, cand]), space)[0]
    if not (np.all(np.isfinite(a)) and np.allclose(a, b, rtol=rtol, atol=rtol * (np.abs(a).max() + 1e-30))):
        return prog
    return cand if complexity(cand, space) <= complexity(prog, space) else prog


# --------------------------------------------------------------------------------------------------------------
# nice constants
# --------------------------------------------------------------------------------------------------------------
_NICE_RATIOS = np.array([0.0, 0.1, 0.2, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0])


def _round_sig(x: float, digits: int) -> float:
    if x == 0 or not np.isfinite(x):
        return 0.0
    return float(f"{x:.{digits}g}")


def _nice_ratio(r: float) -> float:
    s = np.sign(r)
    return float(s * _NICE_RATIOS[np.argmin(np.abs(_NICE_RATIOS - abs(r)))])


def snap_variants(prog: Program, space: Space) -> list[Program]:
    """Rounded versions of a program's live constants, nicest first: coefficients as nice ratios of the largest
    (rounded to 1 then 2 significant digits), then every constant to 2 significant digits."""
    from ..rules.ops import OP_BY_NAME
    from ..rules.program import liveness
    prog = _np_prog(prog)
    live_post, live_pre, terms = liveness(prog, space)
    t_idx = np.nonzero(terms)[0]
    if len(t_idx) == 0:
        return []
    coef = prog.term_coef[t_idx].astype(np.float64)
    big = coef[np.argmax(np.abs(coef))]

    def with_consts(new_coef, const_fn):
        p = {f: np.array(getattr(prog, f)) for f in Program._fields}
        p["term_coef"][t_idx] = new_coef
        for side, live in (("post", live_post), ("pre", live_pre)):
            for i in np.nonzero(live)[0]:
                if OP_BY_NAME[space.ops[int(p[f"{side}_op"][i])]].uses_const:
                    p[f"{side}_c"][i] = const_fn(float(p[f"{side}_c"][i]))
        return Program(**{k: v.astype(getattr(prog, k).dtype) for k, v in p.items()})

    ratios = np.array([_nice_ratio(c / big) for c in coef])
    out = []
    for digits in (1, 2):
        out.append(with_consts(_round_sig(big, digits) * ratios, lambda c: _nice_ratio_const(c)))
    out.append(with_consts(np.array([_round_sig(c, 2) for c in coef]), lambda c: _round_sig(c, 2)))
    uniq, seen = [], set()
    for p in out:
        key = tuple(np.asarray(x).tobytes() for x in p)
        if key not in seen and key != tuple(np.asarray(x).tobytes() for x in prog):
            seen.add(key)
            uniq.append(p)
    return uniq


def _nice_ratio_const(c: float) -> float:
    """Instruction constants: the nearest of 0, +-0.5, +-1, +-2, ... if within 10 %, else 2 significant digits."""
    cands = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.25, -0.25]
    best = min(cands, key=lambda v: abs(v - c))
    if abs(best - c) <= 0.1 * max(abs(c), 1e-9):
        return best
    return _round_sig(c, 2)


# --------------------------------------------------------------------------------------------------------------
def run_search(cfg, progress_fn: Callable[[dict], None] | None = None, state: SearchState | None = None,
               return_state: bool = False):
    """Run a whole search (init, step until done, finalize) without the runs layer; returns the HallOfFame.

    ``cfg``: a SearchConfig, a YAML path or a dict. ``progress_fn(metrics)`` is called after every generation.
    """
    if not isinstance(cfg, SearchConfig):
        cfg = load_config(cfg)
    search = Search(cfg)
    state = search.init() if state is None else state
    while not search.done(state):
        state, metrics = search.step(state)
        if progress_fn is not None:
            progress_fn(metrics)
    hof = search.finalize(state)
    return (hof, state) if return_state else hof


__all__ = ["Search", "SearchState", "state_to_tree", "state_from_tree", "run_search", "SplitEval",
           "snap_variants"]
