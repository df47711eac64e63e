"""Work of the end of a run done while it searches.

The baselines outside the candidates' final call (BP on the final split: another network, its own compile) and the
baselines of the held-out generalization conditions (FA and BP on each: new input sizes or networks, new compiles)
are pure functions of the config. :class:`Ahead` computes them one after the other in one background thread that
starts after the initial population; the end of the run takes each result with :meth:`Ahead.get`, waiting for it
if the thread has not got there yet. Near the end of the search, :class:`FinalizeAhead` queues on the same thread
the finalize of a snapshot of the search (and the generalization of its chosen rule), so that the end of the run
computes only what changed since. The search keeps its own threads: a compiled call of the search leaves part of
a GPU or of the CPU cores idle, and a compile (a few seconds for each new shape of a deep network, one core) runs
beside the search's calls instead of after them. Each job computes exactly what the end of the run would compute
in its place (the same evaluators, programs, instances and batches), so no result depends on it. On a CPU whose
cores the search already keeps busy this moves work rather than saving it, and a job's Python work (tracing, sympy)
competes with the search's thread for the GIL: jobs run with a short switch interval (:func:`short_switches`), and
the finalize's per-program sympy work is kept in its memo (:func:`.evaluator.memoized`), so that it is done once
(on the H200 the finalize ahead made the generations slower by what it saved at the end; BENCHMARKS.md, issue 13).

Not used with a device mesh or several processes (collectives must be issued in the same order everywhere) and
not for a run that is only finalized (nothing to overlap).
"""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Callable, Hashable

# the interpreter's switch interval while a job runs: a job's Python work (tracing, sympy) holds the GIL, and with
# the default 5 ms the search's thread waits up to that long for it after each compiled call it waited on (a loop
# of 10 short XLA calls: 4.7 ms alone, 90 ms beside a sympy thread at 5 ms, 15 ms at 0.2 ms, the sympy thread
# as fast; BENCHMARKS.md, issue 13)
SWITCH_S = 2e-4


