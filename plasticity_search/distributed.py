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
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_INITIALIZED = False


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join a multi-process JAX job (no-op for a single process)."""
    global _INITIALIZED
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if _INITIALIZED or not coordinator_address or not num_processes or num_processes <= 1:
        return
    # must not touch the backend before jax.distributed.initialize; gloo only affects CPU collectives
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
    _INITIALIZED = True


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else None


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
