"""The search engine: config -> strategy + evaluator + inner loop + fitness -> hall of fame.

    search = Search(cfg)
    state = search.init()
    while not search.done(state):
        state, metrics = search.step(state)        # one generation (search.generations_per_call: one call's);
                                                   # JSON-able metrics of its last generation (steps(): of each)
    hof = search.finalize(state)                   # Pareto set re-scored on select and final tasks

or simply ``run_search(cfg) -> HallOfFame``. ``state_to_tree`` / ``state_from_tree`` (:mod:`.state`) turn a
:class:`SearchState` into npz-able arrays plus JSON-able metadata and back, exactly: a restored state continues
bit-for-bit.

The engine is built from parts and knows no strategy by name:

* the strategy (``search.strategy``, :data:`.strategies.STRATEGIES`): init / ask / tell with explicit keys
  (:mod:`.strategies.protocol`); regularized evolution (``hybrid``: with constant refinement as local search), the
  evosax coefficient strategy, the meta-gradient, random search;
* the evaluator (:mod:`.evaluator`): task sets per split, padding into fixed buckets, hurdles, the FEC cache (a
  child equal to an evaluated program reuses its fitness) and the archive;
* the end (:mod:`.finalize`): hall of fame, baselines, snapping and canonical programs.

Each generation (with ``search.generations_per_call``: each call) the ``hall_of_fame.select_top_k`` best new
candidates are re-scored on the ``select`` tasks; the best select fitness drives early stopping (``budget.patience``,
``budget.target_fitness``).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import jax
import numpy as np

from ..rate.online import check_space
from . import finalize as fin
from .canonical import canonical, snap_variants
from .config import SearchConfig, generations_per_call_refusal, load_config, rule_in_space
from .device_generations import DeviceGenerations
from .evaluator import Evaluator, SplitEval
from .fitness import WORST, FitnessFn, json_float
from .hall_of_fame import Archive, HallOfFame
from .state import TREE_SCHEMA, SearchState, check_state, copy_state, state_from_tree, state_to_tree
from .strategies import STRATEGIES


@jax.jit
def _split3(key):
    """``jax.random.split(key, 3)`` as three keys in one compiled call (eagerly, the split and each unpacked key
    are dispatches of their own: 0.4 ms a generation on the CPU; the same keys either way)."""
    return tuple(jax.random.split(key, 3))


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
        cls = STRATEGIES[self.kind]
        self.param = cls.parametrization(cfg)  # the tuned structure of a coefficient strategy, else None
        self.space = self.param.space if self.param is not None else cfg.rule_space()
        if self.model == "rate":
            check_space(self.space)
        self.spiking = cfg.spiking_eval_config() if self.model == "spiking" else None
        self.tasks = {split: [(cfg.make_task(e), e) for e in getattr(cfg.tasks, split)]
                      for split in ("search", "select", "final")}
        from .. import distributed as dist
        self.devices = dist.check_devices(cfg.budget.devices)   # all devices of all processes when several run
        self.strategy = cls(self)
        from .autosize import eval_chunk
        self.chunk = eval_chunk(self.strategy.chunk, cfg.budget.chunk, cfg)   # budget.chunk, memory
        self.last_end: float | None = None      # end of this process's last init/step (wall-time budget)
        self.evaluators = Evaluator(cfg, self.space, self.model, self.fit, self.network, self.tasks, self.chunk,
                                    self.devices, self.spiking)
        self.ahead = None                        # end-of-run work computed while searching (.ahead.Ahead)
        self.device_generations = None           # search.generations_per_call > 1: the compiled block
        why = generations_per_call_refusal(cfg, self.chunk, self.devices)
        if why is not None:
            raise ValueError(f"search.generations_per_call: {why}")
        if cfg.search.generations_per_call > 1:
            self.device_generations = DeviceGenerations(self.strategy.regevo, self.evaluator("search"), self.space,
                                                        self.fit, cfg.search.generations_per_call)

    # --- evaluators (built lazily: task data is generated on first use) ------------------------------------------
    def evaluator(self, split: str, chunk: int | None = None) -> SplitEval | None:
        return self.evaluators.split(split, chunk)

    def hurdle_evaluator(self) -> SplitEval | None:
        return self.evaluators.hurdle()

    def choice_evaluator(self) -> SplitEval | None:
        """The select tasks with ``hall_of_fame.select_seeds`` seeds each: what the final choice is made on."""
        return self.evaluators.choice()

    def complexities(self, progs) -> np.ndarray:
        return self.evaluators.complexities(progs)

    def check_state(self, state: SearchState) -> None:
        """A one-line ValueError if ``state`` (read from a checkpoint) cannot be this search's: programs out of
        range for its space, populations of another size, NaN or +inf fitness (:func:`.state.check_state`)."""
        check_state(state, self.space, (self.cfg.hall_of_fame.per_complexity, 1))
        self.strategy.check_state(state.strategy)

    def seed_programs(self) -> list:
        """``search.seed_rules`` compiled into the search space (the last, youngest members of an initial
        population)."""
        return [rule_in_space(spec, self.space, self.model) for spec in self.cfg.search.seed_rules]

    def _es(self, n: int, population: int):
        """The run's evosax algorithm over ``n`` constants (scripts read a coefficient search's mean with it)."""
        from .strategies.coefficients import coeff_strategy
        return coeff_strategy(self.cfg, n, population)

    # --- contract ------------------------------------------------------------------------------------------------
    def init(self) -> SearchState:
        t0 = time.perf_counter()
        cfg, strat = self.cfg, self.strategy
        key = jax.random.key(cfg.seed)
        per = cfg.hall_of_fame.per_complexity
        state = SearchState(0, key, None, {}, {}, Archive(self.space, per), Archive(self.space, 1),
                            {"n_candidates": 0, "n_hits": 0, "n_evaluated": 0, "n_select": 0, "elapsed_s": 0.0})
        key, k_init = jax.random.split(key)
        x = strat.initial(k_init)
        ev = self.evaluators.evaluate(state, strat.programs(x), strat.use_fec)
        state.strategy = strat.init(k_init, x, ev)
        self.evaluators.rescore_select(state, ev.programs, ev.selection, ev.hashes)
        state.key = key
        state.counters.pop("_step_evaluated", None)
        state.counters["elapsed_s"] = time.perf_counter() - t0
        self.last_end = time.perf_counter()
        return state

    def step(self, state: SearchState) -> tuple[SearchState, dict]:
        """One call's generations (one, or ``search.generations_per_call``); the last generation's metrics."""
        state, metrics = self.steps(state)
        return state, metrics[-1]

    def steps(self, state: SearchState) -> tuple[SearchState, list[dict]]:
        """The generations of one call: one from the host, or up to ``search.generations_per_call`` = K on the
        device (:mod:`.device_generations`; calls end at multiples of K and at the budget's end); a metrics dict per
        generation."""
        if self.device_generations is None:
            state, metrics = self._host_step(state)
            return state, [metrics]
        return self.device_generations.steps(self, state)

    def _host_step(self, state: SearchState) -> tuple[SearchState, dict]:
        t0 = time.perf_counter()
        # wall time between steps of this process (checkpoints, logging, progress) counts towards
        # budget.time_limit_s too; the time a killed run spent stopped does not
        between = t0 - self.last_end if self.last_end is not None else 0.0
        strat = self.strategy
        state = copy_state(state)
        state.counters["_step_evaluated"] = 0
        key, k_step, k_extra = _split3(state.key)
        x, st = strat.ask(k_step, state.strategy)
        ev = self.evaluators.evaluate(state, strat.programs(x), strat.use_fec)
        state.strategy = strat.tell(k_step, st, x, ev)
        extra = strat.improve(k_extra, state, self.evaluators)      # local search, restarts
        self.evaluators.rescore_select(state, *strat.select_pool(state.strategy, ev))
        best, median, more = strat.report(state.strategy, x, ev)
        state.key = key
        state.generation += 1
        self.track_best(state)
        elapsed = state.counters.get("elapsed_s", 0.0) + between
        state.counters["elapsed_s"] = elapsed + time.perf_counter() - t0
        if self.done(state):            # the generation that ends the search: the strategy's final local search
            extra.update(strat.finish(jax.random.fold_in(k_extra, 2), state, self.evaluators))
        dt = time.perf_counter() - t0
        state.counters["elapsed_s"] = elapsed + dt
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
        metrics.update(more)
        self.last_end = time.perf_counter()
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

    def track_best(self, state: SearchState) -> None:
        """The early-stop statistic: the best select fitness so far (search fitness without select tasks); a gain
        of at most ``budget.min_delta`` does not count as an improvement."""
        best = max(state.select.values()) if self.tasks["select"] and state.select else state.archive.best()[0]
        c = state.counters
        if np.isfinite(best) and best > c.get("stop_best", -math.inf) + self.cfg.budget.min_delta:
            c["stop_best"], c["stop_best_gen"] = float(best), int(state.generation)

    # --- the hall of fame (:mod:`.finalize`) ---------------------------------------------------------------------
    def finalize(self, state: SearchState) -> HallOfFame:
        """Re-score the Pareto candidates on select and final tasks and build the hall of fame."""
        return fin.finalize(self, state)

    def hall_of_fame(self, state: SearchState) -> HallOfFame:
        """A provisional hall of fame without any evaluation (search fitness only): for a running run."""
        return fin.provisional(self, state)

    def baseline_specs(self) -> tuple[str, ...]:
        return fin.baseline_specs(self)

    def score_baselines(self, split: str = "final", min_size: int = 0, with_programs=None, parallel: bool = True):
        """The run's baselines on ``split`` (same tasks, seeds and initial weights as the hall of fame), their
        learning curves and the scores of ``with_programs`` (evaluated in the same call; see finalize)."""
        return fin.score_baselines(self, split, min_size, with_programs, parallel)


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
        state, generations = search.steps(state)
        if progress_fn is not None:
            for metrics in generations:
                progress_fn(metrics)
    hof = search.finalize(state)
    return (hof, state) if return_state else hof


__all__ = ["Search", "SearchState", "state_to_tree", "state_from_tree", "run_search", "SplitEval",
           "snap_variants", "canonical", "TREE_SCHEMA"]
