"""Scale-out: shard the population axis over all devices, and over several hosts with ``jax.distributed``.

The population is the natural axis to split: candidates are independent, so a ``jax.sharding.Mesh`` with one
axis ``"pop"`` and ``NamedSharding(mesh, P("pop"))`` on every population array lets XLA run each slice where it
lives; task data and keys are replicated. Populations that do not divide by the device count are padded with
copies of the first candidate and the padding is dropped from every result before it reaches fitness or the hall
of fame.

Several hosts: :func:`initialize` calls ``jax.distributed.initialize`` (coordinator address, number of processes,
process id from arguments or the usual ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``
environment variables; CPU collectives through gloo). Every process runs the same program; the mesh then spans all
processes' devices, and only process 0 writes run directories or talks to wandb (:func:`is_main_process`).
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_INITIALIZED = False
SHUTDOWN_TIMEOUT_S = 3600   # a finished process waits this long at exit for process 0 to write the run directory


class DistributedError(ValueError):
    """Bad multi-process settings (one line, exit code 2)."""


def settings(coordinator_address: str | None = None, num_processes: int | None = None,
             process_id: int | None = None) -> tuple[str | None, int | None, int | None]:
    """The multi-process settings from arguments, else ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
    ``JAX_PROCESS_ID``; validated. ``coordinator_address="auto"`` leaves everything to JAX's cluster detection
    (SLURM, Open MPI, Kubernetes, Cloud TPU pods)."""
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    given_id = process_id is not None       # --process-id (a launcher's JAX_PROCESS_ID=0 alone is one process)
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if coordinator_address == "auto":
        return "auto", num_processes, process_id
    if num_processes is not None and num_processes < 1:
        raise DistributedError(f"number of processes must be >= 1, got {num_processes}")
    if coordinator_address is None:
        if num_processes not in (None, 1):
            raise DistributedError(f"{num_processes} processes need a coordinator address (--coordinator HOST:PORT "
                                   "or JAX_COORDINATOR_ADDRESS)")
        # a single process is process 0; --process-id 0 with no coordinator and no count most likely lost its
        # --coordinator: that host would run the whole job alone
        if process_id not in (None, 0) or (given_id and num_processes is None):
            raise DistributedError(f"process id {process_id} needs a coordinator address and the number of "
                                   "processes (--coordinator HOST:PORT --num-processes N)")
        return None, num_processes, process_id
    host, sep, port = coordinator_address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedError(f"coordinator address must be HOST:PORT, got '{coordinator_address}'")
    if num_processes is None:
        raise DistributedError("a coordinator address needs the number of processes (--num-processes or "
                               "JAX_NUM_PROCESSES)")
    if num_processes > 1:
        if process_id is None:
            raise DistributedError("a multi-process run needs this process's id (--process-id or JAX_PROCESS_ID)")
        if not 0 <= process_id < num_processes:
            raise DistributedError(f"process id must be in 0..{num_processes - 1}, got {process_id}")
    return coordinator_address, num_processes, process_id


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = 300) -> bool:
    """Join a multi-process JAX job; a no-op (False) for a single process. Call before any other JAX use.

    Every process then runs the same program: the population mesh spans the devices of all processes, and
    :func:`is_main_process` (process 0) alone writes files. A process that finishes first waits at exit (up to
    :data:`SHUTDOWN_TIMEOUT_S`) for the others, as ``jax.distributed`` does."""
    global _INITIALIZED
    addr, n, pid = settings(coordinator_address, num_processes, process_id)
    if _INITIALIZED:
        return True
    if addr is None or (addr != "auto" and n <= 1):
        return False
    # must not touch the backend before jax.distributed.initialize; gloo only affects CPU collectives
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kw = dict(initialization_timeout=int(timeout_s), shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
    try:
        if addr == "auto":
            jax.distributed.initialize(num_processes=n, process_id=pid, **kw)
        else:
            jax.distributed.initialize(coordinator_address=addr, num_processes=n, process_id=pid, **kw)
    except (RuntimeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(f"could not join the multi-process job at {addr}: {msg}") from None
    _INITIALIZED = True
    return True


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise DistributedError(f"{name} must be an integer, got '{v}'") from None


def is_main_process() -> bool:
    return jax.process_index() == 0


@lru_cache(maxsize=8)
def population_mesh(n_devices: int | None = None) -> Mesh:
    """A 1-D mesh over ``n_devices`` devices (default: all devices of all processes), axis name ``"pop"``."""
    devices = jax.devices()
    if n_devices is not None:
        if n_devices < 1 or n_devices > len(devices):
            raise ValueError(f"devices: asked for {n_devices}, {len(devices)} available")
        devices = devices[:n_devices]
    return Mesh(np.array(devices), ("pop",))


def padded_size(n: int, mesh: Mesh) -> int:
    k = mesh.devices.size
    return ((n + k - 1) // k) * k


def pad_population(pop, n_to: int):
    """Pad every leaf's leading axis to ``n_to`` with copies of candidate 0."""
    import chex
    n = np.shape(jax.tree.leaves(pop)[0])[0]
    chex.assert_tree_shape_prefix(pop, (n,))      # every field carries the same population axis

    def pad(a):
        a = np.asarray(a)
        extra = n_to - a.shape[0]
        if extra <= 0:
            return a
        return np.concatenate([a, np.repeat(a[:1], extra, axis=0)])
    return jax.tree.map(pad, pop)


