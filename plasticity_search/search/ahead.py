"""Work of the end of a run that does not depend on what the search finds, done while it searches.

The baselines outside the candidates' final call (BP on the final split: another network, its own compile) and the
baselines of the held-out generalization conditions (FA and BP on each: new input sizes or networks, new compiles)
are pure functions of the config. :class:`Ahead` computes them one after the other in one background thread that
starts with the run; the end of the run takes each result with :meth:`Ahead.get`, waiting for it if the thread has
not got there yet. The search keeps its own threads: on a CPU a compiled call of the search leaves part of the
cores idle, and a compile (5-10 s for each new shape of a deep network, one core) runs beside the search's calls
instead of after them. Each job computes exactly what the end of the run would compute in its place (the same
evaluator, programs, instances and batch), so no result depends on it.

Not used with a device mesh or several processes (collectives must be issued in the same order everywhere) and
not for a run that is only finalized (nothing to overlap).
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable


class Ahead:
    """Jobs ``{key: thunk}`` run in order in one daemon thread (started by :meth:`start`)."""

    def __init__(self, jobs: dict[Hashable, Callable[[], object]]):
        self._jobs = dict(jobs)
        self._done: dict = {}
        self._events = {k: threading.Event() for k in self._jobs}
        self._thread: threading.Thread | None = None
        self._stop = False

    def __len__(self) -> int:
        return len(self._jobs)

    def start(self) -> "Ahead":
        if self._jobs and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ahead", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        for key, thunk in self._jobs.items():
            if self._stop:
                break
            try:
                self._done[key] = (True, thunk())
            except BaseException as exc:  # noqa: BLE001 - the end of the run computes it again and reports it
                self._done[key] = (False, exc)
            finally:
                self._events[key].set()
        for ev in self._events.values():     # stopped: whoever waits computes it
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

    def has(self, key: Hashable) -> bool:
        return key in self._jobs and self._thread is not None

    def stop(self, wait_s: float = 30.0) -> None:
        """Run no further job and wait up to ``wait_s`` for the one running (a process that exits while a thread is
        inside a compiled call may abort instead of exiting cleanly); waiters compute their own."""
        self._stop = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait_s)


__all__ = ["Ahead"]
