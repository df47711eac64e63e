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

from dataclasses import dataclass

SIDES = ("post", "pre", "syn", "global")


@dataclass(frozen=True)
class Variable:
    name: str
    side: str
    latex: str
    description: str
    models: tuple[str, ...] = ("rate", "spiking")


_VARS = [
    # --- rate networks --------------------------------------------------------------------------------------
    Variable("y", "post", "y", "postsynaptic activity f(a)", ("rate",)),
    Variable("a", "post", "a", "postsynaptic input current (pre-activation)", ("rate",)),
    Variable("e", "post", "e", "error arriving at the post neuron through the feedback pathway (includes f'(a))"),
    Variable("ybar", "post", r"\bar{y}", "running mean of the post activity", ("rate",)),
    Variable("theta", "post", r"\theta", "BCM sliding threshold: running mean of y^2", ("rate",)),
    Variable("x", "pre", "x", "presynaptic activity", ("rate",)),
    Variable("xbar", "pre", r"\bar{x}", "running mean of the pre activity", ("rate",)),
    Variable("e_pre", "pre", r"e_{\mathrm{pre}}", "error arriving at the pre neuron (0 for network inputs)"),
    # --- spiking networks -----------------------------------------------------------------------------------
    Variable("sy", "post", "s_{y}", "post spike this step (0/1)", ("spiking",)),
    Variable("ty", "post", "y_{1}", "fast post spike trace (tau_minus)", ("spiking",)),
    Variable("ty2", "post", "y_{2}", "slow post spike trace (triplet rules)", ("spiking",)),
    Variable("v", "post", "v", "post membrane potential", ("spiking",)),
    Variable("psi", "post", r"\psi", "pseudo-derivative of the post spike w.r.t. the membrane", ("spiking",)),
    Variable("sx", "pre", "s_{x}", "pre spike this step (0/1)", ("spiking",)),
    Variable("tx", "pre", "x_{1}", "fast pre spike trace (tau_plus)", ("spiking",)),
    Variable("tx2", "pre", "x_{2}", "slow pre spike trace (triplet rules)", ("spiking",)),
    # --- per synapse and global -----------------------------------------------------------------------------
    Variable("w", "syn", "w", "the synaptic weight"),
    Variable("elig", "syn", "c", "per-synapse eligibility trace (decays with its own time constant)"),
    Variable("r", "global", "r", "global reward / neuromodulator"),
    Variable("rbar", "global", r"\bar{r}", "running mean of the reward (baseline)"),
]

VARIABLES: dict[str, Variable] = {v.name: v for v in _VARS}


def side_of(name: str) -> str:
    return VARIABLES[name].side
