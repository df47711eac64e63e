"""XLA compile options of the package's jitted functions (the one place that sets them).

XLA's CPU backend spends most of a compile in LLVM's optimisation passes, which
``xla_backend_optimization_level`` sets (fast-math is off at every level). Measured on the quickstart's deep network
(one compile of the search's evaluator for 16 programs on the 2-core CPU; BENCHMARKS.md, issue 13):

====================  ==================  ===============  =====================================
level                 trace+compile+run   run (per call)   metrics against level 3
====================  ==================  ===============  =====================================
3 (XLA's default)     6.5 s               0.148 s
2 (:data:`ONE_SHOT`)  3.2 s               0.166 s (+12%)   bit-identical
1                     3.2 s               0.173 s          bit-identical
0                     4.8 s               2.47 s (16x)     differ in the last bits
====================  ==================  ===============  =====================================

* :func:`mutation` (:data:`FAST_COMPILE`, level 0, below :data:`MUTATION_BATCH` programs): big graphs that run
  little per call (mutation, random programs). From 256 children a generation's ``ask`` runs at level 2 instead:
  on the CPU at 1,024 children it takes 4.2 ms per generation against 12.4 ms (compile 5.5 vs 4.7 s), at 32
  children 0.98 vs 1.29 ms (compile +0.9 s, which the few generations of a small search do not repay). The
  constants a mutation perturbs differ between the levels in the last float32 bit; every shipped config has at most
  32 children and keeps level 0 (the results recorded with it);
* :func:`one_shot` (level 2 on the CPU): evaluators compiled for one or two calls (the baselines outside a run's
  own compile, the held-out generalization conditions, weight trajectories), where the compile costs more than
  the slower run. Bit-identical to level 3 on the quickstart's hall of fame, generalization report and weight
  histograms, and on random spiking programs (stdp_pattern, spiking_digits). The search's own evaluators keep
  level 3: they run every generation.
"""
from __future__ import annotations

FAST_COMPILE = {"xla_backend_optimization_level": 0}
ONE_SHOT = {"xla_backend_optimization_level": 2}
MUTATION_BATCH = 256


def mutation(batch: int) -> dict:
    """The ``compiler_options`` of mutation and random programs for ``batch`` programs per call (see above)."""
    return dict(FAST_COMPILE if int(batch) < MUTATION_BATCH else ONE_SHOT)


def one_shot(enabled: bool = True) -> dict | None:
    """The ``compiler_options`` of a function compiled for a single use: :data:`ONE_SHOT` on the CPU backend
    (measured there), None (XLA's defaults) elsewhere or when not ``enabled``."""
    if not enabled:
        return None
    import jax

    return dict(ONE_SHOT) if jax.default_backend() == "cpu" else None


def compile_cache_dir() -> str | None:
    """Where JAX's persistent compilation cache goes by default: ``$XDG_CACHE_HOME/plasticity-search/jax``
    (``~/.cache/...``); None when opted out (``PLASTICITY_SEARCH_JAX_CACHE=0``, ``false``, ``no``, ``off``).
    Needs no jax: the tests set it before jax is imported (tests/conftest.py)."""
    import os

    if os.environ.get("PLASTICITY_SEARCH_JAX_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "plasticity-search", "jax")


__all__ = ["FAST_COMPILE", "ONE_SHOT", "MUTATION_BATCH", "mutation", "one_shot", "compile_cache_dir"]
