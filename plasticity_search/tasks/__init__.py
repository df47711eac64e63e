"""Tasks: what a plasticity rule is trained and scored on (pure numpy data, deterministic from integer seeds).

    task = make("digits")                       # or make("idx:/data/mnist"), make("digits_fewshot", k_way=3)
    data = task.sample(seed=0, split="search")  # TaskData(x_stream, y_stream, x_eval, y_eval, pc1), float32
    batch = task.sample_batch(range(8), "search")  # stacked along a leading seed axis

Splits 'search', 'select' and 'final' are disjoint (see `base.py`). Built-in rate tasks: digits, digits_fewshot,
mnist1d, mnist1d_fewshot, yinyang, teacher_student, pca; `idx:PATH` for user MNIST-format files. Built-in spiking
tasks (`spike_tasks.py`): spiking_digits, spiking_yinyang, stdp_pattern, spiking_teacher, spiking_reward; the protocols
of Jordan et al. 2021 (`jordan_tasks.py`): jordan_correlation, jordan_reward. This package
registers every built-in task (:data:`BUILTIN_TASKS`, in this order) in the registry (`registry.py`).
"""

from .base import MAX_SEED, OBJECTIVES, SPLITS, Instances, Task, TaskData, TaskError, split_rngs
from .digits import DigitsTask
from .fewshot import FewShotTask
from .idx import IdxTask
from .jordan_tasks import JORDAN_TASKS
from .mnist1d import MNIST1DTask, make_mnist1d
from .pca import PCATask
from .pooled import PooledTask, Pools
from .registry import list_tasks, make, register
from .spike_tasks import SPIKING_TASKS
from .teacher_student import TeacherStudentTask
from .yinyang import YinYangTask

BUILTIN_TASKS: tuple[Task, ...] = (
    DigitsTask(),
    FewShotTask(),
    MNIST1DTask(),
    FewShotTask(name="mnist1d_fewshot", dataset="mnist1d"),
    YinYangTask(),
    TeacherStudentTask(),
    PCATask(),
    *SPIKING_TASKS,
    *JORDAN_TASKS,
)
for _task in BUILTIN_TASKS:
    register(_task)
del _task

__all__ = [
    "BUILTIN_TASKS",
    "MAX_SEED",
    "OBJECTIVES",
    "SPLITS",
    "Instances",
    "split_rngs",
    "DigitsTask",
    "FewShotTask",
    "IdxTask",
    "MNIST1DTask",
    "PCATask",
    "PooledTask",
    "Pools",
    "Task",
    "TaskData",
    "TaskError",
    "TeacherStudentTask",
    "YinYangTask",
    "list_tasks",
    "make",
    "make_mnist1d",
    "register",
]