@contextlib.contextmanager
def short_switches(interval: float = SWITCH_S):
    """``sys.setswitchinterval`` at most ``interval`` within the block, then as before."""
    prev = sys.getswitchinterval()
    sys.setswitchinterval(min(prev, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(prev)


class Ahead:
    """Jobs ``{key: thunk}`` run in order in one daemon thread (started by :meth:`start`); :meth:`submit` queues
    more while it runs. The thread waits for new jobs until :meth:`stop`."""

    def __init__(self, jobs: dict[Hashable, Callable[[], object]]):
        self._queue = list(jobs.items())
        self._keys = set(jobs)
        self._done: dict = {}
        self._events = {k: threading.Event() for k in jobs}
        self._thread: threading.Thread | None = None
        self._stop = False
        self._busy = False
        self._cv = threading.Condition()

    def __len__(self) -> int:
        return len(self._keys)

    def start(self) -> "Ahead":
        if self._thread is None and not self._stop:
            self._thread = threading.Thread(target=self._run, name="ahead", daemon=True)
            self._thread.start()
        return self

    def submit(self, key: Hashable, thunk: Callable[[], object]) -> bool:
        """Queue one more job (after the others); False (nothing queued) when stopped or ``key`` is taken."""
        with self._cv:
            if self._stop or key in self._keys:
                return False
            self._keys.add(key)
            self._events[key] = threading.Event()
            self._queue.append((key, thunk))
            self._cv.notify()
        return True

    def idle(self) -> bool:
        """No job queued or running."""
        with self._cv:
            return not self._queue and not self._busy

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stop:
                    self._cv.wait()
                if self._stop:
                    break
                key, thunk = self._queue.pop(0)
                self._busy = True
            try:
                with short_switches():
                    self._done[key] = (True, thunk())
            except BaseException as exc:  # noqa: BLE001 - the end of the run computes it again and reports it
                self._done[key] = (False, exc)
            finally:
                with self._cv:
                    self._busy = False
                self._events[key].set()
        for ev in list(self._events.values()):     # stopped: whoever waits computes it
            ev.set()

    def get(self, key: Hashable, thunk: Callable[[], object] | None = None):
        """The result of job ``key`` (waiting for it); a key that is not a job, or a job that failed, is computed
        here by ``thunk`` (None without one)."""
        ev = self._events.get(key)
        if ev is not None and self._thread is not None:
            ev.wait()
            ok, val = self._done.get(key, (False, None))
            if ok:
                return val
        return None if thunk is None else thunk()

    def stop(self, wait_s: float = 30.0) -> None:
        """Run no further job and wait up to ``wait_s`` for the one running (a process that exits while a thread is
        inside a compiled call may abort instead of exiting cleanly); waiters compute their own."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait_s)


class FinalizeAhead:
    """The end of the run's evaluations computed ahead, near the end of the search, on snapshots of its state.

    :func:`.finalize.finalize` re-scores the Pareto candidates of the archives (search, select choice, final with
    FA). Those are pure functions of each candidate program, and the set changes little near the end of a search
    (the quickstart: 43 programs were Pareto candidates over its 85 generations, the last change at generation 70;
    BENCHMARKS.md, issue 13). When the search is within its last tenth of generations or last third of its patience
    (:func:`near_end`) and the candidate set differs from the last snapshot's, :meth:`after_generation` queues a
    finalize of a copy of the state on the :class:`Ahead` thread (one at a time), inside one evaluation memo
    (:func:`.evaluator.memo_scope`); :meth:`finalize` at the end waits for it and evaluates only what the memo
    lacks. The hall of fame is exactly the one of finalizing at the end without it (the same evaluators, and a
    program's results do not depend on the others in its call; tests/test_search_throughput.py). With held-out
    ``conditions`` (the run's generalization), the job also scores the snapshot's chosen rule on them; the end
    of the run takes that report when it chose the same rule (:meth:`generalization`).
    """

    def __init__(self, search, ahead: Ahead, conditions: list | None = None):
        self.search, self.ahead, self.conditions = search, ahead, list(conditions or [])
        self.memo: dict = {}
        self.reports: dict = {}      # generalization reports of chosen rules: {rule key: report}
        self.key = None              # the last job queued
        self._last = None            # its candidate set

    def after_generation(self, state) -> bool:
        """Queue a finalize of ``state`` when due (see the class); True when one was queued."""
        from .finalize import candidate_hashes, evaluators
        from .state import copy_state

        if not near_end(self.search, state) or not self.ahead.idle():
            return False
        cands = candidate_hashes(state)
        if not cands or cands == self._last:
            return False
        evaluators(self.search)          # built on this thread, so both finalizes use the same ones
        snap = copy_state(state)
        key = ("finalize", int(state.generation))
        if not self.ahead.submit(key, lambda: self._finalize(snap)):
            return False
        self.key, self._last = key, cands
        return True

    def _finalize(self, state):
        from .evaluator import memo_scope
        from .generalize import generalization_report

        with memo_scope(self.memo):
            hof = self.search.finalize(state)
        if self.conditions and len(hof):
            prog, space = hof.entries[hof.best].rule_program()
            key = _rule_key(prog, space)
            if key not in self.reports:
                self.reports[key] = generalization_report(prog, space, self.search.cfg, self.conditions,
                                                          ahead=self.ahead)
        return True

    def generalization(self, prog, space) -> dict | None:
        """The generalization report of the chosen rule ``prog`` computed ahead on :attr:`conditions`, or None
        (another rule; no conditions). Call after :meth:`finalize`."""
        return self.reports.get(_rule_key(prog, space))

    def finalize(self, state):
        """``search.finalize(state)`` through the memo, after the finalize running ahead (if any) is done."""
        from .evaluator import memo_scope

        if self.key is not None:
            self.ahead.get(self.key)
        with memo_scope(self.memo):
            return self.search.finalize(state)


def _rule_key(prog, space) -> tuple:
    from ..rules.program import stack
    from .evaluator import program_key

    return repr(space.to_dict()), program_key(stack([prog]), 0)


def near_end(search, state) -> bool:
    """Whether the search may end soon: within the last tenth of ``generations`` (at least 2), the last third of
    ``budget.patience`` (at least 2) since the best select fitness last improved, or the last tenth of
    ``budget.time_limit_s``."""
    c, b = state.counters, search.cfg.budget
    gens = int(search.cfg.generations)
    if gens - state.generation <= max(2, gens // 10):
        return True
    if b.patience is not None:
        left = b.patience - (state.generation - c.get("stop_best_gen", 0))
        if left <= max(2, b.patience // 3):
            return True
    return b.time_limit_s is not None and c.get("elapsed_s", 0.0) >= 0.9 * b.time_limit_s


__all__ = ["Ahead", "FinalizeAhead", "near_end", "short_switches", "SWITCH_S"]
