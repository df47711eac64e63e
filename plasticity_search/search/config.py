"""Search configuration: a declarative YAML file (``search_spaces/*.yaml``) validated into a frozen dataclass.

``load_config(source, overrides)`` reads a YAML path or a dict, applies dotted overrides (``{"seed": 3,
"budget.generations": 5}``) and validates *everything* before any compute: an unknown key, a value of the wrong type,
an out-of-range number, an unknown op / variable / synapse factor / task / metric / strategy / evosax algorithm /
optax optimizer is a :class:`ConfigError` whose one-line message starts with the dotted key, e.g.
``search.population: must be >= 2, got -4``. ``SearchConfig.to_dict()`` writes every default out, and
``load_config(cfg.to_dict()) == cfg``.

Numbers go through one layer (:func:`_check_numbers`, first): NaN and infinities are refused everywhere; rates,
time constants and tolerances must be positive; every size that memory or time grows with has a documented maximum
(:data:`NUMBER_LIMITS` and the ``MAX_*`` constants: e.g. ``space.n_post`` <= 64, ``space.n_terms`` <= 256,
``search.population`` <= 100000, seeds per task entry <= 10000, ``steps`` <= 10^7, hidden widths <= 100000), and
the evaluation batch of each task entry must fit in half of the machine's memory. YAML files are read with bounds
(a regular UTF-8 file of at most 4 MB; at most 100000 nodes once aliases are expanded, 64 levels of nesting).

Schema (keys and defaults; ``null`` = YAML None)::

    name: search                 # run name
    seed: 0                      # everything of a run derives from it (unless budget.time_limit_s stops it early)
    space:                       # the rule search space (plasticity_search.rules.Space)
      post_vars: [y, a, e, ybar, theta]
      pre_vars: [x, xbar, e_pre]
      global_vars: []
      ops: [add, sub, mul, cmul]
      syn: ["1", w, w2]
      n_post: 3                  # instructions of the post-side program
      n_pre: 2                   # instructions of the pre-side program
      n_terms: 4                 # separable terms
      structure: free            # free | three_factor (spiking, elig: term slots 0..K-1-J write the eligibility
                                 # trace from pre x post terms, the last J write dw = M(post, r, rbar) * elig)
      weight_terms: 1            # J: weight slots of three_factor (2: M can be a sum of two reads, e.g. r - rbar)
      m_offset: false            # three_factor, J >= 2: a weight slot but the last may read the constant 1, so M
                                 # can be affine, c1*r + c2 (a constant reward baseline, e.g. R - 1)
    search:
      strategy: regularized_evolution   # regularized_evolution | evosax | metagrad | hybrid | random_search
      population: 64             # regularized evolution: population size; evosax: ES population per generation
                                 # (auto: 2 x children for evolution, the device-filling batch for evosax)
      tournament: 8              # tournament size
      children: 16               # children per generation (evaluated as one batch); auto: the batch that fills
                                 # this device (search/autosize.py), written out as a number in the run's config
      aging: true                # true: the oldest die (regularized evolution); false: the worst die
      init_terms: 2              # active terms of random initial programs (1..init_terms)
      seed_rules: []             # known rules, formulas or rule .json files placed in the initial population
      fixed: null                # a part of every candidate held fixed, as a formula (search/fixed.py), e.g.
                                 # "delig = sy*tx - 0.01*v*v*tx": the search chooses the rest of the rule
      mutation: {alter_operand: 0.2, alter_op: 0.15, randomize_instruction: 0.1, insert: 0.15, remove: 0.1,
                 change_constant: 0.25, randomize_all: 0.05}   # relative probabilities
      fec: true                  # functional-equivalence cache: a child equal on the probe batch reuses a fitness
      hurdle: null               # {steps: 200, seeds: 1, threshold: 0.5}: a cheap first stage; candidates whose
                                 # first-stage fitness is below threshold keep it and skip the full evaluation
      restart_after: null        # re-draw the population after this many generations without improvement of its
                                 # best member (the FEC cache and the hall-of-fame archive are kept)
      generations_per_call: 1    # K > 1: K generations in one compiled call on the device (regularized evolution
                                 # with fec: false, no hurdle or restarts; search/device_generations.py): the host
                                 # offers the archive, re-scores select and checks early stopping once per call
                                 # (calls end at multiples of K), not each generation
    coefficients:                # evosax / metagrad strategies, and the constant refinement of `hybrid`
      structure: null            # family (shervani_tabar, volterra), known rule name, or formula: its constants
      init: null                 # initial parameter vector (default: the family's / rule's values)
      algorithm: CMA_ES          # any distribution-based evosax algorithm (evosax minimises; we pass -fitness)
      std_init: 0.1
      es_params: {}              # other fields of the evosax algorithm's params (e.g. {c_mean: 1.0})
      optimizer: adam            # optax optimizer for metagrad
      lr: 0.01
      clip_norm: 1.0
      loss: auto                 # meta-loss: auto (final_loss if every task has it, else fitness), fitness, a metric
      truncation: null           # truncated unrolls of this many updates (null: full unroll)
      meta_batch: null           # instances per meta-step (null: all search instances)
      max_consecutive_errors: 5  # optax.apply_if_finite: skipped non-finite steps before applying anyway
    hybrid:                      # strategy hybrid: regularized evolution + Lamarckian refinement of constants
      every: 5                   # refine every k generations
      top_k: 2                   # the k best distinct programs
      refine: evosax             # evosax | metagrad
      steps: 4                   # ES generations / meta-gradient steps per refinement
      population: 8              # ES population of a refinement
      seeds: null                # evosax refinement: judge constants on this many search seeds per task (null:
                                 # the search's own); less noise than the generations' few seeds, same split
      final_steps: null          # end the search with a longer refinement of this many steps (null: none) of
      final_top_k: 3             # the final_top_k best distinct programs kept (expanded, re-scored on select),
                                 # and of the best one grown by one monomial (the best of the missing ones)
      final_grow: 1              # rounds of that structural step (each grows the last round's result; 0: none)
      grow_top_k: 1              # variants of a structural step refined (the best screened ones)
    spiking:                     # spiking tasks (the model of a search is that of its tasks: all rate or all spiking)
      feedback: fa               # error pathway of spiking classification tasks (fa | bp)
      lr: null                   # learning rate of every candidate (null: 1.0)
      tau_plus: null             # fast pre trace tx (ms; null: 20); tau_minus: fast post trace ty (null: 20)
      tau_minus: null
      tau_x: null                # slow pre trace tx2 (null: 101); tau_y: slow post trace ty2 (null: 125)
      tau_y: null
      tau_elig: null             # eligibility trace (null: 1000)
      w_bounds: null             # [lo, hi]: weights clipped after each update (null: unbounded)
    network: {}                  # rate tasks: NetworkConfig fields, over default_network(objective of the first search task)
                                 # (hidden, activation, softplus_beta, bias, init, init_scale, output, feedback, lr,
                                 # batch_size, tau_mean, tau_theta, feedback_rule, feedback_lr, readout_rule,
                                 # readout_lr, layer_rules); written out in full. Per-layer rules: readout_rule: fa
                                 # trains the readout with a fixed rule and the searched rule the hidden layers;
                                 # layer_rules: [null, fa] one entry per layer (null: the searched rule)
    tasks:                       # each split: a list of entries {task, seeds: 2, steps: null, args: {}}, or task names;
                                 # seeds: a count n (seeds 0..n-1) or a list; the splits' data are disjoint
      search: []                 # required (at least one): drive selection
      select: []                 # re-score the top candidates every generation; pick the hall-of-fame best
      final: []                  # only for the report of the finished run
    fitness:
      metric: null               # default by objective: final_accuracy, final_mse, pc1_alignment; spiking: snr
                                 # (stdp_pattern), neg_rmse (spiking_teacher), total_reward, final_accuracy
      penalties: []              # [{metric, target, weight}]: fitness -= weight * |metric - target|
      complexity_penalty: 0.0    # selection uses fitness - lambda * complexity
    budget:
      generations: 50
      time_limit_s: null         # stop early after this wall time (makes a run non-reproducible)
      devices: null              # shard the population axis over this many devices (jax.sharding.Mesh; null: none)
      patience: null             # stop when the best select fitness (search fitness without select tasks) has not
                                 # improved by more than min_delta for this many generations
      min_delta: 0.0
      target_fitness: null       # stop once the best select fitness reaches this
      checkpoint_every_s: null   # write a checkpoint at most this often (0: after every generation; null: after
                                 # generation 1, then whenever it costs at most 5% of the time since the last);
                                 # a resume replays the generations since the newest checkpoint: same results
      chunk: null                # most candidates per compiled evaluation call (null: search.children, lowered to
                                 # what fits in memory); any value gives the same results
    hall_of_fame:
      per_complexity: 2          # candidates kept per complexity level (by search fitness)
      select_top_k: 4            # top candidates re-scored on the select tasks each generation
      choose: eps                # eps: lowest complexity within eps of the best select fitness; fitness: best
      eps: 0.01
      snap: true                 # try rounded constants (nice ratios) for the final Pareto set
      snap_tol: 0.002            # keep a rounded version if its search fitness drops by at most this
      select_seeds: 16           # the final choice re-scores the Pareto set on this many seeds per select task
                                 # (null: the tasks' own); the run states the standard error of the chosen rule
    generalization:              # the chosen rule, FA and BP on held-out conditions (search.generalize)
      at_end: true               # at the end of every run (generalization.json, report.html)
      seeds: 16                  # seeds per condition (final split)
      conditions: null           # [{task, args, network: {overrides}, seeds, steps, name}]; null: automatic
    baselines: null              # rules scored beside the hall of fame on the same final tasks, seeds and initial
                                 # weights (names, formulas; 'bp' = fa under backpropagated errors); null: fa and bp
                                 # for supervised rate tasks, oja for pca; spiking tasks by objective:
                                 # stdp_add + stdp_mult (detection), r_stdp (reward), eprop + bp_stdp
                                 # (classification), bp_stdp (regression)
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Optional, Union

from ..rules.program import Space as _Space
from .strategies import STRATEGY_NAMES as STRATEGIES  # the registry is the one list of strategies
CHOOSE_RULES = ("eps", "fitness")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "lion", "adabelief", "adagrad")
DEFAULT_METRIC = {"classification": "final_accuracy", "regression": "final_mse", "pca": "pc1_alignment"}
SPIKING_DEFAULT_METRIC = {"classification": "final_accuracy", "regression": "neg_rmse", "detection": "snr",
                          "reward": "total_reward"}


def default_metric(task) -> str:
    """The metric a task is scored by when none is named (``evaluate``, a config's ``fitness.metric: null``)."""
    table = SPIKING_DEFAULT_METRIC if task.kind == "spiking" else DEFAULT_METRIC
    return table.get(task.objective, "final_accuracy")


def task_metrics(task) -> tuple[str, ...]:
    """The metrics an evaluation of ``task`` reports (rate: by objective; spiking: the task's own + finite)."""
    if task.kind == "spiking":
        return tuple(task.metrics) + ("finite",)
    from ..rate.online import METRICS
    return METRICS[task.objective]


def network_types() -> dict:
    """Field name -> type hint of :class:`NetworkConfig` (the keys a config's ``network`` section may set)."""
    from ..rate.mlp import NetworkConfig
    return typing.get_type_hints(NetworkConfig)


class ConfigError(ValueError):
    """An invalid search configuration; the message is one line and starts with the dotted key."""


def _err(path: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {msg}" if path else msg)


# --------------------------------------------------------------------------------------------------------------
# schema sections (frozen dataclasses; defaults are the documented defaults)
# --------------------------------------------------------------------------------------------------------------
# The space section is rules.program.Space itself (one definition of its fields and types: the rule language's),
# less its name (the run's name), with a search's smaller default shape: 3 post and 2 pre instructions, 4 terms,
# the polynomial ops plus cmul.
SEARCH_SPACE_DEFAULTS = {"ops": ("add", "sub", "mul", "cmul"), "n_post": 3, "n_pre": 2, "n_terms": 4}
SpaceConfig = dataclasses.make_dataclass(
    "SpaceConfig",
    [(f.name, typing.get_type_hints(_Space)[f.name], field(default=SEARCH_SPACE_DEFAULTS.get(f.name, f.default)))
     for f in dataclasses.fields(_Space) if f.name != "name"],
    frozen=True, namespace={"__doc__": "The ``space`` section: the fields of rules.program.Space but its name."})
SpaceConfig.__module__ = __name__


@dataclass(frozen=True)
class SpikingSection:
    feedback: str = "fa"
    lr: Optional[float] = None
    tau_plus: Optional[float] = None
    tau_minus: Optional[float] = None
    tau_x: Optional[float] = None
    tau_y: Optional[float] = None
    tau_elig: Optional[float] = None
    w_bounds: Optional[tuple[float, ...]] = None


@dataclass(frozen=True)
class HurdleConfig:
    steps: int = 200
    seeds: int = 1
    threshold: float = 0.0


@dataclass(frozen=True)
class SearchSection:
    strategy: str = "regularized_evolution"
    population: int = 64
    tournament: int = 8
    children: int = 16
    aging: bool = True
    init_terms: int = 2
    seed_rules: tuple[str, ...] = ()
    fixed: Optional[str] = None
    mutation: dict = field(default_factory=lambda: _default_mutation())
    fec: bool = True
    hurdle: Optional[HurdleConfig] = None
    restart_after: Optional[int] = None
    generations_per_call: int = 1


@dataclass(frozen=True)
class CoefficientsConfig:
    structure: Optional[str] = None
    init: Optional[tuple[float, ...]] = None
    algorithm: str = "CMA_ES"
    std_init: float = 0.1
    es_params: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 0.01
    clip_norm: float = 1.0
    loss: str = "auto"
    truncation: Optional[int] = None
    meta_batch: Optional[int] = None
    max_consecutive_errors: int = 5


@dataclass(frozen=True)
class HybridConfig:
    every: int = 5
    top_k: int = 2
    refine: str = "evosax"
    steps: int = 4
    population: int = 8
    seeds: Optional[int] = None
    final_steps: Optional[int] = None
    final_top_k: int = 3
    final_grow: int = 1
    grow_top_k: int = 1


@dataclass(frozen=True)
class TaskEntry:
    task: str = ""
    seeds: Union[int, tuple[int, ...]] = 2
    steps: Optional[int] = None
    args: dict = field(default_factory=dict)

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(self.seeds)


@dataclass(frozen=True)
class TasksConfig:
    search: tuple[TaskEntry, ...] = ()
    select: tuple[TaskEntry, ...] = ()
    final: tuple[TaskEntry, ...] = ()


@dataclass(frozen=True)
class Penalty:
    metric: str = ""
    target: float = 0.0
    weight: float = 1.0


@dataclass(frozen=True)
class FitnessConfig:
    metric: Optional[str] = None
    penalties: tuple[Penalty, ...] = ()
    complexity_penalty: float = 0.0


@dataclass(frozen=True)
class BudgetConfig:
    generations: int = 50
    time_limit_s: Optional[float] = None
    devices: Optional[int] = None     # shard the population over this many devices (null: no sharding)
    patience: Optional[int] = None    # stop after this many generations without a better select fitness
    min_delta: float = 0.0            # a gain of at most this does not count as better (for patience)
    checkpoint_every_s: Optional[float] = None   # runs layer: checkpoint at most this often (null: <= 5% of the time)
    target_fitness: Optional[float] = None   # stop once the best select fitness reaches this
    chunk: Optional[int] = None       # most candidates per compiled evaluation call (null: the strategy's batch,
                                      # lowered to what fits in memory); results do not depend on it


@dataclass(frozen=True)
class HallOfFameConfig:
    per_complexity: int = 2
    select_top_k: int = 4
    choose: str = "eps"
    eps: float = 0.01
    snap: bool = True
    snap_tol: float = 0.002
    select_seeds: Optional[int] = 16  # seeds per select task for the final choice (null: the tasks' own)


@dataclass(frozen=True)
class ConditionEntry:
    task: str = ""
    args: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)   # overrides of the run's network (hidden, activation, ...)
    seeds: Optional[int] = None                   # null: generalization.seeds
    steps: Optional[int] = None
    name: Optional[str] = None


@dataclass(frozen=True)
class GeneralizationConfig:
    at_end: bool = True                           # score the chosen rule, FA and BP at the end of every run
    seeds: int = 16
    conditions: Optional[tuple[ConditionEntry, ...]] = None   # null: automatic (search.generalize.auto_conditions)


@dataclass(frozen=True)
class SearchConfig:
    """A fully resolved, validated search configuration (see the module docstring for the schema)."""

    name: str = "search"
    seed: int = 0
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchSection = field(default_factory=SearchSection)
    coefficients: CoefficientsConfig = field(default_factory=CoefficientsConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    spiking: SpikingSection = field(default_factory=SpikingSection)
    network: dict = field(default_factory=dict)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    hall_of_fame: HallOfFameConfig = field(default_factory=HallOfFameConfig)
    baselines: Optional[tuple[str, ...]] = None   # rules scored beside the hall of fame (null: by model/objective)
    generalization: GeneralizationConfig = field(default_factory=GeneralizationConfig)

    @property
    def generations(self) -> int:
        return self.budget.generations

    @property
    def time_limit_s(self) -> float | None:
        return self.budget.time_limit_s

    @property
    def strategy(self) -> str:
        return self.search.strategy

    def to_dict(self) -> dict:
        """Every key with its resolved value (lists, not tuples): ``load_config(cfg.to_dict()) == cfg``."""
        return _to_plain(self)

    # --- derived objects (built on demand; the config itself stays plain data) ---------------------------------
    def rule_space(self):
        from ..rules.program import Space
        d = dataclasses.asdict(self.space)
        return Space.from_dict({**d, "name": self.name})

    def network_config(self):
        from ..rate.mlp import NetworkConfig
        return NetworkConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in self.network.items()})

    def make_task(self, entry: TaskEntry):
        from ..tasks import make
        return make(entry.task, **dict(entry.args))

    @property
    def model(self) -> str:
        """'rate' or 'spiking': the kind of the first search task (validation makes every task agree)."""
        return _model_of(self)

    def spiking_eval_config(self) -> dict:
        """The spiking evaluator's settings (``plasticity_search.spiking.EvalConfig.from_any``)."""
        sp = self.spiking
        d = {k: getattr(sp, k) for k in ("lr", "tau_plus", "tau_minus", "tau_x", "tau_y", "tau_elig")
             if getattr(sp, k) is not None}
        if sp.w_bounds is not None:
            d["w_bounds"] = [float(x) for x in sp.w_bounds]
        return {"feedback": sp.feedback, "rule_defaults": d}


