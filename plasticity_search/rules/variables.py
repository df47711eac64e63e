"""Local quantities a plasticity rule may read, typed by locality.

Every variable lives on one *side*:

* ``post``  -- a vector over the postsynaptic neurons of a layer (activity, arriving error, traces, ...)
* ``pre``   -- a vector over the presynaptic neurons (activity, traces, error at the pre layer, ...)
* ``syn``   -- a per-synapse matrix (the weight itself, an eligibility trace)
* ``global``-- a scalar shared by every synapse (reward, modulator)

A rule is built so that post-side and pre-side quantities only meet through an outer product, which is what
makes a rule *local*: the update of ``w_ij`` can only depend on neuron ``i``, neuron ``j``, the synapse ``ij``
and global scalars.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SIDES = ("post", "pre", "syn", "global")


@dataclass(frozen=True)
class Variable:
    name: str
    side: str
    latex: str            # the LaTeX symbol: the text name written out (tx -> t_{x}, elig -> \mathrm{elig})
    description: str      # one line for the legend of ``inspect``, ``report.html`` and ``rules``
    models: tuple[str, ...] = ("rate", "spiking")


_VARS = [
    # --- rate networks --------------------------------------------------------------------------------------
    Variable("y", "post", "y", "postsynaptic activity f(a)", ("rate",)),
    Variable("a", "post", "a", "postsynaptic input current (pre-activation)", ("rate",)),
    Variable("e", "post", "e", "error arriving at the post neuron through the feedback pathway: dloss/da at the "
             "output, fed back and times f'(a) in hidden layers (so -e*x descends the loss); spiking networks: the "
             "task's output error (spiking_teacher: v - u, the membrane minus the teacher's), fed back to hidden "
             "layers through the feedback weights"),
    Variable("ybar", "post", r"\bar{y}", "running mean of the post activity y (time constant tau_mean)", ("rate",)),
    Variable("theta", "post", r"\theta", "BCM sliding threshold: running mean of y^2 (time constant tau_theta)",
             ("rate",)),
    Variable("x", "pre", "x", "presynaptic activity (1 for the bias neuron)", ("rate",)),
    Variable("xbar", "pre", r"\bar{x}", "running mean of the pre activity x (time constant tau_mean)", ("rate",)),
    Variable("e_pre", "pre", r"e_{\mathrm{pre}}", "error arriving at the pre neuron (0 for network inputs)"),
    # --- spiking networks -----------------------------------------------------------------------------------
    Variable("sy", "post", "s_{y}", "post spike this step (0/1)", ("spiking",)),
    Variable("ty", "post", "t_{y}", "fast post spike trace (time constant tau_minus)", ("spiking",)),
    Variable("ty2", "post", "t_{y2}", "slow post spike trace (time constant tau_y; triplet rules)", ("spiking",)),
    Variable("v", "post", "v", "post membrane potential", ("spiking",)),
    Variable("psi", "post", r"\psi", "pseudo-derivative of the post spike w.r.t. the membrane", ("spiking",)),
    Variable("sx", "pre", "s_{x}", "pre spike this step (0/1)", ("spiking",)),
    Variable("tx", "pre", "t_{x}", "fast pre spike trace (time constant tau_plus)", ("spiking",)),
    Variable("tx2", "pre", "t_{x2}", "slow pre spike trace (time constant tau_x; triplet rules)", ("spiking",)),
    # --- per synapse and global -----------------------------------------------------------------------------
    Variable("w", "syn", "w", "the synaptic weight"),
    Variable("elig", "syn", r"\mathrm{elig}",
             "per-synapse eligibility trace, updated by delig (decays with time constant tau_elig)"),
    Variable("r", "global", "r", "global reward / neuromodulator (rate networks: -loss of the current sample)"),
    Variable("rbar", "global", r"\bar{r}", "running mean of the reward r (baseline)"),
]

VARIABLES: dict[str, Variable] = {v.name: v for v in _VARS}


def side_of(name: str) -> str:
    return VARIABLES[name].side


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def variables_in(*texts: str) -> list[str]:
    """The variables a formula text reads (``dw = ...; delig = ...`` or a bare formula), in the order of
    :data:`VARIABLES`; names that are not variables (functions, ``dw``, ``delig``) are skipped."""
    found = {m.group(0) for t in texts if isinstance(t, str) for m in _NAME.finditer(t)}
    return [v for v in VARIABLES if v in found]


def rule_equation(formula: str) -> str:
    """``dw = <formula>`` for display; formulas that already name their targets (``dw = ...; delig = ...``) as is.
    (Text only, like :func:`variables_in`: ``plasticity-search rules`` uses it without loading sympy.)"""
    return formula if re.match(r"\s*d(w|elig)\s*=", formula) else f"dw = {formula}"


def legend(names) -> list[dict]:
    """The legend of the variables ``names`` (unknown names skipped), in the order of :data:`VARIABLES`:
    ``[{"name", "latex", "side", "description"}]``."""
    wanted = set(names)
    return [{"name": v.name, "latex": v.latex, "side": v.side, "description": v.description}
            for v in _VARS if v.name in wanted]


def legend_lines(names, indent: str = "  ") -> list[str]:
    """One text line per variable: ``name  side  description``."""
    rows = legend(names)
    if not rows:
        return []
    w = max(len(r["name"]) for r in rows)
    return [f"{indent}{r['name']:<{w}}  {r['side']:<6}  {r['description']}" for r in rows]
