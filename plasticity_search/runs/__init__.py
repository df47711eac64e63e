"""The runs layer: run directories, checkpoints, progress, wandb, plots, the HTML report, ``inspect``, and rules
named ``RUN_DIR:RANK``.

:func:`resolve_rule_spec` is where what the user typed as a rule is resolved (the application edge): the command
line calls it for every RULE argument. It imports nothing heavy: JAX, the search engine, matplotlib and wandb load
only when used.
"""
from __future__ import annotations

import os

from .rundir import RunDirError


def resolve_run_rank(spec: str):
    """``RUN_DIR:RANK`` -> ResolvedRule of that rank of the run's hall of fame (0 = chosen best); None otherwise."""
    from ..rules.resolve import RUN_RANK    # the one pattern (imported here: importing the runs layer stays light)

    m = RUN_RANK.match(spec.strip()) if isinstance(spec, str) else None
    if m is None:
        return None
    path, digits = m.group("path"), m.group("rank")
    if len(digits.lstrip("-")) > 9:     # no hall of fame comes near; int() of 4300+ digits is refused by Python
        cut = lambda t, n: t if len(t) <= n else t[:n] + "..."  # noqa: E731
        raise RunDirError(f"rank '{cut(digits, 20)}' in '{cut(spec, 60)}' is out of range (RUN_DIR:RANK)")
    rank = int(digits)
    if not os.path.exists(path):
        raise RunDirError(f"run directory '{path}' does not exist (in '{spec}', RUN_DIR:RANK)")
    from .results import rule_from_run
    from .validate import check_run_dir

    check_run_dir(path)         # a damaged or hostile run directory: one line, before anything reads it
    return rule_from_run(path, rank)


def resolve_rule_spec(spec: str):
    """What the user typed as a rule -> ResolvedRule: ``RUN_DIR:RANK`` (a rule of a run's hall of fame), else a
    known rule name, a formula or a rule ``.json`` file (:func:`plasticity_search.rules.resolve.resolve_rule`)."""
    rule = resolve_run_rank(spec)
    if rule is not None:
        return rule
    from ..rules.resolve import resolve_rule

    return resolve_rule(spec)


__all__ = ["RunDirError", "resolve_run_rank", "resolve_rule_spec"]
