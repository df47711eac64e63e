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


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's in-memory compiled executables after each test module (the persistent cache keeps them on disk).

    Every executable maps its code into the process; the whole suite in one process compiles thousands, and past
    the kernel's limit on memory mappings (vm.max_map_count, 65530 by default) XLA's compiler crashed with a
    segmentation fault in a later test (test_spiking_interpreter_parity, twice in a row on a clean clone)."""
    yield
    import sys
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
