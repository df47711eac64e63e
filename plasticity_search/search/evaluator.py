"""Evaluation of candidate programs (cf. AutoML-Zero's ``Evaluator``): the task sets of each split, padding into
fixed-size buckets, hurdles and the functional-equivalence (FEC) cache.

* :class:`SplitEval`: one split's tasks x seeds, evaluated in chunks padded to one of three bucket sizes (few
  compiles), optionally sharded over a device mesh.
* :class:`Evaluator`: the run's lazily built :class:`SplitEval` per split (``split``, ``hurdle``, ``choice``) and
  :meth:`Evaluator.evaluate`: search fitness of candidates through the FEC cache and the hurdle, offered to the
  archive; :meth:`Evaluator.rescore_select` re-scores the best new candidates on the select tasks.

The cache itself is data of the :class:`~.state.SearchState` (``state.fec``), so that a checkpoint holds it.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import NamedTuple

import jax
import numpy as np

from ..models import MODELS, model_name
from ..rules.fec import fec_hashes
from ..rules.program import Program, Space, complexities
from .autosize import plan_policy
from .fitness import FitnessFn
from .hall_of_fame import top_distinct
from .state import SearchState, np_prog, take


MIN_BUCKET = 16     # the smallest compiled batch (unless memory allows less)


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, int(n)).bit_length() - 1)


def small_bucket(small: int | None, top: int) -> int | None:
    """The batch of a split's small calls (the per-generation select re-scoring of ``small`` candidates): the power
    of two holding it, when that is below the largest bucket."""
    if small is None or small < 1:
        return None
    s = 1 << (int(small) - 1).bit_length()
    return s if s < top else None


def buckets(chunk: int, small: int | None = None, floor: int = MIN_BUCKET) -> list[int]:
    """The compiled batch sizes of a split: powers of two, the largest <= ``chunk`` (at least ``floor``), then a
    half and a quarter of it, none below ``floor``; plus :func:`small_bucket`. Powers of two from 16 up give every
    candidate bit-identical results whatever batch it runs in (XLA's CPU vectorisation: a batch of 8 changed the
    last bit of a reduction; tests/test_search_throughput.py), and the small bucket does not depend on the chunk,
    so ``budget.chunk`` never changes a result."""
    floor = max(1, int(floor))
    top = max(_pow2_floor(chunk), floor)
    out = {max(floor, top // 4), max(floor, top // 2), top}
    s = small_bucket(small, top)
    if s is not None:
        out.add(s)
    return sorted(out)


# --------------------------------------------------------------------------------------------------------------
# evaluation of programs on one split (all its tasks x seeds), in fixed-size padded chunks
# --------------------------------------------------------------------------------------------------------------
class SplitEval:
    def __init__(self, space: Space, items: list, fitness: FitnessFn, chunk: int, devices: int | None = None,
                 small: int | None = None, floor: int = MIN_BUCKET, tight: bool = False, calls: str = "padding"):
        if calls not in ("padding", "calls"):
            raise ValueError(f"calls: 'padding' or 'calls', got {calls!r}")
        self.space, self.fitness = space, fitness
        self.items = items                       # [(task, evaluate, instances)] (the models' contract)
        self.buckets = buckets(chunk, small, floor)
        self.tight = tight                       # plan: what is left after full calls in one call, padded to 2^k
        self.calls = calls                       # plan: least padding first ("padding") or fewest calls ("calls")
        self.small = small_bucket(small, self.buckets[-1])
        self.mesh = None
        self.shared = None                       # (buckets, per item its instance count): see share_compiles
        if devices is not None:
            # shard the population axis over a mesh; chunk sizes become multiples of the device count and the
            # padding candidates are dropped below, so they never reach fitness or the hall of fame
            from .. import distributed as dist
            self.mesh = dist.population_mesh(devices)
            self.buckets = sorted({dist.padded_size(b, self.mesh) for b in self.buckets})
            if self.small is not None:
                self.small = dist.padded_size(self.small, self.mesh)
            self.items = [(t, fn, dist.replicate(inst, self.mesh)) for t, fn, inst in self.items]

    @classmethod
    def build(cls, space, tasks_and_entries, settings, fitness, split, chunk, steps=None, seeds=None, devices=None,
              small=None, floor=MIN_BUCKET, tight=False, one_shot=False, calls="padding"):
        """``settings``: {model name: the run's settings of that model} (the rate network, the spiking options).
        ``one_shot``: the models compile for one or two calls (the end of a run's baselines of their own).
        ``calls``: how :meth:`plan` splits a batch (:data:`.autosize.PLAN`)."""
        items = []
        for task, entry in tasks_and_entries:
            st = steps if steps is not None else entry.steps
            sd = entry.seed_list if seeds is None else entry.seed_list[:seeds]
            name = model_name(task)
            model = MODELS[name]
            cfg = model.model_config(settings.get(name), st)
            items.append((task, model.make_evaluator(space, task, cfg, one_shot=one_shot),
                          model.make_instances(task, sd, split, st)))
        return cls(space, items, fitness, chunk, devices, small, floor, tight, calls)

    def plan(self, n: int, min_size: int = 0) -> list[tuple[int, int]]:
        """(programs, padded size) of each compiled call for ``n`` programs: a batch that fits the small bucket
        runs in it; otherwise full calls of the largest bucket, then the rest split over the other buckets with
        the least padding, then the fewest calls (``calls="padding"``, a CPU: an FEC-thinned batch of 700 out of
        1024 runs as 512 + 256, not as 1024), or in the fewest calls, then the least padding (``calls="calls"``,
        an accelerator below its knee: the rest in one call of the smallest bucket holding it, 1024).
        ``min_size``: pad a small batch to the bucket of that many programs (equal shapes share one compile). A
        ``tight`` split (the end of a run: a few candidates on many seeds, where padding is paid in full) runs what
        is left after the full calls in one call at the power of two holding it."""
        if self.small is not None and 0 < n <= self.small and min_size <= self.small:
            return [(n, self.small)]
        big = [b for b in self.buckets if b != self.small]
        top = big[-1]
        out = [(top, top)] * (n // top)
        rest = n % top
        if rest and self.tight:
            size = min(top, 1 << (max(rest, min_size, 1) - 1).bit_length())
            if self.shared is not None:          # the other split's batch that holds it (its compile), unless
                up = next((b for b in self.shared[0] if b >= size), None)    # that more than doubles the work
                size = up if up is not None and up <= 2 * size else size
            if self.mesh is not None:
                from .. import distributed as dist
                size = dist.padded_size(size, self.mesh)
            return out + [(rest, size)]
        if rest:
            if min_size > rest:
                return out + [(rest, next(b for b in big if b >= min(min_size, top)))]
            out += self._split(rest, tuple(big))
        return out

    def _split(self, r: int, big: tuple) -> list[tuple[int, int]]:
        """Split of ``r`` < the largest bucket into calls of the ``big`` buckets with the least padding, then the
        fewest calls, or (``self.calls == "calls"``) the other way round (a small DP, memoised; the small bucket
        never takes a slice of a big batch, so no result depends on the chunk)."""
        memo = self.__dict__.setdefault("_plans", {})
        if r not in memo:
            best = [(r, next(b for b in big if b >= r))]
            if self.calls == "padding":
                key = lambda p: (sum(s for _, s in p), len(p))  # noqa: E731
            else:
                key = lambda p: (len(p), sum(s for _, s in p))  # noqa: E731
            for b in big:
                if b < r:
                    cand = [(b, b)] + self._split(r - b, big)
                    if key(cand) < key(best):
                        best = cand
            memo[r] = best
        return memo[r]

    def share_compiles(self, other: "SplitEval") -> "SplitEval":
        """Run this split's calls in the compiled shapes of ``other`` (the search split) where they can: a task
        that ``other`` evaluates with the same compiled function (same task, settings and instance shapes) runs in
        calls of ``other``'s instance count (S instances in ceil(S / s) calls, the last one padded with its own
        first instance, whose results are dropped), and a tight plan pads to ``other``'s batch sizes where that at
        most doubles its batch (a GPU search's batches of 1024 do not take 11 candidates). The end of a
        run (the select choice and final scores of a few candidates on many seeds) then needs no compile of its
        own, and its calls have the search's efficient size (on a CPU a call of 16 candidates x 64 seeds of a deep
        network is memory-bound: the quickstart's select choice took 6.5 s in one call, 3.0 s in 16 calls of 4
        seeds). Every instance is computed by the same per-instance program either way; only how many run side by
        side changes (BENCHMARKS.md, issue 13: equal up to float32 rounding). Not with a device mesh."""
        if self.mesh is not None or other is None or other.mesh is not None:
            return self
        counts = []
        for _, fn, inst in self.items:
            compiled = getattr(fn, "compiled", None)
            twin = next((i_o for _, fn_o, i_o in other.items if compiled is not None
                         and getattr(fn_o, "compiled", None) is compiled
                         and _instance_shapes(i_o) == _instance_shapes(inst)), None)
            counts.append(None if twin is None or _n_instances(inst) <= _n_instances(twin) else _n_instances(twin))
        if any(c is not None for c in counts):
            self.shared = (tuple(b for b in other.buckets if b != other.small), counts)
        return self

    def _call(self, t: int, fn, chunk, inst):
        """``fn(chunk, inst)``, or in calls of the shared instance count (:meth:`share_compiles`) where the batch
        is one of the shared split's."""
        c = None if self.shared is None else self.shared[1][t]
        if c is None or int(np.shape(chunk.term_on)[0]) not in self.shared[0]:
            return fn(chunk, inst)
        chunk = jax.device_put(chunk)            # called once per instance chunk: transferred once
        cache = self.__dict__.setdefault("_inst_chunks", {})
        if t not in cache:
            n = _n_instances(inst)
            parts = []
            for s0 in range(0, n, c):
                real = min(c, n - s0)
                idx = np.concatenate([np.arange(s0, s0 + real), np.full(c - real, s0)])
                parts.append((real, jax.tree.map(lambda a: a[idx], inst)))
            cache[t] = parts
        ms, cvs = [], []
        for real, sub in cache[t]:
            m, cv = jax.device_get(fn(chunk, sub))
            ms.append({k: np.asarray(v)[:, :real] for k, v in m.items()})
            cvs.append(None if cv is None else np.asarray(cv)[:, :real])
        metrics = {k: np.concatenate([m[k] for m in ms], 1) for k in ms[0]}
        return metrics, (None if cvs[0] is None else np.concatenate(cvs, 1))

    def evaluate(self, progs: Program, curves: bool = False, min_size: int = 0):
        """(raw fitness [n], per task {metric: np [n, S]}), plus per task learning curves [n, S, C] with
        ``curves=True``. Programs are evaluated in the compiled calls of :meth:`plan`; inside
        :func:`memo_scope`, only those the memo does not hold yet."""
        progs = Program(*[np.asarray(x) for x in progs])
        memo = _MEMO.get()
        if memo is not None and self.mesh is None:
            return self._evaluate_memo(memo, progs, curves, min_size)
        return self._evaluate(progs, curves, min_size)

    def _evaluate_memo(self, memo: dict, progs: Program, curves: bool, min_size: int):
        """:meth:`evaluate` through ``memo`` ({evaluator: {(batch, program bytes): per-program rows}}).

        Each program is looked up at the batch the whole request's :meth:`plan` gives its position, and the ones
        missing are evaluated in calls of exactly that batch. At a fixed batch a program's results do not depend on
        the other programs of its call (the population axis is vmapped: candidates never interact), but across
        batches they may differ in the last bit (spiking_digits' final loss, batch 16 vs 64), so the results are
        exactly those of evaluating the whole request, whatever the memo held."""
        n = progs.term_on.shape[0]
        if n == 0:
            return self._evaluate(progs, curves, min_size)
        sizes = [size for m, size in self.plan(n, min_size) for _ in range(m)]
        own = memo.setdefault(self, {})          # keyed by the evaluator itself: it stays alive, its id unique
        keys = [(sizes[i], program_key(progs, i)) for i in range(n)]
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        miss = [k for k in first if k not in own]
        for size in sorted({k[0] for k in miss}):
            group = [k for k in miss if k[0] == size]
            _, per_task, cvs = self._evaluate(take(progs, [first[k] for k in group]), True, 0, batch=size)
            for j, k in enumerate(group):
                own[k] = ([{m: v[j] for m, v in d.items()} for d in per_task],
                          [None if c is None else c[j] for c in cvs])
        rows = [own[k] for k in keys]
        per_task = [{m: np.stack([r[0][t][m] for r in rows]) for m in rows[0][0][t]} for t in range(len(self.items))]
        fit = self.fitness.aggregate([self.fitness.per_instance(d) for d in per_task])
        if curves:
            return fit, per_task, [None if rows[0][1][t] is None else np.stack([r[1][t] for r in rows])
                                   for t in range(len(self.items))]
        return fit, per_task

    def _evaluate(self, progs: Program, curves: bool, min_size: int, batch: int | None = None):
        """:meth:`evaluate` in the calls of :meth:`plan`, or with ``batch`` in calls of exactly that many."""
        n = progs.term_on.shape[0]
        per_task = [{} for _ in self.items]
        per_curve: list = [[] for _ in self.items]
        start = 0
        plan = self.plan(n, min_size) if batch is None else [(min(batch, n - i), batch) for i in range(0, n, batch)]
        for m, size in plan:
            idx = np.concatenate([np.arange(start, start + m), np.full(size - m, start)])
            # numpy fields go to the compiled call as they are (its C++ dispatch transfers them: 43 us for a
            # chunk of 512 on the CPU, against 300-400 us for jax.device_put or one jnp.asarray per field, each
            # field an eager dispatch; BENCHMARKS.md issue 13), and each call's results come back in one transfer
            chunk = Program(*[x[idx] for x in progs])
            if self.mesh is not None:
                from .. import distributed as dist
                chunk = dist.shard_population(chunk, self.mesh)
            for t, (task, fn, inst) in enumerate(self.items):
                metrics, cv = self._call(t, fn, chunk, inst)
                if self.mesh is not None:
                    metrics, cv = dist.gather((metrics, cv if curves else None))
                metrics, cv = jax.device_get((metrics, cv if curves else None))
                for k, v in metrics.items():
                    per_task[t].setdefault(k, []).append(np.asarray(v)[:m])
                if cv is not None:
                    per_curve[t].append(np.asarray(cv)[:m])
            start += m
        per_task = [{k: np.concatenate(v, 0) for k, v in d.items()} for d in per_task]
        fit = self.fitness.aggregate([self.fitness.per_instance(d) for d in per_task])
        if curves:
            return fit, per_task, [np.concatenate(c, 0) if c else None for c in per_curve]
        return fit, per_task


# the memo of :func:`memo_scope` (None outside one); a context variable, so that it holds for the thread (or
# context) that opened the scope and the calls it runs side by side (:func:`.overlap.overlapped`), not for others
_MEMO: contextvars.ContextVar = contextvars.ContextVar("plasticity_search_eval_memo", default=None)


@contextlib.contextmanager
def memo_scope(memo: dict):
    """Within the block, :meth:`SplitEval.evaluate` takes each program's results from ``memo`` where it holds them
    and adds the others: the end of a run computed ahead on a snapshot of the search and again at its end
    evaluates only what changed in between, with the results of evaluating everything at the end."""
    token = _MEMO.set(memo)
    try:
        yield memo
    finally:
        _MEMO.reset(token)


def memoized(kind: str, key, compute):
    """``compute()``; inside :func:`memo_scope` kept in the memo under ``(kind, key)`` and computed once: the host
    work of the end of a run that is a pure function of one program (its canonical form, its formula and LaTeX),
    which a finalize computed ahead would otherwise repeat at the end (sympy: about 0.1 s a program)."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    own = memo.setdefault(kind, {})
    if key not in own:
        own[key] = compute()
    return own[key]


def program_key(progs: Program, i: int) -> bytes:
    """Program ``i`` of a population as bytes (every field, with its dtype and shape): the memo's key."""
    parts = []
    for x in progs:
        a = np.ascontiguousarray(np.asarray(x)[i])
        parts.append(f"{a.dtype.str}{a.shape}".encode())
        parts.append(a.tobytes())
    return b"|".join(parts)


def _n_instances(inst) -> int:
    return int(np.shape(jax.tree.leaves(inst)[0])[0])


def _instance_shapes(inst) -> tuple:
    """The shapes and dtypes of one instance's arrays."""
    return tuple((np.shape(a)[1:], str(a.dtype)) for a in jax.tree.leaves(inst))


def n_seeds(entry, n: int):
    """``n`` seeds for a task entry: 0..n-1 for a count, the listed seeds extended past their maximum otherwise."""
    if isinstance(entry.seeds, int):
        return n
    seeds = list(entry.seeds)[:n]
    nxt = max(seeds, default=-1) + 1
    return tuple(seeds + list(range(nxt, nxt + n - len(seeds))))


def with_seeds(entries, n: int) -> list:
    """``(task, entry)`` pairs with ``n`` seeds per entry (:func:`n_seeds`)."""
    return [(t, dataclasses.replace(e, seeds=n_seeds(e, n))) for t, e in entries]


# --------------------------------------------------------------------------------------------------------------
class Evaluated(NamedTuple):
    """Candidates after :meth:`Evaluator.evaluate` (all numpy, leading axis = candidate)."""
    programs: Program
    fitness: np.ndarray         # raw search fitness (-inf = worst)
    hashes: list                # FEC hashes
    complexity: np.ndarray
    selection: np.ndarray       # fitness minus the complexity penalty: what selection sees


class Evaluator:
    """The run's evaluators (built lazily: task data is generated on first use) and the FEC-cached search
    evaluation. ``chunk``: the strategy's batch size; every split pads to the same sizes (one compile)."""

    def __init__(self, cfg, space: Space, model: str, fit: FitnessFn, network, tasks: dict, chunk: int,
                 devices=None, spiking=None):
        self.cfg, self.space, self.model, self.fit, self.network = cfg, space, model, fit, network
        self.tasks, self.chunk, self.devices, self.spiking = tasks, chunk, devices, spiking
        self._evals: dict = {}

    def build(self, entries, split: str, chunk: int, space=None, network=None, **kw) -> SplitEval:
        """A :class:`SplitEval`; its calls never exceed the run's (memory-capped) chunk."""
        # the run's big batches start at MIN_BUCKET; a smaller fixed request (a refinement's ES population, one
        # program) keeps its own size: it never depends on budget.chunk
        kw.setdefault("floor", min(MIN_BUCKET, _pow2_floor(min(chunk, self.chunk))))
        kw.setdefault("calls", plan_policy())
        return SplitEval.build(self.space if space is None else space, entries,
                               {"rate": self.network if network is None else network, "spiking": self.spiking},
                               self.fit, split, min(chunk, self.chunk), devices=self.devices, **kw)

    def split(self, split: str, chunk: int | None = None) -> SplitEval | None:
        """The evaluator of a split's tasks; the final split (scored once, at the end, on a few candidates and
        the baselines) is ``tight``: its calls are padded to the next power of two, not to the search's batch."""
        chunk = chunk or self.chunk
        key = (split, chunk)
        if key not in self._evals:
            if not self.tasks[split]:
                return None
            small = self.cfg.hall_of_fame.select_top_k if split == "select" else None
            ev = self.build(self.tasks[split], split, chunk, small=small or None, tight=split == "final")
            if split == "final":
                ev.share_compiles(self.split("search"))
            self._evals[key] = ev
        return self._evals[key]

    def hurdle(self) -> SplitEval | None:
        h = self.cfg.search.hurdle
        if h is None:
            return None
        if "hurdle" not in self._evals:
            self._evals["hurdle"] = self.build(self.tasks["search"], "search", self.chunk, steps=h.steps,
                                               seeds=h.seeds)
        return self._evals["hurdle"]

    def refine_split(self, chunk: int) -> SplitEval | None:
        """The search tasks with ``hybrid.seeds`` seeds each (None when unset): what an evosax refinement judges
        constants on, less noisy than the generations' few seeds (the same split: no select or final data)."""
        n = self.cfg.hybrid.seeds
        if n is None:
            return None
        key = ("refine", chunk)
        if key not in self._evals:
            entries = with_seeds(self.tasks["search"], n)
            self._evals[key] = self.build(entries, "search", chunk)
        return self._evals[key]

    def choice_entries(self, split: str = "select") -> list:
        """The task entries of ``split``; on select with ``hall_of_fame.select_seeds`` seeds each."""
        n = self.cfg.hall_of_fame.select_seeds
        if split != "select" or n is None:
            return self.tasks[split]
        return with_seeds(self.tasks[split], n)

    def choice(self) -> SplitEval | None:
        """The select tasks with ``hall_of_fame.select_seeds`` seeds each: what the final choice is made on."""
        if self.cfg.hall_of_fame.select_seeds is None or not self.tasks["select"]:
            return self.split("select")
        if "choice" not in self._evals:       # scored once, at the end: tight like the final split
            ev = self.build(self.choice_entries("select"), "select", self.chunk, tight=True)
            self._evals["choice"] = ev.share_compiles(self.split("search"))
        return self._evals["choice"]

    def complexities(self, progs: Program) -> np.ndarray:
        return complexities(np_prog(progs), self.space)

    # --- search fitness through the FEC cache ------------------------------------------------------------------
    def evaluate(self, state: SearchState, progs: Program, use_fec: bool, chunk: int | None = None) -> Evaluated:
        """Search fitness of candidates (FEC hits reuse ``state.fec``; with a hurdle, only candidates that pass
        it get the full evaluation); every candidate is offered to ``state.archive``. Updates state counters."""
        progs = np_prog(progs)
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
        c = state.counters
        if todo:
            sub = take(progs, todo)
            hurdle = self.hurdle()
            if hurdle is not None:
                f1, _ = hurdle.evaluate(sub)
                passed = np.nonzero(f1 >= self.cfg.search.hurdle.threshold)[0]
                f = f1.copy()
                if len(passed):
                    f2, _ = self.split("search", chunk).evaluate(take(sub, passed))
                    f[passed] = f2
                c["n_hurdle_failed"] = c.get("n_hurdle_failed", 0) + len(todo) - len(passed)
            else:
                f, _ = self.split("search", chunk).evaluate(sub)
            for j, i in enumerate(todo):
                fit[i] = f[j]
                state.fec[hashes[i]] = float(f[j])
        for i, h in enumerate(hashes):
            if np.isnan(fit[i]):
                fit[i] = state.fec[h] if h in state.fec else fit[first[h]]
        c["n_candidates"] = c.get("n_candidates", 0) + n
        c["n_hits"] = c.get("n_hits", 0) + (hits if use_fec else 0)
        c["n_evaluated"] = c.get("n_evaluated", 0) + len(todo)
        c["_step_evaluated"] = c.get("_step_evaluated", 0) + len(todo)
        cplx = self.complexities(progs)
        state.archive.add(progs, fit, cplx, hashes)
        return Evaluated(progs, fit, hashes, cplx, self.fit.penalized(fit, cplx))

    def rescore_select(self, state: SearchState, progs: Program, sel_fitness, hashes, k: int | None = None) -> None:
        """Re-score the top ``k`` (default ``select_top_k``) distinct candidates (by selection fitness) on the
        select tasks."""
        k = self.cfg.hall_of_fame.select_top_k if k is None else k
        ev = self.split("select")
        if k == 0 or ev is None:
            return
        scored = np.array([h in state.select for h in hashes], bool)     # already re-scored: never picked again
        pick = top_distinct(np.where(scored, -np.inf, np.asarray(sel_fitness, np.float64)), hashes, k)
        if not pick:
            return
        sub = take(np_prog(progs), pick)
        f, _ = ev.evaluate(sub)
        hs = [hashes[i] for i in pick]
        for h, v in zip(hs, f):
            state.select[h] = float(v)
        state.select_archive.add(sub, f, self.complexities(sub), hs)
        state.counters["n_select"] = state.counters.get("n_select", 0) + len(pick)


__all__ = ["SplitEval", "Evaluator", "Evaluated", "n_seeds", "buckets", "MIN_BUCKET", "memo_scope", "memoized",
           "program_key"]
