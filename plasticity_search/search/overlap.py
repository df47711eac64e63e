"""Independent evaluations side by side: the end of a run (select choice, final scores, baselines, held-out
conditions) is a handful of compiled calls that do not depend on each other.

On a CPU, a call of a small network over a long stream (5000 online steps of Yin-Yang) is a sequential scan of
small matrix products that keeps one core busy; two such calls from two threads take about the time of one
(measured on the 2-core machine: FA and BP on 16 Yin-Yang streams 12.4 -> 7.1 s). JAX releases the GIL while a
compiled call runs, and each call computes exactly what it computes alone, so results do not change. Calls of the
same program and shapes should not go side by side before it is compiled: each thread would compile it (two
threads, the same 20 s compile twice). With several processes (a distributed run) every process must issue its
collectives in the same order, so there the calls run one after the other.
"""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence


def overlapped(thunks: Sequence[Callable[[], object]], workers: int | None = None) -> list:
    """``[t() for t in thunks]``, computed side by side in up to ``workers`` threads (default: the CPU count, at
    least 2); in order, one after the other, with one thunk, in a multi-process run or with ``workers=1``. The
    first exception is raised."""
    import os

    import jax

    thunks = list(thunks)
    n = max(1, min(int(workers if workers is not None else max(2, os.cpu_count() or 2)), len(thunks)))
    if n <= 1 or jax.process_count() > 1:
        return [t() for t in thunks]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="overlap") as ex:
        # each thunk in a copy of the caller's context (an evaluation memo scope holds in the threads too)
        futures = [ex.submit(contextvars.copy_context().run, t) for t in thunks]
        return [f.result() for f in futures]


__all__ = ["overlapped"]