def shard_population(pop, mesh: Mesh):
    """Place a (padded) population with its leading axis split over the mesh (works across processes)."""
    sharding = NamedSharding(mesh, P("pop"))
    if jax.process_count() == 1:
        return jax.tree.map(lambda a: jax.device_put(jnp.asarray(a), sharding), pop)
    # every process holds the full (deterministic) population: build the global array from its local slices
    def build(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])
    return jax.tree.map(build, pop)


def replicate(tree, mesh: Mesh):
    sharding = NamedSharding(mesh, P())
    if jax.process_count() == 1:
        return jax.tree.map(lambda a: jax.device_put(a, sharding), tree)
    def build(a):
        a = np.asarray(a) if not jax.dtypes.issubdtype(getattr(a, "dtype", np.float32), jax.dtypes.prng_key) \
            else a
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])
    return jax.tree.map(build, tree)


def gather(tree):
    """Bring a (possibly multi-process sharded) result back to every process as numpy."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils
    return jax.tree.map(lambda a: np.asarray(multihost_utils.process_allgather(a, tiled=True)), tree)


# ---- process 0 decides, the others follow (host-side values; every process must make the same calls) -----------
def broadcast_bytes(data: bytes | None) -> bytes:
    """Process 0's ``data`` on every process (the others pass None). Single process: ``data`` itself."""
    if jax.process_count() == 1:
        return data or b""
    from jax.experimental import multihost_utils as mh
    main = is_main_process()
    buf = np.frombuffer(data or b"", np.uint8) if main else None
    n = int(np.asarray(mh.broadcast_one_to_all(np.array([0 if buf is None else buf.size], np.int32)))[0])
    if n == 0:
        return b""
    out = mh.broadcast_one_to_all(buf if main else np.zeros(n, np.uint8))
    return np.asarray(out, np.uint8).tobytes()


def broadcast_json(obj=None):
    """Process 0's JSON-able ``obj`` on every process."""
    import json
    if jax.process_count() == 1:
        return obj
    data = broadcast_bytes(json.dumps(obj).encode("utf-8") if is_main_process() else None)
    return json.loads(data.decode("utf-8"))


def agree(flag: bool) -> bool:
    """Process 0's decision on every process (e.g. 'stop now' under a wall-clock limit that differs per host)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils as mh
    return bool(np.asarray(mh.broadcast_one_to_all(np.array([int(bool(flag))], np.int32)))[0])


def check_devices(devices: int | None) -> int | None:
    """The device count to shard over: as asked, or all devices when several processes run (the mesh must then
    span every process, so a partial count is refused)."""
    n_all = jax.device_count()
    if devices is not None and (devices < 1 or devices > n_all):
        raise DistributedError(f"devices: asked for {devices}, {n_all} available")
    if jax.process_count() > 1:
        if devices is not None and devices != n_all:
            raise DistributedError(f"devices: with {jax.process_count()} processes the population is sharded over "
                                   f"all {n_all} devices; got {devices}")
        return n_all
    return devices


def abort(message: str, code: int = 1) -> None:
    """Leave a multi-process job now, after one line on stderr: a peer has failed mid-run, and the normal exit
    would wait at ``jax.distributed``'s shutdown barrier until the heartbeat timeout, then abort with a trace."""
    try:
        sys.stdout.flush()
        sys.stderr.write(message.rstrip("\n") + "\n")
        sys.stderr.flush()
    finally:
        os._exit(code)
