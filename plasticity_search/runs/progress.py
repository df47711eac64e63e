"""The progress bar of ``plasticity-search run``: generation, best fitness, candidates/s, ETA (rich, on stderr).

Quiet when stderr is not a terminal (pipes, CI, tests): nothing is printed at all.
"""
from __future__ import annotations

import sys


class SearchProgress:
    """``with SearchProgress(total, done) as p: p.update(done, metrics)``; no output unless ``enabled``."""

    def __init__(self, total: int, done: int = 0, *, enabled: bool | None = None, stream=None,
                 description: str = "search"):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else bool(enabled)
        self.total, self.done, self.description = int(total), int(done), description
        self._progress = None
        self._task = None

    def __enter__(self) -> SearchProgress:
        if not self.enabled:
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
            TextColumn("best {task.fields[best]}"), TextColumn("{task.fields[cps]} cand/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False, disable=False)
        self._progress.__enter__()
        self._task = self._progress.add_task(self.description, total=self.total, completed=self.done,
                                             best="-", cps="-")
        return self

    def update(self, done: int, metrics: dict | None = None, total: int | None = None) -> None:
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        if self._progress is None:
            return
        m = metrics or {}
        best, cps = m.get("best_fitness"), m.get("candidates_per_s")
        self._progress.update(self._task, completed=self.done, total=self.total,
                              best="-" if best is None else f"{best:.4g}",
                              cps="-" if cps is None else f"{cps:,.0f}")

    def log(self, text: str) -> None:
        """A line above the bar (or nothing when quiet)."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
