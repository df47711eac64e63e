"""Progress of ``plasticity-search run`` on stderr: what the run is doing (its phase) and, per generation, the
generation, the best fitness so far (search and select), candidates/s and the ETA.

* On a terminal: a rich progress bar whose label names the phase (compiling, search, finalizing, ...).
* Not on a terminal (nohup, SLURM, pipes): plain lines, one per phase and one every ``every_s`` seconds of search
  (and for the first and last generation), so a log file shows where a run is.
* ``enabled=False``: nothing at all.
"""
from __future__ import annotations

import sys
import time

LINE_EVERY_S = 30.0


class SearchProgress:
    """``with SearchProgress(total, done) as p: p.phase("..."); p.update(done, metrics)``."""

    def __init__(self, total: int, done: int = 0, *, enabled: bool | None = None, stream=None,
                 description: str = "search", every_s: float = LINE_EVERY_S):
        self.stream = stream if stream is not None else sys.stderr
        self.mode = "off" if enabled is False else ("bar" if _isatty(self.stream) else "lines")
        self.total, self.done, self.description = int(total), int(done), description
        self.every_s = float(every_s)
        self._progress = None
        self._task = None
        self._t0 = time.perf_counter()
        self._last_line = -float("inf")
        self._gen_t0: float | None = None
        self._gen_done0 = int(done)

    def __enter__(self) -> SearchProgress:
        if self.mode != "bar":
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self.stream)
        self._progress = Progress(
            TextColumn("[bold]{task.description}[/] gen"), MofNCompleteColumn(), BarColumn(),
            TextColumn("best so far {task.fields[best]}"), TextColumn("select {task.fields[sel]}"),
            TextColumn("{task.fields[cps]} cand/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False, disable=False)
        self._progress.__enter__()
        self._task = self._progress.add_task(self.description, total=self.total, completed=self.done,
                                             best="-", sel="-", cps="-")
        return self

    # --- phases -------------------------------------------------------------------------------------------------
    def phase(self, text: str) -> None:
        """The run entered a phase (compiling, finalizing, ...): the bar's label, or one plain line."""
        if self.mode == "bar" and self._progress is not None:
            self._progress.update(self._task, description=text)
        elif self.mode != "off":         # plain lines, or after the bar has closed (finalizing, report)
            self._line(text)

    # --- generations --------------------------------------------------------------------------------------------
    def update(self, done: int, metrics: dict | None = None, total: int | None = None) -> None:
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        m = metrics or {}
        best = m.get("best_fitness_ever", m.get("best_fitness"))
        sel = m.get("best_select_fitness")
        cps = m.get("candidates_per_s")
        if self.mode == "bar" and self._progress is not None:
            self._progress.update(self._task, completed=self.done, total=self.total, best=_num(best),
                                  sel=_num(sel), cps=_rate(cps))
            return
        if self.mode != "lines" or metrics is None:
            return
        now = time.perf_counter()
        if self._gen_t0 is None:     # the rate counts the generations after the first update (which may bring
            self._gen_t0, self._gen_done0 = now, self.done      # several: search.generations_per_call)
        first = self.done == self._gen_done0
        if not (first or self.done >= self.total or now - self._last_line >= self.every_s):
            return
        rate = (self.done - self._gen_done0) / max(now - self._gen_t0, 1e-9) if not first else None
        eta = f"{(self.total - self.done) / rate:.0f} s" if rate else "-"
        self._line(f"gen {self.done}/{self.total}  best so far {_num(best)}  select {_num(sel)}  "
                   f"{_rate(cps)} cand/s  ETA {eta} (at most: a run may stop early)")

    def log(self, text: str) -> None:
        """A line above the bar, or a plain line."""
        if self.mode == "bar" and self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        elif self.mode != "off":
            self._line(text)

    def _line(self, text: str) -> None:
        now = time.perf_counter()
        self._last_line = now
        print(f"[{now - self._t0:7.1f} s] {text}", file=self.stream, flush=True)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _rate(v) -> str:
    """Candidates per second: whole numbers from 10 up (``1,234``), two significant digits below (``0.19``: a
    spiking search of a few candidates a second is not "0")."""
    return "-" if v is None else f"{v:,.0f}" if v >= 10 else f"{v:.2g}"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
