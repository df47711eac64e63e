"""Batch sizes that fill the device: ``search.children: auto`` / ``search.population: auto`` and the evaluation
chunk (the most candidates one compiled call evaluates).

A rate evaluation of ``n`` candidates on ``S`` task instances trains ``n * S`` networks side by side. Below some
batch, each compiled call is latency- or launch-bound and throughput grows with the batch; :data:`KNEE` holds, per
platform, where it stops growing (``scripts/bench_search.py --knee``, BENCHMARKS.md "Filling the device"):

* CPU: by arithmetic, ``n * S * synapses`` weight updates per step (a deep network saturates 2 cores with fewer
  candidates: 64-32-10 peaked at 256 candidates x 2 seeds, 64-170-130-100-70-5 at 32 x 4);
* GPU: by the number of networks ``n * S`` (an H200 reached 90% of its best at 1024 x 2 networks for 64-32-10 and at
  512-2048 x 4 for the deep network; a work model would differ 20-fold between the two).

``auto`` picks the power of two of candidates that reaches the knee, within [:data:`MIN_AUTO`, :data:`MAX_AUTO`],
times the number of devices.

Every batch is also capped by memory: :func:`memory_chunk` is the most candidates whose networks, temporaries and
task data fit in :data:`MEMORY_FRACTION` of the device's (or, on CPU, the machine's) memory. Evaluation is split
into calls of at most that many candidates (:class:`..evaluator.SplitEval`), so a population of any size fits; the
split never changes a result (every candidate is computed independently).
"""
from __future__ import annotations

import math

MIN_AUTO, MAX_AUTO = 16, 4096
# where one device of each platform saturates (see the module docstring): (what is counted, how much).
# TPU: not measured; taken as a GPU.
KNEE = {"cpu": ("work", 2 ** 21), "gpu": ("networks", 4096), "tpu": ("networks", 4096)}
MEMORY_FRACTION = 0.5          # an evaluation call may need at most this fraction of the device's memory
# how an evaluation of n candidates is planned into compiled calls (:meth:`..evaluator.SplitEval.plan`), per
# platform: "padding" = the least padded work, then the fewest calls (a CPU call costs what it computes: 2 cores
# ran 64-32-10 at 1,018 cand/s in calls of 128 and 1,102 in calls of 512); "calls" = the fewest calls, then the
# least padding (below the knee an accelerator's call costs nearly the same whatever its batch: on the H200 a call
# of 200 steps x 2 seeds took 8.8 ms for 64 candidates, 9.9 ms for 256 and 13.6 ms for 1024, so the ~530 of 1024
# children the FEC cache leaves run as one call of 1024, about 13.6 ms, instead of 256 + 512, about 21 ms).
# TPU: not measured; taken as a GPU.
PLAN = {"cpu": "padding", "gpu": "calls", "tpu": "calls"}


def network_synapses(n_in: int, n_out: int, hidden, bias: bool) -> int:
    sizes = [int(n_in), *[int(h) for h in hidden], int(n_out)]
    b = 1 if bias else 0
    return sum((sizes[i] + b) * sizes[i + 1] for i in range(len(sizes) - 1))


def evaluation_bytes(n_in: int, n_out: int, hidden, bias: bool, population: int, instances: int, steps: int,
                     n_eval: int) -> tuple[int, int]:
    """A rough upper estimate of the memory one evaluation call needs: (weights and their temporaries for
    ``population`` x ``instances`` networks, task data of ``instances``)."""
    params = 2 * network_synapses(n_in, n_out, hidden, bias)           # W and feedback B
    weights = 4 * 4 * int(population) * int(instances) * params        # float32, W + dW + temporaries
    data = 2 * 4 * int(instances) * (int(steps) + int(n_eval)) * (int(n_in) + int(n_out))
    return weights, data


def physical_memory_bytes() -> int:
    """This machine's physical memory (16 GiB when it cannot be read)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def device_memory_bytes() -> int:
    """Memory of one accelerator (its allocator's limit), or the machine's memory on CPU."""
    import jax

    dev = jax.devices()[0]
    if dev.platform != "cpu":
        try:
            stats = dev.memory_stats() or {}
            if stats.get("bytes_limit"):
                return int(stats["bytes_limit"])
        except Exception:  # noqa: BLE001 - a backend without memory stats
            pass
    return physical_memory_bytes()


def platform() -> str:
    import jax

    return jax.devices()[0].platform


def plan_policy(plat: str | None = None) -> str:
    """How this platform's evaluations are planned into calls: :data:`PLAN`."""
    return PLAN.get(plat or platform(), PLAN["gpu"])


def auto_batch(work_per_candidate: int, instances: int = 1, devices: int = 1, plat: str | None = None) -> int:
    """The power of two of candidates that reaches the platform's knee, per device, clamped. ``work_per_candidate``:
    weight updates per step of one candidate over its ``instances`` (task x seed) networks."""
    what, knee = KNEE.get(plat or platform(), KNEE["gpu"])
    per = max(1, int(work_per_candidate)) if what == "work" else max(1, int(instances))
    n = knee / per
    n = 2 ** max(0, math.ceil(math.log2(max(n, 1.0))))
    return int(min(MAX_AUTO, max(MIN_AUTO, n))) * max(1, int(devices))


def memory_chunk(entries: list[tuple[int, int, int, int, int]], hidden, bias: bool, limit: int | None = None) -> int:
    """The most candidates per evaluation call that fit in memory, over task entries
    ``(n_in, n_out, instances, steps, n_eval)`` (0: not even one fits)."""
    limit = int(MEMORY_FRACTION * (device_memory_bytes() if limit is None else limit))
    best = None
    for n_in, n_out, inst, steps, n_eval in entries:
        w1, data = evaluation_bytes(n_in, n_out, hidden, bias, 1, inst, steps, n_eval)
        fit = max(0, (limit - data) // max(1, w1))
        best = fit if best is None else min(best, fit)
    return int(best if best is not None else 1 << 30)


def evaluation_entries(cfg):
    """Every rate task entry of a config as ``(split, index, (n_in, n_out, instances, steps, n_eval))``: what one
    evaluation call holds besides its candidates (the memory check of the config and :func:`eval_chunk`)."""
    for split in ("search", "select", "final"):
        for i, e in enumerate(getattr(cfg.tasks, split)):
            task = cfg.make_task(e)
            steps = e.steps if e.steps is not None else task.default_steps
            yield split, i, (task.n_in, task.n_out, len(e.seed_list), steps, task.n_eval)


def eval_chunk(requested: int, configured: int | None, cfg) -> int:
    """Candidates per compiled evaluation call: the strategy's batch, at most ``budget.chunk`` and at most what
    fits in memory (rate tasks; at least 1)."""
    chunk = int(requested) if configured is None else min(int(requested), int(configured))
    if cfg.model == "rate":
        net = cfg.network_config()
        entries = [entry for _, _, entry in evaluation_entries(cfg)]
        chunk = min(chunk, max(1, memory_chunk(entries, net.hidden, net.bias)))
    return max(1, chunk)


__all__ = ["plan_policy", "PLAN", "eval_chunk", "evaluation_entries", "auto_batch", "memory_chunk", "evaluation_bytes",
           "network_synapses", "device_memory_bytes", "physical_memory_bytes", "KNEE", "MEMORY_FRACTION", "MIN_AUTO",
           "MAX_AUTO"]
