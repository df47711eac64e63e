"""The spiking tasks as the simulator sees them: the JAX key of one task instance (:func:`instance_key`).

The tasks themselves (their data protocol and the network each is scored with) live with the other tasks, in
:mod:`plasticity_search.tasks.spiking`; they are re-exported here under their old import path.
"""
from __future__ import annotations

import jax

from ..tasks.base import SPLIT_OFFSETS, check_seed, check_split
from ..tasks.spiking import (SPIKING_TASKS, PatternTask, RewardTask, SpikingClassificationTask, SpikingTask,
                             TeacherTask)

__all__ = ["SpikingTask", "SpikingClassificationTask", "PatternTask", "TeacherTask", "RewardTask",
           "instance_key", "SPIKING_TASKS"]


def instance_key(seed: int, split: str):
    """The JAX key of one task instance: a function of (seed, split) only (disjoint per split)."""
    return jax.random.key(check_seed(seed) + SPLIT_OFFSETS[check_split(split)])
