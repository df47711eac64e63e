import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("MPLBACKEND", "Agg")

# One persistent XLA compilation cache for the whole session, from its first compile on, in-process and in the
# subprocesses the tests start: the place `plasticity-search run` uses (runs.runner.enable_compile_cache), set
# before jax is imported. Identical computations built by different tests then compile once even on a clean
# machine (before, the cache started with the first test that ran a search, and held only compiles over 1 s
# until then). A cached executable is the same machine code: results do not change.
from plasticity_search.jit_options import compile_cache_dir  # noqa: E402 - imports no jax

_cache = compile_cache_dir()
if _cache is not None and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
