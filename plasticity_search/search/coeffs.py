"""Continuous constants of a fixed rule structure, and evosax over them.

A :class:`Parametrization` maps a parameter vector ``theta`` to a program of one fixed structure (pure JAX, works on
traced ``theta``, vmappable over a population of vectors):

* a rule *family* (``family_program``: the Shervani-Tabar term pool, Confavreux's Volterra basis):
  ``term_coef = M @ theta``;
* any program (a known rule, a formula, the best program of a search): ``theta`` = the coefficients of its live
  terms, then the constants of its live ``cmul``/``cadd``/``const`` instructions (post side, then pre side);
  ``all_constants=True`` instead takes every term coefficient and instruction constant of the space (a fixed size
  for every program of the space, so one compiled meta-gradient serves all of them; dead ones get zero gradient).

:class:`CoeffES` wraps any distribution-based evosax algorithm (CMA-ES by default) with pure ``init / ask / tell``
(key first) that *maximise* fitness: evosax minimises, so ``tell`` passes ``-fitness`` (non-finite -> a large loss).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..rules.formula import compile_formula
from ..rules.ops import OP_BY_NAME
from ..rules.program import Program, RuleError, Space, liveness
from ..rules.known import RULES, SPACES, family_program
from ..rules.resolve import model_of_formula

BIG_LOSS = 1e10


@dataclass(eq=False)
class Parametrization:
    program: Program            # the base program (numpy arrays)
    space: Space
    names: tuple[str, ...]
    term_map: np.ndarray        # [K, n_term_params]
    post_idx: np.ndarray        # int [n_post_params]: instructions whose constant is a parameter
    pre_idx: np.ndarray         # int [n_pre_params]
    theta0: np.ndarray          # float32 [n]

    @property
    def n(self) -> int:
        return int(self.theta0.shape[0])

    @property
    def n_terms(self) -> int:
        return int(self.term_map.shape[1])

    def to_program(self, theta, base: Program | None = None) -> Program:
        """The program with these constants (theta may be traced). ``base`` replaces the stored program (same
        layout; may be traced), e.g. to share one compiled function between programs with ``all_constants``."""
        theta = jnp.asarray(theta, jnp.float32)
        p = jax.tree.map(jnp.asarray, self.program if base is None else base)
        nt, npc = self.n_terms, len(self.post_idx)
        owned = jnp.asarray(self.term_map.any(1))
        coef = jnp.where(owned, jnp.asarray(self.term_map) @ theta[:nt], p.term_coef)
        post_c, pre_c = p.post_c, p.pre_c
        if len(self.post_idx):
            post_c = post_c.at[jnp.asarray(self.post_idx)].set(theta[nt:nt + npc])
        if len(self.pre_idx):
            pre_c = pre_c.at[jnp.asarray(self.pre_idx)].set(theta[nt + npc:])
        return p._replace(term_coef=coef.astype(jnp.float32), post_c=post_c, pre_c=pre_c)

    def to_programs(self, thetas) -> Program:
        return jax.vmap(self.to_program)(jnp.asarray(thetas, jnp.float32))

    # --- constructors ------------------------------------------------------------------------------------------
    @classmethod
    def from_program(cls, prog: Program, space: Space, all_constants: bool = False,
                     free: tuple | None = None) -> "Parametrization":
        """``free``: (term, post-instruction, pre-instruction) masks of the slots whose constants are parameters
        (:meth:`.fixed.FixedPart.free`: a search's fixed part keeps its constants); None: all."""
        prog = Program(*[np.asarray(x) for x in prog])
        K = int(prog.term_on.shape[0])
        if all_constants:
            terms = np.arange(K)
            post_idx, pre_idx = np.arange(space.n_post), np.arange(space.n_pre)
        else:
            live_post, live_pre, live_terms = liveness(prog, space)
            if free is not None:
                live_terms, live_post, live_pre = live_terms & free[0], live_post & free[1], live_pre & free[2]
            terms = np.nonzero(live_terms)[0]
            post_idx = np.array([i for i in np.nonzero(live_post)[0]
                                 if OP_BY_NAME[space.ops[int(prog.post_op[i])]].uses_const], np.int64)
            pre_idx = np.array([i for i in np.nonzero(live_pre)[0]
                                if OP_BY_NAME[space.ops[int(prog.pre_op[i])]].uses_const], np.int64)
        term_map = np.zeros((K, len(terms)), np.float32)
        term_map[terms, np.arange(len(terms))] = 1.0
        names = tuple([f"term{k}" for k in terms] + [f"post{i}" for i in post_idx] + [f"pre{i}" for i in pre_idx])
        theta0 = np.concatenate([prog.term_coef[terms], prog.post_c[post_idx], prog.pre_c[pre_idx]]).astype(np.float32)
        return cls(prog, space, names, term_map, post_idx.astype(np.int64), pre_idx.astype(np.int64), theta0)

    @classmethod
    def from_family(cls, rule) -> "Parametrization":
        prog, space, M, theta0 = family_program(rule)
        prog = Program(*[np.asarray(x) for x in prog])
        return cls(prog, space, tuple(rule.params), np.asarray(M, np.float32), np.zeros(0, np.int64),
                   np.zeros(0, np.int64), np.asarray(theta0, np.float32))


@lru_cache(maxsize=32)
def structure_parametrization(spec: str) -> Parametrization:
    """``spec``: a family (``shervani_tabar``, ``volterra``), a known rule, or a formula (rate or spiking variables;
    the search's tasks must be of the same model, which the config checks)."""
    if not isinstance(spec, str) or not spec.strip():
        raise RuleError("empty structure")
    spec = spec.strip()
    if spec in RULES:
        rule = RULES[spec]
        if rule.basis:
            return only_used_ops(Parametrization.from_family(rule))
        prog, space = rule.compile()
    else:
        prog, space = compile_formula(spec, SPACES[model_of_formula(spec)])
    param = only_used_ops(Parametrization.from_program(prog, space))
    if param.n == 0:
        raise RuleError(f"structure '{spec}' has no constants to tune")
    return param


def only_used_ops(param: Parametrization) -> Parametrization:
    """``param`` over a space whose op menu holds only the ops its instructions use (the same values).

    The interpreter computes every op of the menu and selects one; a structure compiled into the full rate space
    (21 ops) so computed 21 ops per instruction. The meta-gradient of such a structure was also NaN wherever an
    unselected sqrt/log/div/recip got an input outside its domain (0 * NaN; found by a config audit), which the
    interpreter's ops now prevent themselves (``rules.program._interpreted``); this keeps the cheaper program."""
    prog, space = param.program, param.space
    n_ops = len(space.ops)
    ops = np.clip(np.concatenate([prog.post_op, prog.pre_op]).astype(np.int64), 0, n_ops - 1)  # as run_side reads
    used = sorted(set(ops.tolist()) or {0})
    if len(used) == n_ops:
        return param
    remap = np.zeros(n_ops, np.int64)
    remap[used] = np.arange(len(used))
    new = lambda a: remap[np.clip(a, 0, n_ops - 1)].astype(a.dtype)  # noqa: E731
    return dataclasses.replace(param, program=prog._replace(post_op=new(prog.post_op), pre_op=new(prog.pre_op)),
                               space=dataclasses.replace(space, ops=tuple(space.ops[i] for i in used)))


# --------------------------------------------------------------------------------------------------------------
class CoeffES:
    """An evosax distribution-based algorithm over ``n`` constants, maximising fitness. Pure init/ask/tell."""

    def __init__(self, algorithm: str, population: int, n: int, std_init: float = 0.1,
                 es_params: tuple = ()):
        import evosax.algorithms as ea
        self.algorithm, self.population, self.n = algorithm, population, n
        self.es = getattr(ea, algorithm)(population_size=population, solution=jnp.zeros(n, jnp.float32))
        params = self.es.default_params
        names = {f.name for f in fields(params)}
        kw = {"std_init": float(std_init)} if "std_init" in names else {}
        kw.update({k: float(v) for k, v in dict(es_params).items()})
        self.params = params.replace(**kw)

    def init(self, key, theta0):
        return self.es.init(key, jnp.asarray(theta0, jnp.float32), self.params)

    def ask(self, key, state):
        """(thetas [population, n], state)."""
        return self.es.ask(key, state, self.params)

    def tell(self, key, state, thetas, fitness):
        """Update with fitness to *maximise*; non-finite fitness counts as the worst."""
        fitness = jnp.asarray(fitness, jnp.float32)
        loss = jnp.where(jnp.isfinite(fitness), -fitness, BIG_LOSS)
        return self.es.tell(key, thetas, loss, state, self.params)

    def mean(self, state):
        return self.es.get_mean(state)


@lru_cache(maxsize=64)
def coeff_es(algorithm: str, population: int, n: int, std_init: float, es_params: tuple = ()) -> CoeffES:
    """Shared instances (evosax jits its methods with ``self`` static: one compile per configuration)."""
    return CoeffES(algorithm, population, n, std_init, es_params)


__all__ = ["Parametrization", "structure_parametrization", "CoeffES", "coeff_es", "BIG_LOSS"]