def _model_of(cfg) -> str:
    """'spiking' or 'rate': the kind of the first search task (with bad args: of the task with its defaults, so
    that the task checks, not the space's, report the bad arg)."""
    from ..tasks import make
    entry = cfg.tasks.search[0] if cfg.tasks.search else None
    for build in (lambda: cfg.make_task(entry), lambda: make(entry.task)):
        try:
            return "spiking" if build().kind == "spiking" else "rate"
        except Exception:  # noqa: BLE001 - a bad task is reported by the task checks
            continue
    return "rate"


def _default_mutation() -> dict:
    from ..rules.mutation import DEFAULT_MUTATION_PROBS, MUTATIONS
    return dict(zip(MUTATIONS, DEFAULT_MUTATION_PROBS))


def _to_plain(x):
    if dataclasses.is_dataclass(x):
        return {f.name: _to_plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (tuple, list)):
        return [_to_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    return x


# --------------------------------------------------------------------------------------------------------------
# generic typed building: unknown keys and wrong types, named by dotted key
# --------------------------------------------------------------------------------------------------------------
def _type_name(v) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping",
            tuple: "list"}.get(type(v), type(v).__name__)


def _coerce(value, tp, path: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except ConfigError as e:
                errors.append(e)
        names = " or ".join(_hint_name(a) for a in args if a is not type(None))
        if type(None) in args:
            names += " or null"
        raise _err(path, f"expected {names}, got {_type_name(value)} {value!r}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise _err(path, f"expected a list, got {_type_name(value)} {value!r}")
        return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if tp is dict:
        if not isinstance(value, dict):
            raise _err(path, f"expected a mapping, got {_type_name(value)} {value!r}")
        for k in value:
            if not isinstance(k, str):
                raise _err(path, f"keys must be strings, got {k!r}")
        return copy.deepcopy(dict(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise _err(path, f"expected bool, got {_type_name(value)} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(path, f"expected int, got {_type_name(value)} {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _err(path, f"expected float, got {_type_name(value)} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _err(path, f"expected str, got {_type_name(value)} {value!r}")
        return value
    raise TypeError(f"unsupported schema type {tp}")  # pragma: no cover - schema bug


def _hint_name(tp) -> str:
    if dataclasses.is_dataclass(tp):
        return "mapping"
    if typing.get_origin(tp) is tuple:
        return f"list of {_hint_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _build(cls, raw, path: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _err(path, f"expected a mapping, got {_type_name(raw)} {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in raw:
        if k not in names:
            where = f"{path}.{k}" if path else str(k)
            raise _err(where, f"unknown key (known: {', '.join(names)})")
    kw = {k: _coerce(v, hints[k], f"{path}.{k}" if path else k) for k, v in raw.items()}
    return cls(**kw)


# --------------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------------
MAX_CONFIG_BYTES = 4_000_000   # a config file (a resolved config is a few kB)
MAX_YAML_NODES = 100_000       # YAML nodes after aliases are expanded (nested aliases: "billion laughs")
MAX_YAML_DEPTH = 64            # nesting of YAML collections


def read_text_file(path: str, what: str = "config", max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of a regular file (a FIFO, device or directory is refused without being opened, so a
    FIFO with no writer cannot hang us); one-line ConfigError naming the file otherwise."""
    import os
    import stat

    st = os.stat(path)                 # FileNotFoundError / OSError: the callers word them
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ConfigError(f"{what}: '{path}' is {kind}")
    if st.st_size > max_bytes:
        raise ConfigError(f"{what}: '{path}' is larger than {max_bytes} bytes")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what}: '{path}' is not a UTF-8 text file (byte 0x{data[exc.start]:02x} at "
                          f"position {exc.start})") from None


# a float in exponent notation without a dot in the mantissa (``1e-3``): a number in YAML 1.2, a string in PyYAML's
# YAML 1.1. Config files read it as the number, and config dumps quote a string of that form (both in
# :func:`yaml_classes`), so that a run's config.yaml reads back as written.
_EXP_FLOAT = (r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$", list("-+.0123456789"))


@functools.cache
def yaml_classes():
    """(Loader, Dumper): PyYAML's safe ones with ``1e-3`` a float (:data:`_EXP_FLOAT`)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    for cls in (Loader, Dumper):
        cls.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_EXP_FLOAT[0]), _EXP_FLOAT[1])
    return Loader, Dumper


def load_yaml(text: str, what: str = "config"):
    """``yaml.safe_load`` with bounds: at most MAX_YAML_NODES nodes once aliases are expanded (a "billion laughs"
    document of nested aliases is refused before it is built) and MAX_YAML_DEPTH levels of nesting. ConfigError
    (one line, starting with ``what``) for a document over the bounds; yaml.YAMLError for a syntax error."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what}: larger than {MAX_CONFIG_BYTES} characters")
    loader = yaml_classes()[0](text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"{what}: nested more than {MAX_YAML_DEPTH} levels deep") from None
        if node is None:
            return None
        _check_yaml_size(node, what)
        _check_nodes(node, what)
        try:
            doc = loader.construct_document(node)
        except ValueError as exc:       # Python's limit on integer digits: name the problem, not the setting
            if "integer string conversion" not in str(exc):
                raise
            raise ConfigError(f"{what}: an integer with more than {sys.get_int_max_str_digits()} digits") from None
        _check_control_characters(doc, what)
        return doc
    finally:
        loader.dispose()


def _check_control_characters(doc, what: str) -> None:
    """ConfigError for a key or string value with a control character other than tab and newline: a run writes
    names, baselines and formulas of its config into its directory, whose readers refuse them (an escape sequence
    would reach the terminal through ``inspect``)."""
    from ..errors import has_control_characters

    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack += list(x.keys()) + list(x.values())
        elif isinstance(x, list):
            stack += x
        elif isinstance(x, str) and has_control_characters(x):
            raise ConfigError(f"{what}: the text {x[:40]!r} holds a control character")


# plain scalars that PyYAML (YAML 1.1) reads as another value than YAML 1.2 does (the version other tools, editors
# and ruamel.yaml read): a config means one thing wherever it is read, so these are refused with what to write.
# Same in both and accepted: true/false, 0x10, 00, 07, 07.5, .inf, .nan, ~/null, 1e-3 (see _EXP_FLOAT); also
# accepted, as the number it plainly means, 1_000 (a string in YAML 1.2). Strings in YAML 1.1 that 1.2 reads as
# numbers (08, 0o17) or dates (2026-11-30) are not checked here: the config's type checks refuse them in one line.
_YAML11_ONLY = (
    (r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$", "a boolean in YAML 1.1 and a string in YAML 1.2: write "
     "true or false, or quote it for the text"),
    (r"^[-+]?0[0-7_]*[1-7][0-7_]*[0-7]$", "octal in YAML 1.1 and decimal in YAML 1.2: write the number without its "
     "leading zero"),
    (r"^[-+]?0b[01_]+$", "a binary number in YAML 1.1 and a string in YAML 1.2: write it in decimal"),
    (r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$", "a base-60 number in YAML 1.1 and a string in YAML 1.2: "
     "write the number in decimal, or quote it for the text"),
)


def _check_nodes(root, what: str) -> None:
    """ConfigError for a key written twice in one mapping (YAML forbids it; PyYAML would keep the last one
    silently, so a second ``seed:`` or ``budget:`` block would replace the first without a word), and for a plain
    scalar that YAML 1.1 and 1.2 read differently (:data:`_YAML11_ONLY`: ``seed: 010`` was seed 8, ``lr: 1:30``
    was 90)."""
    import re

    import yaml

    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys: dict = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    ident = (k.tag, k.value)
                    if ident in keys:
                        raise ConfigError(f"{what}: key '{str(k.value)[:60]}' appears twice in one mapping "
                                          f"(lines {keys[ident] + 1} and {k.start_mark.line + 1})")
                    keys[ident] = k.start_mark.line
                stack += [k, v]
        elif isinstance(n, yaml.SequenceNode):
            stack += list(n.value)
        elif isinstance(n, yaml.ScalarNode) and n.style is None and n.tag in _RESOLVED_TAGS:
            for pattern, why in _YAML11_ONLY:
                if re.match(pattern, n.value):
                    raise ConfigError(f"{what}: line {n.start_mark.line + 1}: '{n.value[:40]}' is {why}")


_RESOLVED_TAGS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _check_yaml_size(root, what: str) -> None:
    """Expanded node count and depth of a composed YAML document, computed once per distinct node (iteratively:
    an alias is counted every time it is used, without building anything)."""
    import yaml

    def children(n):
        if isinstance(n, yaml.SequenceNode):
            return list(n.value)
        if isinstance(n, yaml.MappingNode):
            return [x for kv in n.value for x in kv]
        return []

    size: dict[int, int] = {}
    height: dict[int, int] = {}
    visiting: set[int] = set()
    stack = [(root, False)]
    while stack:
        n, done = stack.pop()
        i = id(n)
        if done:
            kids = children(n)
            visiting.discard(i)
            size[i] = min(1 + sum(size[id(k)] for k in kids), MAX_YAML_NODES + 1)
            height[i] = 1 + max((height[id(k)] for k in kids), default=0)
            if size[i] > MAX_YAML_NODES:
                raise ConfigError(f"{what}: expands to more than {MAX_YAML_NODES} YAML nodes (nested aliases?)")
            if height[i] > MAX_YAML_DEPTH:
                raise ConfigError(f"{what}: nested more than {MAX_YAML_DEPTH} levels deep")
            continue
        if i in size:
            continue
        if i in visiting:          # reached again below itself: a recursive alias
            raise ConfigError(f"{what}: a YAML alias refers to itself")
        visiting.add(i)
        stack.append((n, True))
        stack.extend((k, False) for k in children(n) if id(k) not in size)


def load_config(source: str | dict, overrides: dict | None = None) -> SearchConfig:
    """Read, override and validate a search configuration (no compute, no task data is generated)."""
    raw = _read(source)
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    raw = _normalise_tasks(raw)
    raw = _resolve_auto(raw)
    cfg = _build(SearchConfig, raw, "")
    return _validate(cfg)


AUTO_KEYS = ("children", "population")


def _resolve_auto(raw: dict) -> dict:
    """``search.children: auto`` / ``search.population: auto`` -> numbers for this device (:mod:`.autosize`): the
    config is built and validated with placeholders, the batch is sized from its network and tasks."""
    s = raw.get("search")
    if not isinstance(s, dict):
        return raw
    for k in AUTO_KEYS:
        if isinstance(s.get(k), str) and s[k] != "auto":
            raise _err(f"search.{k}", f"expected int or auto, got str {s[k]!r}")
    keys = [k for k in AUTO_KEYS if s.get(k) == "auto"]
    if not keys:
        return raw
    from . import autosize

    probe = copy.deepcopy(raw)
    for k in keys:      # placeholders that pass every check against the other search numbers
        probe["search"][k] = {"children": 1, "population": MAX_POPULATION}[k]
    cfg = _validate(_build(SearchConfig, probe, ""))
    work, instances = _work_per_candidate(cfg)
    batch = autosize.auto_batch(work, instances, cfg.budget.devices or 1)
    out = copy.deepcopy(raw)
    evolution = cfg.search.strategy in ("regularized_evolution", "hybrid")
    if "children" in keys:
        out["search"]["children"] = batch if "population" in keys or not evolution else min(
            batch, cfg.search.population)
    if "population" in keys:
        out["search"]["population"] = max(64, 2 * out["search"]["children"]) if evolution else batch
    return out


def _work_per_candidate(cfg: "SearchConfig") -> tuple[int, int]:
    """(weight updates per step, networks) of one candidate on the search tasks (all their instances)."""
    from .autosize import network_synapses

    net = cfg.network_config()
    work = instances = 0
    for e in cfg.tasks.search:
        task = cfg.make_task(e)
        if cfg.model == "rate":
            syn = network_synapses(task.n_in, task.n_out, net.hidden, net.bias)
        else:
            syn = int(getattr(task, "n_in", 1)) * int(getattr(task, "n_out", 1))
        work += len(e.seed_list) * syn
        instances += len(e.seed_list)
    return max(1, work), max(1, instances)


def _read(source) -> dict:
    if isinstance(source, dict):
        return copy.deepcopy(source)
    if isinstance(source, SearchConfig):
        return source.to_dict()
    if not isinstance(source, str):
        raise ConfigError(f"config: expected a YAML path or a mapping, got {type(source).__name__}")
    import yaml
    try:
        raw = load_yaml(read_text_file(source, "config"), f"config: {source}")
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {source}") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {source}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config: {source} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', None) or exc}".splitlines()[0]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: {source} must contain a mapping at the top level")
    return raw


def _set_dotted(raw: dict, key: str, value) -> None:
    if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"{key}: malformed override key")
    parts = key.split(".")
    node = raw
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(parts[:i + 1])}: cannot override inside a {_type_name(nxt)}")
        node = nxt
    node[parts[-1]] = value


def _normalise_tasks(raw: dict) -> dict:
    """Task shorthands: a split may be one task name / entry, and an entry may be a bare task name."""
    tasks = raw.get("tasks")
    if not isinstance(tasks, dict):
        return raw
    out = dict(tasks)
    for split, v in tasks.items():
        if v is None:
            out[split] = []
            continue
        if isinstance(v, (str, dict)):
            v = [v]
        if isinstance(v, list):
            out[split] = [{"task": e} if isinstance(e, str) else e for e in v]
    raw = dict(raw)
    raw["tasks"] = out
    return raw


# --------------------------------------------------------------------------------------------------------------
# semantic validation
# --------------------------------------------------------------------------------------------------------------
def _at_least(path, v, lo):
    if v < lo:
        raise _err(path, f"must be >= {lo}, got {v}")


# --------------------------------------------------------------------------------------------------------------
# numbers: one layer for every number of a config, checked before anything is built, compiled or written
# --------------------------------------------------------------------------------------------------------------
# Documented maxima (memory or time grows with these); an evaluation batch is also checked against the machine's
# memory (MEMORY_FRACTION of it) once the tasks and the network are known.
from ..limits import (MAX_BATCH, MAX_DEVICES, MAX_GENERATIONS, MAX_INSTRUCTIONS, MAX_LAYERS,  # noqa: E402,F401
                      MAX_POPULATION, MAX_REFINE_STEPS, MAX_SEEDS, MAX_STEPS, MAX_TASK_INT, MAX_TERMS, MAX_WIDTH)

# dotted key -> (lowest, highest, lowest excluded); None: no bound on that side. Non-finite floats are refused
# everywhere (see _check_numbers); wrong types are reported by the typed building.
NUMBER_LIMITS = {
    "space.n_post": (0, MAX_INSTRUCTIONS, False), "space.n_pre": (0, MAX_INSTRUCTIONS, False),
    "space.n_terms": (1, MAX_TERMS, False),
    "search.population": (2, MAX_POPULATION, False), "search.tournament": (1, MAX_POPULATION, False),
    "search.children": (1, MAX_POPULATION, False), "search.init_terms": (1, MAX_TERMS, False),
    "search.restart_after": (1, MAX_GENERATIONS, False), "search.generations_per_call": (1, MAX_GENERATIONS, False),
    "search.hurdle.steps": (1, MAX_STEPS, False), "search.hurdle.seeds": (1, MAX_SEEDS, False),
    "coefficients.std_init": (0, None, True), "coefficients.lr": (0, None, True),
    "coefficients.clip_norm": (0, None, True), "coefficients.truncation": (1, MAX_STEPS, False),
    "coefficients.meta_batch": (1, MAX_SEEDS, False), "coefficients.max_consecutive_errors": (0, 1_000_000, False),
    "hybrid.every": (1, MAX_GENERATIONS, False), "hybrid.top_k": (1, MAX_POPULATION, False),
    "hybrid.steps": (1, MAX_REFINE_STEPS, False), "hybrid.population": (2, MAX_POPULATION, False),
    "hybrid.seeds": (1, MAX_SEEDS, False), "hybrid.final_steps": (1, MAX_REFINE_STEPS, False),
    "hybrid.final_top_k": (1, MAX_POPULATION, False), "hybrid.final_grow": (0, MAX_TERMS, False),
    "hybrid.grow_top_k": (1, MAX_POPULATION, False),
    "fitness.complexity_penalty": (0, None, False),
    "budget.generations": (0, MAX_GENERATIONS, False), "budget.time_limit_s": (0, None, True),
    "budget.devices": (1, MAX_DEVICES, False), "budget.chunk": (1, MAX_POPULATION, False),
    "hall_of_fame.per_complexity": (1, 10_000, False), "hall_of_fame.select_top_k": (0, MAX_POPULATION, False),
    "hall_of_fame.eps": (0, None, False), "hall_of_fame.snap_tol": (0, None, False),
    "network.lr": (0, None, True), "network.feedback_lr": (0, None, True), "network.readout_lr": (0, None, True),
    "network.tau_mean": (1, None, False), "network.tau_theta": (1, None, False),
    "network.softplus_beta": (0, None, True), "network.init_scale": (0, None, False),
    "network.batch_size": (1, MAX_BATCH, False),
}


#: rates and scales the networks use in float32: a value outside float32's normal range would become inf or 0 there
FLOAT32_KEYS = ("network.lr", "network.feedback_lr", "network.readout_lr", "network.softplus_beta",
                "network.init_scale", "coefficients.lr", "coefficients.std_init")
from ..limits import FLOAT32_RANGE, in_float32_range  # noqa: E402,F401  (re-exported)


def check_float32(path: str, v) -> None:
    """ConfigError naming ``path`` unless ``v`` is :func:`in_float32_range`."""
    if _is_number(v) and not in_float32_range(v):
        raise _err(path, f"must be within float32's range ({FLOAT32_RANGE}), got {v}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_number(path: str, v, lo=None, hi=None, lo_open: bool = False) -> None:
    """ConfigError naming ``path`` unless ``v`` is a finite number within [lo, hi] (``(lo, hi]`` if lo_open)."""
    import math

    if not _is_number(v):
        raise _err(path, f"expected a number, got {_type_name(v)} {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise _err(path, f"must be a finite number, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise _err(path, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise _err(path, f"must be <= {hi} (the documented maximum), got {v}")


def _get_dotted(obj, dotted: str):
    for part in dotted.split("."):
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def _check_numbers(cfg: SearchConfig) -> None:
    """Every number of the config: finite everywhere, within NUMBER_LIMITS, task entries' seeds/steps/args
    bounded. Runs before anything else is built from the config."""
    import math

    def walk(x, path):
        if isinstance(x, float) and not math.isfinite(x):
            raise _err(path, f"must be a finite number, got {x}")
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")

    walk(_to_plain(cfg), "")
    for key, (lo, hi, lo_open) in NUMBER_LIMITS.items():
        v = _get_dotted(cfg, key)
        if _is_number(v):
            check_number(key, v, lo, hi, lo_open)
            if key in FLOAT32_KEYS:
                check_float32(key, v)
    hidden = cfg.network.get("hidden")
    if isinstance(hidden, (list, tuple)):
        if len(hidden) > MAX_LAYERS:
            raise _err("network.hidden", f"at most {MAX_LAYERS} hidden layers, got {len(hidden)}")
        for i, h in enumerate(hidden):
            if _is_number(h):
                check_number(f"network.hidden[{i}]", h, 1, MAX_WIDTH)
    elif _is_number(hidden):
        check_number("network.hidden", hidden, 1, MAX_WIDTH)
    for split in ("search", "select", "final"):
        for i, e in enumerate(getattr(cfg.tasks, split)):
            p = f"tasks.{split}[{i}]"
            if isinstance(e.seeds, int):
                check_number(f"{p}.seeds", e.seeds, 1, MAX_SEEDS)
            elif len(e.seeds) > MAX_SEEDS:
                raise _err(f"{p}.seeds", f"at most {MAX_SEEDS} seeds, got {len(e.seeds)}")
            if e.steps is not None:
                check_number(f"{p}.steps", e.steps, 1, MAX_STEPS)
            _check_task_args(e, p)
    if cfg.coefficients.init is not None and len(cfg.coefficients.init) > 100_000:
        raise _err("coefficients.init", "more than 100000 values")


def _check_task_args(entry: TaskEntry, path: str) -> None:
    """Task arguments override fields of the task (a dataclass): each must have the field's type; integer fields
    are sizes or counts (>= 1, at most MAX_TASK_INT); numbers must be finite."""
    from ..tasks import make
    from ..tasks.base import TaskError

    if not entry.args:
        return
    try:
        base = make(entry.task)
    except (TaskError, TypeError, ValueError):
        return                  # reported by the task checks
    fields = {f.name for f in dataclasses.fields(base) if f.init} if dataclasses.is_dataclass(base) else set()
    for k, v in entry.args.items():
        if k not in fields:
            continue            # make() names the settable fields
        cur, key = getattr(base, k), f"{path}.args.{k}"
        if isinstance(cur, bool):
            if not isinstance(v, bool):
                raise _err(key, f"expected bool, got {_type_name(v)} {v!r}")
        elif isinstance(cur, int):
            if isinstance(v, bool) or not isinstance(v, int):
                raise _err(key, f"expected int, got {_type_name(v)} {v!r}")
            check_number(key, v, 1, MAX_TASK_INT)
        elif isinstance(cur, float):
            check_number(key, v)
        elif isinstance(cur, str) and not isinstance(v, str):
            raise _err(key, f"expected str, got {_type_name(v)} {v!r}")


from .autosize import evaluation_bytes  # noqa: E402  (re-exported: one estimate for config and evaluate)


def check_memory(weights: int, data: int, weights_key: str, data_key: str) -> None:
    from .autosize import MEMORY_FRACTION, physical_memory_bytes

    limit = MEMORY_FRACTION * physical_memory_bytes()
    if weights + data > limit:
        key = weights_key if weights >= data else data_key
        raise _err(key, f"an evaluation would need about {(weights + data) / 2**30:.3g} GiB, more than "
                        f"{MEMORY_FRACTION:.0%} of this machine's {physical_memory_bytes() / 2**30:.3g} GiB")


def _check_evaluation_memory(cfg: SearchConfig, model: str) -> None:
    """Each task entry's evaluation of one candidate against the machine's memory (bigger populations are
    evaluated in calls of as many candidates as fit: :mod:`.autosize`)."""
    if model != "rate":
        return
    from .autosize import evaluation_entries

    net = cfg.network_config()
    for split, i, (n_in, n_out, instances, steps, n_eval) in evaluation_entries(cfg):
        # the stream is cut to whole mini-batches: fewer steps than one batch trained nothing, silently
        if steps < net.batch_size:
            raise _err(f"tasks.{split}[{i}].steps", f"{steps} steps make no mini-batch of network.batch_size "
                                                    f"{net.batch_size}: nothing would be trained")
        w, d = evaluation_bytes(n_in, n_out, net.hidden, net.bias, 1, instances, steps, n_eval)
        check_memory(w, d, "network.hidden", f"tasks.{split}[{i}].steps")


def _validate(cfg: SearchConfig) -> SearchConfig:
    """The whole config checked section by section (each error one line naming its key); the resolved config."""
    _check_numbers(cfg)
    if not cfg.name.strip():
        raise _err("name", "must not be empty")
    from ..tasks.base import MAX_SEED
    if not 0 <= cfg.seed < MAX_SEED:
        raise _err("seed", f"must be in [0, {MAX_SEED}), got {cfg.seed}")
    model = _model_of(cfg)
    space = _check_space(cfg, model)
    cfg = _check_search(cfg, space, model)
    net = _check_network_keys(cfg)
    objectives, metrics_of = _check_tasks(cfg, model)
    cfg = _resolve_network(cfg, net, model, objectives[("search", 0)])
    cfg = _check_fitness(cfg, model, objectives[("search", 0)], metrics_of)
    cfg = _check_coefficients(cfg, model, objectives, metrics_of)
    _check_hybrid(cfg)
    _check_budget(cfg)
    _check_evaluation_memory(cfg, model)
    if cfg.search.generations_per_call > 1:         # the evaluation's calls as the search will plan them
        from .autosize import eval_chunk
        why = generations_per_call_refusal(cfg, eval_chunk(cfg.search.children, cfg.budget.chunk, cfg),
                                           cfg.budget.devices)
        if why is not None:
            raise _err("search.generations_per_call", why)
    _check_discovery(cfg, model)
    _check_seed_settings(cfg)
    return cfg


def _check_space(cfg: SearchConfig, model: str):
    """The space section against the model's variables, the op table and the synapse factors; the rule Space."""
    from ..rate.online import RATE_VARIABLES
    from ..rules.ops import OP_BY_NAME, SYN_BY_NAME
    from ..rules.variables import VARIABLES

    sp = cfg.space
    if model == "spiking":
        from ..rules.known import SPIKING_SPACE
        allowed = {"post": SPIKING_SPACE.post_vars, "pre": SPIKING_SPACE.pre_vars,
                   "global": SPIKING_SPACE.global_vars}
    else:
        allowed = RATE_VARIABLES
    for side, key in (("post", "post_vars"), ("pre", "pre_vars"), ("global", "global_vars")):
        names = getattr(sp, key)
        for v in names:
            if v not in VARIABLES:
                raise _err(f"space.{key}", f"unknown variable '{v}' (known: {', '.join(VARIABLES)})")
            if VARIABLES[v].side != side:
                raise _err(f"space.{key}", f"variable '{v}' is a {VARIABLES[v].side} quantity, not {side}")
            if v not in allowed[side]:
                raise _err(f"space.{key}", f"variable '{v}' is not available in {model} networks "
                                           f"({model} {side} variables: {', '.join(allowed[side])})")
        if len(set(names)) != len(names):
            raise _err(f"space.{key}", "variables repeat")
    for o in sp.ops:
        if o not in OP_BY_NAME:
            raise _err("space.ops", f"unknown op '{o}' (known: {', '.join(OP_BY_NAME)})")
    for s in sp.syn:
        if s not in SYN_BY_NAME:
            raise _err("space.syn", f"unknown synapse factor '{s}' (known: {', '.join(SYN_BY_NAME)})")
        if s in ("elig", "w_elig") and not (model == "spiking" and sp.elig):
            raise _err("space.syn", f"'{s}' needs an eligibility trace (spiking tasks with space.elig: true)")
    if "1" not in sp.syn:
        raise _err("space.syn", "must contain '1'")
    if sp.elig and model != "spiking":
        raise _err("space.elig", "rate networks have no eligibility trace")
    _at_least("space.n_post", sp.n_post, 0)
    _at_least("space.n_pre", sp.n_pre, 0)
    _at_least("space.n_terms", sp.n_terms, 1)
    if not sp.ops and (sp.n_post or sp.n_pre):
        raise _err("space.ops", "a space with instructions needs at least one op")
    from ..rules.program import STRUCTURES
    if sp.structure not in STRUCTURES:
        raise _err("space.structure", f"unknown structure '{sp.structure}' (known: {', '.join(STRUCTURES)})")
    _at_least("space.weight_terms", sp.weight_terms, 1)
    if sp.structure == "three_factor" and not ("elig" in sp.syn and sp.n_terms >= sp.weight_terms + 1):
        raise _err("space.structure", "'three_factor' needs 'elig' in space.syn and space.n_terms >= "
                   f"space.weight_terms + 1 = {sp.weight_terms + 1}")
    if sp.m_offset and not (sp.structure == "three_factor" and sp.weight_terms >= 2):
        raise _err("space.m_offset", "needs space.structure: three_factor and space.weight_terms >= 2 (a weight slot "
                   "other than the last reads the constant 1)")
    return cfg.rule_space()


def _check_search(cfg: SearchConfig, space, model: str) -> SearchConfig:
    """The search section (strategy, population, mutation probabilities, seed rules, hurdle)."""
    from ..rules.mutation import MUTATIONS

    s, sp = cfg.search, cfg.space
    if s.strategy not in STRATEGIES:
        raise _err("search.strategy", f"unknown strategy '{s.strategy}' (known: {', '.join(STRATEGIES)})")
    _at_least("search.population", s.population, 2)
    _at_least("search.tournament", s.tournament, 1)
    _at_least("search.children", s.children, 1)
    if s.strategy in ("regularized_evolution", "hybrid"):
        if s.tournament > s.population:
            raise _err("search.tournament", f"must be <= search.population ({s.population}), got {s.tournament}")
        if s.children > s.population:
            raise _err("search.children", f"must be <= search.population ({s.population}), got {s.children}")
    _at_least("search.init_terms", s.init_terms, 1)
    if s.init_terms > sp.n_terms:
        raise _err("search.init_terms", f"must be <= space.n_terms ({sp.n_terms}), got {s.init_terms}")
    for k, v in s.mutation.items():
        if k not in MUTATIONS:
            raise _err(f"search.mutation.{k}", f"unknown mutation (known: {', '.join(MUTATIONS)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err(f"search.mutation.{k}", f"expected float, got {_type_name(v)} {v!r}")
        if v < 0:
            raise _err(f"search.mutation.{k}", f"must be >= 0, got {v}")
    full = {m: float(s.mutation.get(m, 0.0)) for m in MUTATIONS}
    if sum(full.values()) <= 0:
        raise _err("search.mutation", "probabilities must not all be zero")
    if len(s.seed_rules) > s.population:
        raise _err("search.seed_rules", f"more seed rules than search.population ({s.population})")
    for i, r in enumerate(s.seed_rules):
        _check_rule_in_space(r, space, f"search.seed_rules[{i}]", model)
    if s.fixed is not None:
        from ..rules.program import RuleError
        from .fixed import fixed_part
        if s.strategy not in ("regularized_evolution", "hybrid"):
            raise _err("search.fixed", f"holds part of evolved programs fixed: strategy regularized_evolution or "
                                       f"hybrid, not {s.strategy}")
        try:
            fixed_part(s.fixed, space)
        except RuleError as exc:
            raise _err("search.fixed", str(exc).splitlines()[0].removeprefix("fixed part: ")) from None
    if s.restart_after is not None:
        _at_least("search.restart_after", s.restart_after, 1)
    if s.hurdle is not None:
        _at_least("search.hurdle.steps", s.hurdle.steps, 1)
        _at_least("search.hurdle.seeds", s.hurdle.seeds, 1)
    _at_least("search.generations_per_call", s.generations_per_call, 1)
    return dataclasses.replace(cfg, search=dataclasses.replace(s, mutation=full))


def generations_per_call_refusal(cfg: SearchConfig, chunk: int | None = None, devices=None,
                                 processes: int = 1) -> str | None:
    """Why ``search.generations_per_call > 1`` (generations on the device, :mod:`.device_generations`) cannot run
    with this config, ``chunk`` (the evaluation's largest call, :func:`.autosize.eval_chunk`), ``devices`` (a
    mesh) and ``processes``; None if it can."""
    s = cfg.search
    if s.generations_per_call <= 1:
        return None
    if processes > 1:
        return "runs in one process"
    if s.strategy != "regularized_evolution":
        return f"runs regularized evolution only, not {s.strategy}"
    if s.fec:
        return "evaluates every child on the device: set search.fec: false"
    if s.hurdle is not None:
        return "has no hurdle stage: set search.hurdle: null"
    if s.restart_after is not None:
        return "has no restarts: set search.restart_after: null"
    if devices is not None:
        return "runs on one device: set budget.devices: null"
    if chunk is not None and s.children > chunk:
        return f"evaluates a generation's {s.children} children in one call; the evaluation's calls hold {chunk}"
    return None


def _check_network_keys(cfg: SearchConfig) -> dict:
    """The network section's keys and value types (resolved against the task's default by _resolve_network)."""
    net_types = network_types()
    net = {}
    for k, v in cfg.network.items():
        if k not in net_types:
            raise _err(f"network.{k}", f"unknown key (known: {', '.join(net_types)})")
        if k == "hidden" and isinstance(v, int) and not isinstance(v, bool):
            v = [v]
        v = _coerce(v, net_types[k], f"network.{k}")
        net[k] = list(v) if isinstance(v, tuple) else v
    return net


def _check_tasks(cfg: SearchConfig, model: str) -> tuple[dict, dict]:
    """Every task entry of every split: (objective, metric names) per (split, index)."""
    from ..tasks.base import MAX_SEED, TaskError
    if not cfg.tasks.search:
        raise _err("tasks.search", "needs at least one task")
    objectives, metrics_of = {}, {}
    for split in ("search", "select", "final"):
        for i, e in enumerate(getattr(cfg.tasks, split)):
            p = f"tasks.{split}[{i}]"
            if not e.task:
                raise _err(f"{p}.task", "missing task name")
            try:
                task = cfg.make_task(e)
            except TaskError as exc:
                raise _err(f"{p}.task", str(exc).splitlines()[0]) from None
            if task.kind != model:
                raise _err(f"{p}.task", f"task '{e.task}' is a {task.kind} task, but this search's first search "
                                        f"task is {model} (one model per search)")
            seeds = e.seed_list
            if isinstance(e.seeds, int):
                _at_least(f"{p}.seeds", e.seeds, 1)
            elif not seeds:
                raise _err(f"{p}.seeds", "needs at least one seed")
            for sd in seeds:
                if not 0 <= sd < MAX_SEED:
                    raise _err(f"{p}.seeds", f"seeds must be in [0, {MAX_SEED}), got {sd}")
            if e.steps is not None:
                _at_least(f"{p}.steps", e.steps, 1)
            objectives[(split, i)] = task.objective
            metrics_of[(split, i)] = task_metrics(task)
    return objectives, metrics_of


def _resolve_network(cfg: SearchConfig, net: dict, model: str, first_obj: str) -> SearchConfig:
    """The network over the default for the first search task's objective (rate), or the spiking section."""
    net_types = network_types()
    from ..rate.mlp import NetworkConfig, NetworkError, default_network
    if model == "spiking":
        _check_spiking_section(cfg.spiking, net)
    else:
        if cfg.spiking != SpikingSection():
            raise _err("spiking", "applies to spiking tasks only (this search's tasks are rate tasks)")
        base = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(default_network(first_obj)).items()}
        merged = {**base, **net}
        try:
            built = NetworkConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in merged.items()})
        except (NetworkError, ValueError) as exc:
            msg = str(exc).splitlines()[0]
            key = (next((k for k in net_types if msg.startswith(k + " ")), "")
                   or next((k for k in net_types if k in msg), ""))
            raise _err(f"network.{key}" if key else "network", msg) from None
        _check_network_rules(built)
        return dataclasses.replace(cfg, network=merged)
    return cfg


def _check_fitness(cfg: SearchConfig, model: str, first_obj: str, metrics_of: dict) -> SearchConfig:
    """The fitness metric (default by objective) and penalties name metrics of every task."""
    from ..rate.online import METRIC_SIGN

    f = cfg.fitness
    metric = f.metric or (SPIKING_DEFAULT_METRIC if model == "spiking" else DEFAULT_METRIC)[first_obj]
    for (split, i), names in metrics_of.items():
        if metric not in names:
            raise _err("fitness.metric", f"'{metric}' is not a metric of task {getattr(cfg.tasks, split)[i].task} "
                                         f"({', '.join(names)})")
    if METRIC_SIGN.get(metric, 0) == 0:
        raise _err("fitness.metric", f"'{metric}' has no direction (use it in fitness.penalties)")
    for j, pen in enumerate(f.penalties):
        for (split, i), names in metrics_of.items():
            if pen.metric not in names:
                raise _err(f"fitness.penalties[{j}].metric",
                           f"'{pen.metric}' is not a metric of task {getattr(cfg.tasks, split)[i].task} "
                           f"({', '.join(names)})")
        _at_least(f"fitness.penalties[{j}].weight", pen.weight, 0.0)
    _at_least("fitness.complexity_penalty", f.complexity_penalty, 0.0)
    return dataclasses.replace(cfg, fitness=dataclasses.replace(f, metric=metric))


def _check_coefficients(cfg: SearchConfig, model: str, objectives: dict, metrics_of: dict) -> SearchConfig:
    """The coefficients section: structure, evosax algorithm and its params, optax settings, meta-loss."""
    from ..rate.online import METRIC_SIGN, METRICS

    c, s = cfg.coefficients, cfg.search
    if model == "spiking":
        if s.strategy == "metagrad":
            raise _err("search.strategy", "metagrad differentiates through rate networks; spiking searches use "
                                          "regularized_evolution, evosax or hybrid")
        if s.strategy == "hybrid" and cfg.hybrid.refine == "metagrad":
            raise _err("hybrid.refine", "metagrad differentiates through rate networks; use evosax for spiking tasks")
    if s.strategy in ("evosax", "metagrad") and not c.structure:
        raise _err("coefficients.structure", f"strategy '{s.strategy}' needs a structure (a family such as "
                                             "shervani_tabar or volterra, a known rule, or a formula)")
    if c.structure:
        from ..rules.program import RuleError
        from .coeffs import structure_parametrization
        try:
            param = structure_parametrization(c.structure)
        except RuleError as exc:
            raise _err("coefficients.structure", str(exc).splitlines()[0]) from None
        from ..rules.resolve import model_of_space
        if s.strategy in ("evosax", "metagrad") and model_of_space(param.space) != model:
            raise _err("coefficients.structure", f"'{c.structure}' is a {model_of_space(param.space)} rule; "
                                                 f"this search's tasks are {model}")
        if c.init is not None and len(c.init) != param.n:
            raise _err("coefficients.init", f"expected {param.n} values ({', '.join(param.names)}), "
                                            f"got {len(c.init)}")
    elif c.init is not None:
        raise _err("coefficients.init", "needs coefficients.structure")
    import evosax.algorithms as ea
    from evosax.algorithms.distribution_based.base import DistributionBasedAlgorithm

    def built(a, n: int):
        """Algorithm ``a`` for a population of ``n`` (as coeffs.CoeffES builds it), or the first line of why not."""
        try:
            return a(population_size=n, solution=_zeros(2)), None
        except (AssertionError, TypeError, ValueError) as exc:
            return None, (str(exc).splitlines() or [""])[0] or type(exc).__name__

    alg = getattr(ea, c.algorithm, None)
    # distribution-based and built from a population size and a solution alone (RandomSearch, SV_CMA_ES and
    # SV_Open_ES need more arguments: a traceback before)
    probe = built(alg, 4)[0] if isinstance(alg, type) and issubclass(alg, DistributionBasedAlgorithm) else None
    if probe is None:
        known = sorted(n for n in dir(ea) if isinstance(getattr(ea, n), type)
                       and issubclass(getattr(ea, n), DistributionBasedAlgorithm)
                       and getattr(ea, n) is not DistributionBasedAlgorithm
                       and built(getattr(ea, n), 4)[0] is not None)
        raise _err("coefficients.algorithm", f"unknown or unsupported evosax algorithm '{c.algorithm}' "
                                             f"(distribution-based: {', '.join(known)})")
    # the population sizes the algorithm will get (some need an even one: Open_ES, PGPE, ARS, ...; before, an odd
    # one crashed after the run directory was written)
    sizes = [("search.population", s.population)] if s.strategy == "evosax" else []
    if s.strategy == "hybrid" and cfg.hybrid.refine == "evosax":
        sizes.append(("hybrid.population", cfg.hybrid.population))
    for key, n in sizes:
        if isinstance(n, int) and not isinstance(n, bool) and n >= 2:
            why = built(alg, n)[1]
            if why is not None:
                raise _err(key, f"{c.algorithm} does not take a population of {n}: {why}")
    if c.std_init <= 0:
        raise _err("coefficients.std_init", f"must be > 0, got {c.std_init}")
    if c.optimizer not in OPTIMIZERS:
        raise _err("coefficients.optimizer", f"unknown optimizer '{c.optimizer}' (known: {', '.join(OPTIMIZERS)})")
    if c.lr <= 0:
        raise _err("coefficients.lr", f"must be > 0, got {c.lr}")
    if c.clip_norm <= 0:
        raise _err("coefficients.clip_norm", f"must be > 0, got {c.clip_norm}")
    if c.truncation is not None:
        _at_least("coefficients.truncation", c.truncation, 1)
    if c.meta_batch is not None:
        _at_least("coefficients.meta_batch", c.meta_batch, 1)
    _at_least("coefficients.max_consecutive_errors", c.max_consecutive_errors, 0)
    loss = c.loss
    if loss == "auto":
        loss = "final_loss" if all("final_loss" in m for m in metrics_of.values()) else "fitness"
    if loss != "fitness" and model == "spiking":
        loss = "fitness"      # no meta-gradient through spikes; the field is unused
    if loss != "fitness":
        for (split, i), obj in objectives.items():
            if split == "search" and loss not in METRICS[obj]:
                raise _err("coefficients.loss", f"'{loss}' is not a metric of task "
                                                f"{cfg.tasks.search[i].task} ({obj}: {', '.join(METRICS[obj])}) "
                                                "nor 'fitness' / 'auto'")
        if METRIC_SIGN.get(loss, 0) == 0 or loss in ("finite", "final_accuracy", "online_accuracy"):
            raise _err("coefficients.loss", f"'{loss}' is not differentiable (use final_loss, final_mse, "
                                            "pc1_alignment or fitness)")
    out = dataclasses.replace(cfg, coefficients=dataclasses.replace(c, loss=loss))
    es_fields = {f.name for f in dataclasses.fields(probe.default_params)}
    for k, v in c.es_params.items():
        if k not in es_fields:
            raise _err(f"coefficients.es_params.{k}", f"not a parameter of {c.algorithm} "
                                                      f"(known: {', '.join(sorted(es_fields))})")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err(f"coefficients.es_params.{k}", f"expected float, got {_type_name(v)} {v!r}")
    return out


def _check_hybrid(cfg: SearchConfig) -> None:
    h, s = cfg.hybrid, cfg.search
    _at_least("hybrid.every", h.every, 1)
    _at_least("hybrid.top_k", h.top_k, 1)
    if s.strategy == "hybrid" and h.top_k > s.population:
        raise _err("hybrid.top_k", f"must be <= search.population ({s.population}), got {h.top_k}")
    if h.refine not in ("evosax", "metagrad"):
        raise _err("hybrid.refine", f"unknown refinement '{h.refine}' (known: evosax, metagrad)")
    _at_least("hybrid.steps", h.steps, 1)
    _at_least("hybrid.population", h.population, 2)
    if h.seeds is not None and h.refine != "evosax":
        raise _err("hybrid.seeds", "applies to the evosax refinement (metagrad uses the search instances)")


def _check_budget(cfg: SearchConfig) -> None:
    """The budget and the hall of fame's choice."""
    _at_least("budget.generations", cfg.budget.generations, 0)
    if cfg.budget.devices is not None:
        _at_least("budget.devices", cfg.budget.devices, 1)
    if cfg.budget.time_limit_s is not None and cfg.budget.time_limit_s <= 0:
        raise _err("budget.time_limit_s", f"must be > 0, got {cfg.budget.time_limit_s}")
    hof = cfg.hall_of_fame
    _at_least("hall_of_fame.per_complexity", hof.per_complexity, 1)
    _at_least("hall_of_fame.select_top_k", hof.select_top_k, 0)
    if hof.choose not in CHOOSE_RULES:
        raise _err("hall_of_fame.choose", f"unknown rule '{hof.choose}' (known: {', '.join(CHOOSE_RULES)})")
    _at_least("hall_of_fame.eps", hof.eps, 0.0)
    _at_least("hall_of_fame.snap_tol", hof.snap_tol, 0.0)


def _check_discovery(cfg: SearchConfig, model: str) -> None:
    """Early stop, the final choice's seeds and the baselines."""
    import math
    b = cfg.budget
    if b.patience is not None:
        _at_least("budget.patience", b.patience, 1)
    if b.checkpoint_every_s is not None:
        check_number("budget.checkpoint_every_s", b.checkpoint_every_s, 0, 86_400)
    if not (math.isfinite(b.min_delta) and b.min_delta >= 0):
        raise _err("budget.min_delta", f"must be a finite number >= 0, got {b.min_delta}")
    if b.target_fitness is not None and not math.isfinite(b.target_fitness):
        raise _err("budget.target_fitness", f"must be a finite number, got {b.target_fitness}")
    sel = cfg.hall_of_fame.select_seeds
    if sel is not None and not 1 <= sel <= MAX_SELECT_SEEDS:
        raise _err("hall_of_fame.select_seeds", f"must be in [1, {MAX_SELECT_SEEDS}], got {sel}")
    for i, spec in enumerate(cfg.baselines or ()):
        _check_baseline(spec, model, f"baselines[{i}]")
    _check_generalization(cfg, model)


def _check_network_rules(net) -> None:
    """The network's fixed rules (feedback_rule, readout_rule, layer_rules) resolve to rate rules: a known rule
    name, a formula, or a rule .json file (never a run's rule: a config stands on its own)."""
    from ..rate.online import check_space
    from ..rules.program import RuleError
    from ..rules.resolve import resolve_rule
    fields = [("feedback_rule", net.feedback_rule), ("readout_rule", net.readout_rule)]
    fields += [(f"layer_rules[{i}]", r) for i, r in enumerate(net.layer_rules or ()) if r is not None]
    for path, spec in fields:
        if spec is None:
            continue
        try:
            rule = resolve_rule(spec)
        except (RuleError, ValueError, OSError) as exc:
            raise _err(f"network.{path}", str(exc).splitlines()[0] if str(exc) else "invalid rule") from None
        if rule.model != "rate":
            raise _err(f"network.{path}", f"'{spec}' is a {rule.model} rule; network rules are rate rules")
        try:
            check_space(rule.space)
        except RuleError as exc:
            raise _err(f"network.{path}", str(exc).splitlines()[0]) from None


def _check_generalization(cfg: SearchConfig, model: str) -> None:
    """Held-out conditions: known rate tasks, network overrides of known keys, bounded seeds and steps."""
    from ..tasks.base import TaskError
    g = cfg.generalization
    check_number("generalization.seeds", g.seeds, 1, MAX_SEEDS)
    if g.conditions and model != "rate":
        raise _err("generalization.conditions", "held-out conditions are for rate networks")
    net_types = network_types()
    for i, c in enumerate(g.conditions or ()):
        p = f"generalization.conditions[{i}]"
        try:
            task = cfg.make_task(TaskEntry(task=c.task, args=dict(c.args)))
        except (TaskError, TypeError, ValueError) as exc:
            raise _err(f"{p}.task", str(exc).splitlines()[0] if str(exc) else "unknown task") from None
        if task.kind != "rate":
            raise _err(f"{p}.task", f"task '{c.task}' is a {task.kind} task; conditions are rate tasks")
        _check_task_args(TaskEntry(task=c.task, args=dict(c.args)), p)
        for k, v in c.network.items():
            if k not in net_types:
                raise _err(f"{p}.network.{k}", f"unknown key (known: {', '.join(net_types)})")
            _coerce(v, net_types[k], f"{p}.network.{k}")
        hidden = c.network.get("hidden", [])
        for j, h in enumerate(hidden if isinstance(hidden, (list, tuple)) else [hidden]):
            check_number(f"{p}.network.hidden[{j}]", h, 1, MAX_WIDTH)
        if c.network:      # the run's network with the condition's overrides (e.g. a depth with its layer_rules)
            from ..rate.mlp import NetworkError
            try:
                net = cfg.network_config().with_(**{k: (tuple(v) if isinstance(v, list) else v)
                                                    for k, v in c.network.items()})
            except (NetworkError, ValueError, TypeError) as exc:
                raise _err(f"{p}.network", str(exc).splitlines()[0]) from None
            _check_network_rules(net)
        if c.seeds is not None:
            check_number(f"{p}.seeds", c.seeds, 1, MAX_SEEDS)
        if c.steps is not None:
            check_number(f"{p}.steps", c.steps, 1, MAX_STEPS)


MAX_SELECT_SEEDS = 4096
BP_BASELINE = "bp"     # the name of the non-local reference: rule `fa` (-e*x) under backpropagated errors


# the known spiking rules a spiking run is compared with, by its search task's objective: pair STDP for pattern
# detection, reward-modulated STDP for reward tasks, the error-driven rules (e-prop, BP-STDP) for supervised ones
SPIKING_BASELINES = {"detection": ("stdp_add", "stdp_mult"), "reward": ("r_stdp",),
                     "classification": ("eprop", "bp_stdp"), "regression": ("bp_stdp",)}


def default_baselines(cfg: SearchConfig, objective: str | None = None) -> tuple[str, ...]:
    """The baselines of a run: ``cfg.baselines`` if set, else FA and BP for supervised rate tasks, Oja for PCA,
    and for spiking tasks the known rules of :data:`SPIKING_BASELINES` for the task's objective."""
    if cfg.baselines is not None:
        return tuple(cfg.baselines)
    if objective is None:
        objective = cfg.make_task(cfg.tasks.search[0]).objective
    if cfg.model == "spiking":
        return SPIKING_BASELINES.get(objective, ())
    return ("oja",) if objective == "pca" else ("fa", BP_BASELINE)


def _check_baseline(spec, model: str, path: str) -> None:
    from ..rules.formula import compile_formula
    from ..rules.program import RuleError
    from ..rules.known import RULES, SPACES
    if not isinstance(spec, str) or not spec.strip():
        raise _err(path, "expected a known rule name or a formula")
    if spec == BP_BASELINE:
        if model != "rate":
            raise _err(path, "'bp' (backpropagated errors) is a rate-network baseline")
        return
    if spec in RULES:
        if RULES[spec].model != model:
            raise _err(path, f"rule '{spec}' is a {RULES[spec].model} rule; this search's tasks are {model}")
        return
    try:
        compile_formula(spec, SPACES[model])
    except (RuleError, ValueError) as exc:
        raise _err(path, str(exc).splitlines()[0]) from None


def _check_spiking_section(spk: SpikingSection, net: dict) -> None:
    """Spiking tasks bring their own network; the ``spiking`` section holds every candidate's settings."""
    if net:
        raise _err(f"network.{next(iter(net))}", "spiking tasks bring their own network; "
                                                 "set spiking.* (lr, time constants, w_bounds, feedback)")
    from ..spiking.network import FEEDBACKS
    if spk.feedback not in FEEDBACKS:
        raise _err("spiking.feedback", f"unknown feedback '{spk.feedback}' (known: {', '.join(FEEDBACKS)})")
    for k in ("lr", "tau_plus", "tau_minus", "tau_x", "tau_y", "tau_elig"):
        v = getattr(spk, k)
        if v is not None and not v > 0:
            raise _err(f"spiking.{k}", f"must be > 0, got {v}")
        check_float32(f"spiking.{k}", v)
    if spk.w_bounds is not None and (len(spk.w_bounds) != 2 or not spk.w_bounds[0] < spk.w_bounds[1]):
        raise _err("spiking.w_bounds", f"expected [lo, hi] with lo < hi, got {list(spk.w_bounds)}")


def _zeros(n):
    import jax.numpy as jnp
    return jnp.zeros(n)


def _check_rule_in_space(spec: str, space, path: str, model: str = "rate") -> None:
    from ..rules.program import RuleError
    try:
        rule_in_space(spec, space, model)
    except RuleError as exc:
        raise _err(path, str(exc).splitlines()[0]) from None


def rule_in_space(spec: str, space, model: str = "rate"):
    """A known rule name, a formula or (seed rules) a rule ``.json`` file, compiled and padded into ``space``
    (RuleError if it does not fit). A rule file's program is taken as it is (exact constants, its own instructions:
    a run's rule exported with ``export RUN:RANK --to json``)."""
    from ..rules.formula import compile_formula
    from ..rules import RuleError, pad
    from ..rules.known import RULES, SPACES
    from ..rules.resolve import load_rule_file
    if spec in RULES:
        r = RULES[spec]
        if r.model != model:
            raise RuleError(f"rule '{spec}' is a {r.model} rule; this search's tasks are {model}")
        prog, src = r.compile()
    elif spec.strip().endswith(".json"):
        r = load_rule_file(spec.strip())
        if r.model != model:
            raise RuleError(f"rule file '{spec.strip()}' holds a {r.model} rule; this search's tasks are {model}")
        prog, src = r.program, r.space
    else:
        prog, src = compile_formula(spec, SPACES[model])
    return pad(prog, src, space)


def rule_settings(cfg: SearchConfig) -> dict:
    """The simulation settings every candidate of the search runs with, which its rules carry as their defaults
    (spiking: lr, trace time constants, weight bounds; rate: lr and the running means' time constants)."""
    if cfg.model == "spiking":
        from ..spiking.plasticity import hyper_dict
        return hyper_dict(cfg.spiking_eval_config()["rule_defaults"])
    n = cfg.network_config()
    return {"lr": n.lr, "tau_mean": n.tau_mean, "tau_theta": n.tau_theta}


def _check_seed_settings(cfg: SearchConfig) -> None:
    """A seed rule from a rule file ran with the settings it records (a run's rule: that run's lr, time constants,
    bounds; a known rule exported to a file: its registry defaults); its constants mean the same rule only under the
    same settings, so a file whose settings differ from the search's is refused, naming the first that differs.
    A file that records none (a formula exported to a file) is taken at the search's settings. Not compared: the
    feedback pathway and batch size of rate networks, which are the network's, not the rule's."""
    from ..rules.resolve import load_rule_file
    own = rule_settings(cfg)
    for i, spec in enumerate(cfg.search.seed_rules):
        if not spec.strip().endswith(".json"):
            continue
        theirs = load_rule_file(spec.strip()).defaults or {}
        if theirs and cfg.model == "spiking":        # what it ran with: unrecorded settings (w_bounds null) as run
            from ..spiking.plasticity import hyper_dict
            theirs = hyper_dict(theirs)
        for k in sorted(set(theirs) & set(own)):
            a, b = theirs[k], own[k]
            if not _same_setting(a, b):
                raise _err(f"search.seed_rules[{i}]", f"'{spec.strip()}' ran with {k} {setting_text(a)}, this "
                           f"search runs with {k} {setting_text(b)} (its constants mean that rule only under its "
                           f"own settings: use the same {k} here)")


def _same_setting(a, b) -> bool:
    import math
    if a is None or b is None:
        return a is None and b is None
    xs, ys = (list(v) if isinstance(v, (list, tuple)) else [v] for v in (a, b))
    return len(xs) == len(ys) and all(math.isclose(float(x), float(y), rel_tol=1e-6) for x, y in zip(xs, ys))


def setting_text(v) -> str:
    """A rule setting as the messages show it: ``none``, ``[lo, hi]`` (weight bounds) or the number."""
    return "none" if v is None else f"[{v[0]:g}, {v[1]:g}]" if isinstance(v, (list, tuple)) else f"{v:g}"


__all__ = ["ConfigError", "SearchConfig", "load_config", "STRATEGIES"]
