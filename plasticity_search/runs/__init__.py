"""The runs layer: run directories, checkpoints, progress, wandb, plots, the HTML report, ``inspect``, and rules
named ``RUN_DIR:RANK``.

Importing this package registers the ``RUN_DIR:RANK`` resolver in
:data:`plasticity_search.rules.resolve.RESOLVERS` (the CLI imports it for every command). It imports nothing
heavy: JAX, the search engine, matplotlib and wandb load only when used.
"""
from __future__ import annotations

import os
import re

from .rundir import RunDirError

_RUN_RANK = re.compile(r"^(?P<path>[^;=]+?):(?P<rank>[+-]?\d+)$")     # formulas never contain ':'



def resolve_run_rank(spec: str):
    """``RUN_DIR:RANK`` -> ResolvedRule of that rank of the run's hall of fame (0 = chosen best); None otherwise."""
    m = _RUN_RANK.match(spec.strip()) if isinstance(spec, str) else None
    if m is None:
        return None
    path, rank = m.group("path"), int(m.group("rank"))
    if not os.path.exists(path):
        raise RunDirError(f"run directory '{path}' does not exist (in '{spec}', RUN_DIR:RANK)")
    from .results import rule_from_run

    return rule_from_run(path, rank)


def _register() -> None:
    from ..rules.resolve import RESOLVERS

    if resolve_run_rank not in RESOLVERS:
        RESOLVERS.append(resolve_run_rank)


_register()

__all__ = ["RunDirError", "resolve_run_rank"]
