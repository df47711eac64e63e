"""Hall of fame: the Pareto set of (fitness, complexity) of a run, with simplified formulas.

During a run the engine keeps an :class:`Archive`: for every complexity level the ``per_complexity`` best distinct
programs by *search* fitness. When the run finishes (``Search.finalize``) the candidates on the search Pareto front
are re-scored on the ``select`` and ``final`` tasks; the hall of fame is the Pareto set of (select fitness,
complexity) (search fitness if the config has no select tasks), and ``final`` numbers are only reported.

Choice of ``best`` (``hall_of_fame.choose``):

* ``eps`` (default): the lowest-complexity entry whose select fitness is within ``eps`` of the highest select
  fitness (parsimony in the spirit of PySR's score, robust for fitnesses that are not losses);
* ``fitness``: the highest select fitness.

Entries are ordered by rank: 0 is the chosen best, then the others by decreasing select fitness.

Python API (``run_search(cfg)`` returns one)::

    hof.entries[i].formula / .latex / .complexity / .fitness / .metrics["final"]
    hof.sympy(i), hof.latex(i), hof.formula(i)
    fn, params = hof.jax(i)          # fn(params, **local_variables) -> dW; params = the rule's constants
    hof.rule(i), hof.export(i, "numpy")
    HallOfFame.from_json(hof.to_json())
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..export import export as export_rule
from ..rules.formula import to_latex, to_sympy
from ..rules.program import Program, Space
from ..rules.resolve import ResolvedRule, model_of_space
from .coeffs import Parametrization
from .fitness import WORST, WORST_JSON, json_float

SCHEMA = "plasticity-search/hall-of-fame/v1"


# --------------------------------------------------------------------------------------------------------------
# archive used during a run
# --------------------------------------------------------------------------------------------------------------
def max_complexity(space: Space) -> int:
    return space.n_post + space.n_pre + 2 * space.n_terms


class Archive:
    """Per complexity level, the ``per`` best distinct programs by search fitness (fixed-shape numpy arrays)."""

    def __init__(self, space: Space, per: int, programs: Program | None = None, fitness=None, hashes=None):
        self.space, self.per = space, per
        L = max_complexity(space) + 1
        if programs is None:
            empty = space.empty()
            programs = Program(*[np.repeat(np.repeat(np.asarray(x)[None], per, 0)[None], L, 0) for x in empty])
            fitness = np.full((L, per), WORST, np.float64)
            hashes = [["" for _ in range(per)] for _ in range(L)]
        self.programs = Program(*[np.array(x) for x in programs])
        self.fitness = np.array(fitness, np.float64)
        self.hashes = [list(h) for h in hashes]

    @property
    def levels(self) -> int:
        return self.fitness.shape[0]

    def add(self, programs: Program, fitness, complexity, hashes) -> None:
        """Offer candidates (numpy Program [n], raw search fitness [n], complexity [n], FEC hashes [n])."""
        fitness = np.asarray(fitness, np.float64)
        levels = np.minimum(np.asarray(complexity, np.int64), self.levels - 1)
        can = self.can_enter(fitness, complexity)
        for i in np.flatnonzero(can)[np.argsort(-fitness[can], kind="stable")]:
            f, c = fitness[i], int(levels[i])
            row_h = self.hashes[c]
            if hashes[i] in row_h:
                j = row_h.index(hashes[i])
                if f > self.fitness[c, j]:     # same function, better constants bookkeeping: keep the newer fitness
                    self._put(c, j, programs, i, f, hashes[i])
                continue
            j = int(np.argmin(self.fitness[c]))
            if f > self.fitness[c, j]:
                self._put(c, j, programs, i, f, hashes[i])

    def can_enter(self, fitness, complexity) -> np.ndarray:
        """Which candidates :meth:`add` would look at: a candidate at or below the worst slot of its level cannot
        enter it (slots only get better, and the slot of the same program holds at least that), so only the others
        need their hashes (a large batch of children offers about a thousand candidates per generation, a handful
        of which can enter)."""
        fitness = np.asarray(fitness, np.float64)
        levels = np.minimum(np.asarray(complexity, np.int64), self.levels - 1)
        return np.isfinite(fitness) & (fitness > self.fitness.min(axis=1)[levels])

    def replace(self, old_hash: str, programs: Program, i: int, fitness: float, new_hash: str) -> bool:
        """Put program ``i`` of ``programs`` in the slot of the program hashed ``old_hash`` (whatever the fitness
        comparison; a refinement's result taking its original's place). False if ``old_hash`` is not stored."""
        for c in range(self.levels):
            if old_hash in self.hashes[c]:
                self._put(c, self.hashes[c].index(old_hash), programs, i, float(fitness), new_hash)
                return True
        return False

    def _put(self, c, j, programs, i, f, h):
        for dst, src in zip(self.programs, programs):
            dst[c, j] = np.asarray(src)[i]
        self.fitness[c, j] = f
        self.hashes[c][j] = h

    def pareto_slots(self) -> list[tuple[int, int]]:
        """(level, slot) of every stored program on a level that improves on all lower levels (search fitness)."""
        out, best_so_far = [], -np.inf
        for c in range(self.levels):
            top = float(np.max(self.fitness[c]))
            if np.isfinite(top) and top > best_so_far:
                best_so_far = top
                out.extend((c, j) for j in np.argsort(-self.fitness[c]) if np.isfinite(self.fitness[c, j]))
        return out

    def program(self, c: int, j: int) -> Program:
        return Program(*[np.asarray(x)[c, j] for x in self.programs])

    def best(self) -> tuple[float, int]:
        """(best search fitness, its complexity)."""
        if not np.isfinite(self.fitness).any():
            return WORST, -1
        c, j = np.unravel_index(np.argmax(self.fitness), self.fitness.shape)
        return float(self.fitness[c, j]), int(c)


def pareto_front(fitness, complexity) -> list[int]:
    """Indices of the Pareto set (maximise fitness, minimise complexity); one per complexity, lowest first."""
    order = sorted(range(len(fitness)), key=lambda i: (complexity[i], -_f(fitness[i])))
    out, best = [], -np.inf
    for i in order:
        if _f(fitness[i]) > best:
            if out and complexity[out[-1]] == complexity[i]:
                continue
            out.append(i)
            best = _f(fitness[i])
    return out


def choose_best(fitness, complexity, rule: str = "eps", eps: float = 0.01) -> int:
    """Index of the chosen entry (see the module docstring)."""
    f = [_f(x) for x in fitness]
    top = max(f)
    if rule == "fitness" or not np.isfinite(top):
        return int(np.argmax(f))
    ok = [i for i in range(len(f)) if f[i] >= top - eps]
    return min(ok, key=lambda i: (complexity[i], -f[i]))


def top_distinct(fitness, keys, k: int) -> list[int]:
    """Indices of the ``k`` fittest entries with distinct ``keys`` (the first of each key), best first; ties in
    index order; non-finite fitness never picked."""
    f = np.asarray(fitness, np.float64)
    f = np.where(np.isfinite(f), f, -np.inf)
    picked, seen = [], set()
    for i in np.argsort(-f, kind="stable"):
        if len(picked) >= k or f[i] == -np.inf:
            break
        if keys[i] not in seen:
            seen.add(keys[i])
            picked.append(int(i))
    return picked


def _f(x) -> float:
    x = -np.inf if x is None else float(x)
    return x if np.isfinite(x) else -np.inf


# --------------------------------------------------------------------------------------------------------------
# the result of a run
# --------------------------------------------------------------------------------------------------------------

#: the text tables' Δ columns: one per baseline, up to this many (jordan_correlation's third baseline, the one
#: that wins, was hidden when the tables showed two; the verdict lines below a table list every baseline)
MAX_DELTA_COLUMNS = 4

@dataclass
class Entry:
    rank: int
    formula: str
    latex: str
    complexity: int
    fitness: float                       # select fitness (search fitness if the run has no select tasks)
    metrics: dict                        # {"search": {...}, "select": {...}, "final": {...}}: fitness, metric means
    program: dict                        # Program fields as lists
    space: dict                          # Space.to_dict()
    paired: dict = field(default_factory=dict)      # baseline name -> stats.paired_difference on the final split
    instances: list = field(default_factory=list)   # per-instance fitness on the final split (None: non-finite)

    @classmethod
    def of(cls, prog: Program, space: Space, *, rank: int, complexity: int, fitness: float, metrics: dict,
           paired: dict | None = None, instances: list | None = None, text: tuple | None = None) -> "Entry":
        """The one way an entry is built: formula and LaTeX from the program (``text``: the two already computed
        by :func:`entry_text`), program and space as JSON data."""
        formula, latex = entry_text(prog, space) if text is None else text
        return cls(rank=rank, formula=formula, latex=latex, complexity=int(complexity),
                   fitness=float(fitness) if np.isfinite(fitness) else WORST, metrics=metrics,
                   program=prog.to_dict(), space=space.to_dict(), paired=dict(paired or {}),
                   instances=list(instances or []))

    def to_json(self) -> dict:
        d = asdict(self)
        d["fitness"] = json_float(self.fitness)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Entry":
        d = dict(d)
        return cls(**{k: d[k] for k in ("rank", "formula", "latex", "complexity", "fitness", "metrics", "program",
                                         "space")}, paired=dict(d.get("paired") or {}),
                   instances=list(d.get("instances") or []))

    def rule_program(self) -> tuple[Program, Space]:
        space = Space.from_dict(self.space)
        return Program.from_dict(self.program), space


def entry_text(prog: Program, space: Space) -> tuple[str, str]:
    """(formula, LaTeX) of a program, as an entry shows them."""
    from ..rules.formula import to_latex, to_text
    return to_text(prog, space), to_latex(prog, space)


@dataclass
class HallOfFame:
    entries: list[Entry]
    best: int = 0
    choose: str = "eps"
    eps: float = 0.01
    defaults: dict = field(default_factory=dict)      # simulation defaults of the rules (network lr, taus)
    info: dict = field(default_factory=dict)          # run summary (name, strategy, generations, fec hit rate, ...)
    baselines: list = field(default_factory=list)     # [{name, formula, feedback, fitness, metrics, instances}]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i) -> Entry:
        return self.entries[i]

    # --- accessors -----------------------------------------------------------------------------------------------
    def _ps(self, i):
        return self.entries[i].rule_program()

    def formula(self, i: int | None = None) -> str:
        return self.entries[self.best if i is None else i].formula

    def sympy(self, i: int | None = None):
        return to_sympy(*self._ps(self.best if i is None else i))

    def latex(self, i: int | None = None) -> str:
        return to_latex(*self._ps(self.best if i is None else i))

    def jax(self, i: int | None = None):
        """``(fn, params)``: ``fn(params, **local_variables) -> dW`` (post vectors [N], pre vectors [M], globals
        scalars, ``w`` [N, M]; missing variables are 0); ``params`` are the rule's constants (term coefficients,
        then instruction constants), so the rule can be fine-tuned by gradient."""
        import jax.numpy as jnp

        prog, space = self._ps(self.best if i is None else i)
        param = Parametrization.from_program(prog, space)

        def fn(params, w, **values):
            dw, de = space.apply(param.to_program(params), values, jnp.asarray(w, jnp.float32))
            return (dw, de) if space.elig else dw

        return fn, jnp.asarray(param.theta0)

    def rule(self, i: int | None = None):
        i = self.best if i is None else i
        prog, space = self._ps(i)
        name = f"{self.info.get('name', 'run')}:{i}"
        return ResolvedRule(prog, space, name, self.entries[i].formula, model_of_space(space), dict(self.defaults),
                            f"plasticity-search run {self.info.get('name', '')}".strip())

    def export(self, i: int | None, target: str) -> str:
        return export_rule(self.rule(i), target)

    # --- serialisation ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"schema": SCHEMA, "best": self.best, "choose": self.choose, "eps": self.eps,
                "defaults": self.defaults, "info": _jsonable(self.info),
                "entries": [e.to_json() for e in self.entries], "baselines": _jsonable(self.baselines)}

    @classmethod
    def from_json(cls, d: dict) -> "HallOfFame":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise ValueError(f"not a hall of fame (expected schema '{SCHEMA}')")
        entries = [Entry.from_json(e) for e in d["entries"]]
        for e in entries:
            if e.fitness == WORST_JSON:
                e.fitness = WORST
        return cls(entries, int(d["best"]), d.get("choose", "eps"), float(d.get("eps", 0.01)),
                   dict(d.get("defaults", {})), dict(d.get("info", {})), list(d.get("baselines") or []))

    def table(self) -> str:
        """A PySR-like text table: rank, complexity, select fitness, final fitness, paired Δ vs the first
        MAX_DELTA_COLUMNS baselines (95% interval), formula; '*' marks the chosen rule; then the baselines as rows."""
        from .stats import format_delta
        names = [b["name"] for b in self.baselines][:MAX_DELTA_COLUMNS]
        head = "  rank  cplx   fitness  final_fit  " + "".join(f"{'Δ vs ' + n:<26}" for n in names) + "formula"
        rows = [head]
        for i, e in enumerate(self.entries):
            fin = e.metrics.get("final", {}).get("fitness")
            deltas = "".join(f"{format_delta(e.paired.get(n)):<26}" for n in names)
            rows.append(f"{'*' if i == self.best else ' '} {e.rank:>4}  {e.complexity:>4}  {_fmt(e.fitness):>8}  "
                        f"{_fmt(fin):>9}  {deltas}{e.formula}")
        for b in self.baselines:
            tag = f"baseline {b['name']}" + (f" ({b['feedback']} feedback)" if b.get("feedback") else "")
            rows.append(f"  {'-':>4}  {'-':>4}  {'-':>8}  {_fmt(b.get('fitness')):>9}  {'':<{26 * len(names)}}"
                        f"{b['formula']}   [{tag}]")
        if self.info.get("choice"):
            rows.append(f"chosen: {self.info['choice']}")
        return "\n".join(rows)


def _fmt(x) -> str:
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x) or x <= WORST_JSON:
        return "worst"
    return f"{x:.4f}"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return json_float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


__all__ = ["HallOfFame", "Entry", "Archive", "pareto_front", "choose_best", "top_distinct", "max_complexity"]
