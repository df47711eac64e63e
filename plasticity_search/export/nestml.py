"""NESTML export: a NESTML 9 synapse model (``model NAME_synapse:``) for spike-based rules.

Same split as the Brian2 export: terms with the pre spike ``sx`` run in ``onReceive(pre_spikes)``, terms with the
post spike ``sy`` in ``onReceive(post_spikes)``, each reading the traces before its own spike is added (the
triplet rule's "epsilon-before" slow traces); terms with neither spike run in ``update:``, which NEST calls once
per interval between the spikes a synapse sees: the interval is replayed in steps of ``dt_rule`` (the step the rule
was found with), each decaying copies of the traces and then adding the terms, as the simulator does
(:func:`_every_step`; post traces they read are synapse-held copies ``TRACE_syn``).
Traces are ODEs (``tx' = -tx / tau_plus``), the constants ``c0, c1, ...``, ``lr``, the time constants, the weight
bounds, the reward ``r`` and its baseline ``rbar`` are parameters.

Not expressible (a one-line RuleError): rate rules; variables a NEST synapse does not see (``e``, ``psi``, ``v``);
terms that need a pre and a post spike in the same step (``sx*sy``), since NEST delivers them to separate
handlers. :func:`validate` runs NESTML's own parser and context checks (``pip install nestml``).

Two NESTML 9 pitfalls are avoided in the text itself: constants whose exponent is a multiple of ten (``5e-10``) are
written as ``(5e-09 / 10)`` (:func:`nestml_float`; NESTML would print ``5e-10`` into the C++ as ``5.00000000e-1``),
and a post trace read in ``onReceive(post_spikes)`` is a synapse-held copy ``TRACE_syn`` (:data:`SYNAPTIC_SUFFIX`).

To run in NEST a synapse must be generated together with a neuron (NESTML moves the post-spike traces into it):
:func:`nest_files` gives the synapse, a paired neuron (:data:`PAIRED_NEURONS`, ``iaf_psc_exp_neuron``) and the
code generator options (:func:`codegen_options`: ``neuron_synapse_pairs`` with ``post_ports``, ``weight_variable``,
``strictly_synaptic_vars`` for the ``*_syn`` copies, and an explicit ``nest_version``, so that generating C++ imports
no NEST). :func:`generate_cpp` writes the C++
module (NESTML only, no compiler), :func:`pip_nest_config` a ``nest-config`` that works with the pip wheel
``nest-simulator`` (whose own ``nest-config`` names the paths of the machine that built the wheel),
:func:`build_module` runs cmake and make. ``python -m plasticity_search.export.nestml SYNAPSE.nestml`` does all of it
for an exported file (README, "Exporting a rule").
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import mmap
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import ClassVar

import sympy as sp

from ..errors import UsageError
from ..rules.formula import symbol
from ..rules.program import RuleError
from ..rules.resolve import ResolvedRule, resolve_rule
from .codegen import (POST_TRACES, PRE_TRACES, TRACE_TAUS, EquationPrinter, check_printer, check_synapse_rule,
                      float_text, formula_text, rule_form, safe_name, spike_split, synapse_defaults, trace_taus,
                      used_traces, weight_bounds)

#: the synapse's port for the postsynaptic neuron's spikes, and its weight (NEST's connection weight)
POST_PORT = "post_spikes"
WEIGHT_VARIABLE = "w"
#: suffix of a post trace kept in the synapse (NESTML's ``strictly_synaptic_vars``): the copy that the post-spike
#: handler reads. NESTML moves the post traces into the paired neuron, which stores their values in its spike
#: history; a read in ``onReceive(post_spikes)`` needs the entry of the *previous* post spike, which NEST's history
#: pruning deletes once a pre spike has passed it and a later post spike comes more than max_delay + min_delay after
#: the next one (two post spikes between pre spikes), and the read then falls back to the initial value 0.
SYNAPTIC_SUFFIX = "_syn"
#: per-synapse state NESTML must not move into the neuron either: the pre traces and the eligibility trace. NESTML
#: moves state that only post spikes change; a rule whose eligibility is written and read only at post spikes
#: (``dw = c*elig*sy; delig = sy*tx``) had elig and tx moved, one copy per neuron, and C++ that did not compile.
SYNAPSE_OWN = ("tx", "tx2", "elig")
_SYNAPTIC_STATE = re.compile(r"^        ([A-Za-z_][A-Za-z0-9_]*" + SYNAPTIC_SUFFIX + "|" + "|".join(SYNAPSE_OWN)
                             + r") real = ", re.MULTILINE)


def _nestml_prints(v: float) -> bool:
    """Does NESTML 9 write the float ``v`` into the C++ (and to ODE-toolbox) as the same number?

    NESTML 9.0's ``ConstantPrinter.print_constant`` writes a float as ``f"{v:#.9g}".rstrip("0")``: the
    ``rstrip`` meant for the mantissa's trailing zeros also eats the exponent's, so every literal whose exponent is a
    multiple of ten changes value: ``5e-10`` becomes ``5.00000000e-1`` (0.5), ``1e10`` becomes ``1.00000000e+1``.
    """
    if not math.isfinite(v) or v == 0:
        return True
    printed = f"{abs(v):#.9g}".rstrip("0")
    return float(printed) == float(f"{abs(v):.9g}")


def nestml_float(v: float) -> str:
    """A float as NESTML text that NESTML 9 turns into the same number in the C++: :func:`float_text`, or, where
    NESTML would mangle the exponent (:func:`_nestml_prints`: 5e-10, 1e10, 2.5e-20, ...), ``(ten_times / 10)``."""
    v = float(v)
    text = float_text(v)
    if _nestml_prints(float(text)):
        return text
    ten = float_text(float(text) * 10)
    if not _nestml_prints(float(ten)):  # pragma: no cover - ten times a mangled exponent is never mangled
        raise RuleError(f"internal error: cannot write {text} so that NESTML prints it")
    return f"({ten} / 10)"


def nestml_quantity(v: float, unit: str) -> str:
    """``16.8 ms``; ``5e-09 ms / 10`` where NESTML would mangle the literal (:func:`nestml_float`)."""
    v = float(float_text(v))
    return f"{float_text(v)} {unit}" if _nestml_prints(v) else f"{nestml_float(v * 10)} {unit} / 10"


@check_printer
class NestmlPrinter(EquationPrinter):
    """NESTML expressions: ln for the natural log, ** 0.5 for sqrt, conditional expressions for sign/step; float
    literals that NESTML 9 would print wrongly into the C++ are written as ``(ten_times / 10)``
    (:func:`nestml_float`)."""

    functions: ClassVar[dict[str, str]] = {"exp": "exp", "log": "ln", "tanh": "tanh", "abs": "abs"}

    def number(self, v: float) -> str:
        return nestml_float(v)

    def op_sqrt(self, b):
        return f"({self._print(b)})**0.5"

    def op_sign(self, a):
        a = self._print(a)
        return f"(({a}) > 0 ? 1.0 : (({a}) < 0 ? -1.0 : 0.0))"

    def op_step(self, a):
        return f"(({self._print(a)}) > 0 ? 1.0 : 0.0)"

    def op_max(self, *args):
        return self.fold("max({}, {})", *args)

    def op_min(self, *args):
        return self.fold("min({}, {})", *args)


def _update(dw: sp.Expr, de: sp.Expr, pr: NestmlPrinter) -> list[str]:
    """A spike handler's lines: both parts from the same state, then w (clipped) and elig."""
    lines = []
    if dw != 0 and de != 0:
        lines += [f"dw_ real = {pr.print(dw)}", f"delig_ real = {pr.print(de)}",
                  "w = clip(w + lr * dw_, w_min, w_max)", "elig += delig_"]
    elif dw != 0:
        lines.append(f"w = clip(w + lr * ({pr.print(dw)}), w_min, w_max)")
    elif de != 0:
        lines.append(f"elig += {pr.print(de)}")
    return lines


def _every_step(f0: sp.Expr, g0: sp.Expr, pr: NestmlPrinter, traces, held, has_elig: bool) -> list[str]:
    """The ``update:`` lines of the terms with no spike factor: NEST runs a synapse's ``update:`` once per interval
    between the spikes it sees (``timestep()`` = the interval), so the simulator's steps of ``dt_rule`` are replayed
    one by one (docs/SPIKING_CONVENTIONS.md: decay, then the rule): local copies ``X_k`` of the traces and the
    eligibility start at their values at the interval's start, decay by ``exp(-dt_rule / tau)`` per step, and each
    step adds ``lr * dw`` to ``w`` (clipped) and ``delig`` to the eligibility. The spike terms of the step that ends
    the interval then run in ``onReceive`` after it (see :func:`to_nestml_source`)."""
    decaying = [t for t in traces if t in PRE_TRACES or (t == "elig" and has_elig)]
    decaying += [t + SYNAPTIC_SUFFIX for t in held]
    read = {v.name for e in (f0, g0) for v in e.free_symbols}
    local = [t for t in decaying if t in read or (t == "elig" and g0 != 0)]
    sub = {symbol(t): symbol(t + "_k") for t in local}
    f0, g0 = f0.xreplace(sub), g0.xreplace(sub)
    lines = [f"{t}_k real = {t}    # at the start of the interval" for t in local]
    if f0 != 0:
        lines.append("dw_k real = 0.0")
    if g0 != 0:
        lines.append("delig_k real = 0.0")
    lines += ["k_ real = 0.5    # round(timestep() / dt_rule) steps", "while k_ * dt_rule < timestep():"]
    for t in local:
        tau = TRACE_TAUS[t[:-len(SYNAPTIC_SUFFIX)] if t.endswith(SYNAPTIC_SUFFIX) else t][0]
        lines.append(f"    {t}_k = {t}_k * exp(-dt_rule / {tau})")
    if f0 != 0:
        lines.append(f"    dw_k = {pr.print(f0)}")
    if g0 != 0:
        lines.append(f"    delig_k = {pr.print(g0)}")
    if f0 != 0:
        lines.append("    w = clip(w + lr * dw_k, w_min, w_max)")
    if g0 != 0:
        lines.append("    elig_k += delig_k")
    lines.append("    k_ += 1")
    return lines


def _num(v: float) -> str:
    if v == float("inf"):
        return "inf"
    if v == float("-inf"):
        return "-inf"
    return nestml_float(v)


def to_nestml_source(rule: ResolvedRule) -> str:
    f = rule_form(rule)
    check_synapse_rule(rule, f, "nestml")
    (f0, f1, f2, f3), (g0, g1, g2, g3) = spike_split(f).f, spike_split(f).g
    if f3 != 0 or g3 != 0:
        raise RuleError("nestml export: the rule has a term that needs a pre and a post spike in the same step "
                        "(sx*sy), which NEST delivers to separate handlers")
    pr = NestmlPrinter()
    name = f"{safe_name(rule, 'plasticity_rule')}_synapse"
    all_traces = used_traces(f)
    kw = synapse_defaults(rule, f)
    taus = trace_taus(rule, all_traces)
    bounds = weight_bounds(rule) or (float("-inf"), float("inf"))
    continuous = f0 != 0 or g0 != 0
    # post traces read at a post spike or by the every-step terms: a copy TRACE_syn that stays in the synapse (see
    # SYNAPTIC_SUFFIX; the every-step terms run in update:, which must read each trace at the start of the interval)
    read_in_synapse = {v.name for e in (f0, f2, g0, g2) for v in e.free_symbols}
    read_elsewhere = {v.name for e in (f1, g1) for v in e.free_symbols}
    held = [t for t in POST_TRACES if t in read_in_synapse]
    f0, f2, g0, g2 = (e.xreplace({symbol(t): symbol(t + SYNAPTIC_SUFFIX) for t in held}) for e in (f0, f2, g0, g2))
    traces = [t for t in all_traces if t not in held or t in read_elsewhere]
    lines = [
        f"# {name}: plasticity rule exported by plasticity-search",
        f"#     {formula_text(rule)}",
        "# Traces are all-to-all with increment 1; each handler reads them before its own spike is added.",
        "# w += lr * dw, clipped to [w_min, w_max]; c0, c1, ... are the rule's constants.",
        f"# NEST: generate it paired with a neuron (neuron_synapse_pairs, post_ports: [{POST_PORT}],",
        f"#     weight_variable: {WEIGHT_VARIABLE}): python -m plasticity_search.export.nestml THIS_FILE.nestml",
    ]
    if {"r", "rbar"} & set(f.variables):
        lines += ["# r, rbar: parameters set from outside; the handlers and update: (the interval since this",
                  "#     synapse's last spike, replayed at its next one) read their current values, so hold them",
                  "#     constant between this synapse's spikes: a reward given for one step is not reproduced."]
    if held:
        copies = ", ".join(t + SYNAPTIC_SUFFIX for t in held)
        what = "the post trace" + ("s " if len(held) > 1 else " ") + ", ".join(held)
        lines += [f"# {copies}: {what} as read at a post spike, kept in the synapse (strictly_synaptic_vars):",
                  "#     in the neuron, such a read can find the previous post spike pruned from its spike history."]
    lines += [
        f"model {name}:",
        "    state:",
        "        w real = 1.0    # synaptic weight",
    ]
    for t in traces:
        lines.append(f"        {t} real = 0.0")
    for t in held:
        lines.append(f"        {t}{SYNAPTIC_SUFFIX} real = 0.0    # {t}, kept in the synapse")
    lines.append("")
    lines.append("    parameters:")
    for (c, role), v in zip(zip(f.consts, f.roles), f.values):
        lines.append(f"        {c} real = {nestml_float(v)}    # {role}")
    lines.append(f"        lr real = {nestml_float(kw['lr'])}")
    for tau, v in taus.items():
        lines.append(f"        {tau} ms = {nestml_quantity(v, 'ms')}")
    lines.append(f"        w_min real = {_num(bounds[0])}")
    lines.append(f"        w_max real = {_num(bounds[1])}")
    for g, what in (("r", "reward"), ("rbar", "reward baseline")):
        if g in f.variables:
            lines.append(f"        {g} real = 0.0    # {what}, set from outside; held between this synapse's spikes")
    if continuous:
        lines.append("        dt_rule ms = 1.0 ms    # the every-step terms are per step of dt_rule")
    lines.append("")
    if traces or held:
        lines.append("    equations:")
        for t in traces:
            lines.append(f"        {t}' = -{t} / {TRACE_TAUS[t][0]}")
        for t in held:
            lines.append(f"        {t}{SYNAPTIC_SUFFIX}' = -{t}{SYNAPTIC_SUFFIX} / {TRACE_TAUS[t][0]}")
        lines.append("")
    lines += ["    input:", "        pre_spikes <- spike", "        post_spikes <- spike", "",
              "    output:", "        spike", ""]
    post = (_update(f2, g2, pr) + [f"{t} += 1" for t in traces if t in POST_TRACES]
            + [f"{t}{SYNAPTIC_SUFFIX} += 1" for t in held])
    if post:
        lines.append("    onReceive(post_spikes):")
        lines += [f"        {ln}" for ln in post]
        lines.append("")
    pre = _update(f1, g1, pr) + [f"{t} += 1" for t in traces if t in PRE_TRACES] + ["emit_spike(w)"]
    lines.append("    onReceive(pre_spikes):")
    lines += [f"        {ln}" for ln in pre]
    lines.append("")
    lines.append("    update:")
    if continuous:
        lines += [f"        {ln}" for ln in _every_step(f0, g0, pr, traces, held, f.has_elig)]
    lines.append("        integrate_odes()")
    if continuous and g0 != 0:
        lines.append("        elig = elig_k    # the every-step eligibility terms, integrated step by step above")
    text = "\n".join(lines) + "\n"
    if '"' in text or "\\" in text:  # pragma: no cover - our printers never emit these
        raise RuleError("internal error: unexpected character in generated NESTML code")
    return text


def validate(text: str) -> list[str]:
    """Error messages of NESTML's parser and context checks for a model (empty: valid). Needs ``nestml``."""
    from pynestml.frontend.pynestml_frontend import generate_target
    from pynestml.utils.logger import Logger, LoggingLevel

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.nestml")
        with open(path, "w") as fh:
            fh.write(text)
        failed = generate_target(path, target_platform="NONE", target_path=os.path.join(d, "target"),
                                 logging_level="ERROR")
        errors = [str(m[-1]) for m in Logger.get_messages(level=LoggingLevel.ERROR)]
    if failed and not errors:
        errors = ["NESTML reported errors (no message)"]
    return errors


# ---------------------------------------------------------------------------------------------------------------
# NEST: a paired neuron, the code generator options, C++ generation, the build
# ---------------------------------------------------------------------------------------------------------------
class NestBuildError(UsageError):
    """Generating or building a NEST module failed; the message is one line naming the step and the cause."""


_IAF_PSC_EXP = """\
# iaf_psc_exp_neuron: leaky integrate-and-fire neuron with exponentially decaying synaptic currents, the
# postsynaptic partner of a synapse exported by plasticity-search (NESTML moves the synapse's post-spike traces
# into it). Same parameters and defaults as NEST's iaf_psc_exp.
model iaf_psc_exp_neuron:
    state:
        V_m mV = E_L
        refr_t ms = 0 ms    # time left in the refractory period
        I_syn_exc pA = 0 pA
        I_syn_inh pA = 0 pA

    equations:
        I_syn_exc' = -I_syn_exc / tau_syn_exc
        I_syn_inh' = -I_syn_inh / tau_syn_inh
        V_m' = -(V_m - E_L) / tau_m + (I_syn_exc - I_syn_inh + I_e + I_stim) / C_m
        refr_t' = -1

    parameters:
        C_m pF = 250 pF
        tau_m ms = 10 ms
        tau_syn_exc ms = 2 ms
        tau_syn_inh ms = 2 ms
        refr_T ms = 2 ms
        E_L mV = -70 mV
        V_reset mV = -70 mV
        V_th mV = -55 mV
        I_e pA = 0 pA

    internals:
        unit_psc pA = 1 pA

    input:
        exc_spikes <- excitatory spike
        inh_spikes <- inhibitory spike
        I_stim pA <- continuous

    output:
        spike

    update:
        if refr_t > 0 ms:
            integrate_odes(I_syn_exc, I_syn_inh, refr_t)
        else:
            integrate_odes(I_syn_exc, I_syn_inh, V_m)

    onReceive(exc_spikes):
        I_syn_exc += unit_psc * exc_spikes * 1 s

    onReceive(inh_spikes):
        I_syn_inh += unit_psc * inh_spikes * 1 s

    onCondition(refr_t <= 0 ms and V_m >= V_th):
        refr_t = refr_T
        V_m = V_reset
        emit_spike()
"""

#: neurons an exported synapse can be paired with: name -> NESTML source
PAIRED_NEURONS = {"iaf_psc_exp_neuron": _IAF_PSC_EXP}
DEFAULT_NEURON = "iaf_psc_exp_neuron"
#: NEST version the C++ is generated for when none is given (the pip wheel nest-simulator 3.10.0)
NEST_VERSION = "v3.10.0"
#: suffix NESTML appends to every generated model name
SUFFIX = "_nestml"

_MODEL_LINE = re.compile(r"^model\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*$", re.MULTILINE)
_VERSION = re.compile(r"v\d+\.\d+(\.\d+)?")


def model_names(text: str) -> list[str]:
    """Names of the ``model NAME:`` blocks of a NESTML source."""
    return _MODEL_LINE.findall(text)


def synapse_name(rule: ResolvedRule) -> str:
    """Name of the exported synapse model (``stdp_add_synapse``; ``plasticity_rule_synapse`` for formulas)."""
    return f"{safe_name(rule, 'plasticity_rule')}_synapse"


def synaptic_vars(text: str) -> list[str]:
    """The state an exported synapse keeps to itself, which :func:`codegen_options` passes to NESTML as
    ``strictly_synaptic_vars``: the post-trace copies (``ty2_syn``, ...; :data:`SYNAPTIC_SUFFIX`), the pre traces and
    the eligibility trace (:data:`SYNAPSE_OWN`), in the order the model declares them."""
    return _SYNAPTIC_STATE.findall(text)


def codegen_options(synapse: str | list[str], neuron: str = DEFAULT_NEURON, nest_version: str = NEST_VERSION,
                    strictly_synaptic: dict[str, list[str]] | None = None) -> dict:
    """NESTML code generator options for ``synapse`` (one name or several) generated together with ``neuron``.

    ``neuron_synapse_pairs`` (NESTML 9 form; one pair, hence one copy of the neuron, per synapse) routes each
    synapse's ``post_spikes`` port to the neuron's spikes, ``weight_variable`` maps NEST's connection weight to
    ``w``, and ``nest_version`` is explicit so that NESTML does not import NEST to detect it.
    ``strictly_synaptic`` (synapse -> variables, :func:`synaptic_vars` of its source) becomes
    ``strictly_synaptic_vars``: state NESTML must not move into the neuron.
    """
    if not _VERSION.fullmatch(nest_version):
        raise NestBuildError(f"nest_version must look like v3.10.0, got '{nest_version}'")
    synapses = [synapse] if isinstance(synapse, str) else list(synapse)
    opts = {"neuron_synapse_pairs": [{"neuron": neuron, "synapses": {s: {"post_ports": [POST_PORT]}}}
                                     for s in synapses],
            "weight_variable": {s: WEIGHT_VARIABLE for s in synapses},
            "nest_version": nest_version}
    keep = {s: list(v) for s, v in (strictly_synaptic or {}).items() if s in synapses and v}
    if keep:
        opts["strictly_synaptic_vars"] = keep
    return opts


def paired_model_names(synapse: str, neuron: str = DEFAULT_NEURON) -> tuple[str, str]:
    """(neuron model, synapse model) as NEST knows them after pairing, e.g.
    ``iaf_psc_exp_neuron_nestml__with_stdp_add_synapse_nestml``, ``stdp_add_synapse_nestml__with_iaf_psc_exp_neuron_nestml``."""
    return (f"{neuron}{SUFFIX}__with_{synapse}{SUFFIX}", f"{synapse}{SUFFIX}__with_{neuron}{SUFFIX}")


def nest_files(rule, neuron: str = DEFAULT_NEURON, nest_version: str = NEST_VERSION) -> dict[str, str]:
    """Everything NESTML needs to generate a NEST module for a rule: file name -> text.

    ``NAME_synapse.nestml`` (:func:`to_nestml_source`), ``NEURON.nestml`` (the paired neuron) and
    ``codegen_opts.json`` (:func:`codegen_options`; usable as ``nestml --codegen_opts codegen_opts.json``).
    """
    if not isinstance(rule, ResolvedRule):
        rule = resolve_rule(rule)
    if neuron not in PAIRED_NEURONS:
        raise NestBuildError(f"unknown neuron '{neuron}' (known: {', '.join(PAIRED_NEURONS)})")
    syn = synapse_name(rule)
    text = to_nestml_source(rule)
    opts = codegen_options(syn, neuron, nest_version, {syn: synaptic_vars(text)})
    return {f"{syn}.nestml": text, f"{neuron}.nestml": PAIRED_NEURONS[neuron],
            "codegen_opts.json": json.dumps(opts, indent=2) + "\n"}


def generate_cpp(model_paths: list[str], target_path: str, module_name: str, codegen_opts: dict,
                 logging_level: str = "ERROR") -> list[str]:
    """Generate the C++ of a NEST extension module with NESTML, without building it and without importing NEST.

    The same steps as NESTML's ``generate_nest_target`` minus the build; the code generator gets its options when
    it is made, so that the explicit ``nest_version`` stops NESTML from starting NEST to detect one. Returns the
    generated file names; raises :class:`NestBuildError` with NESTML's first error message.
    """
    if not module_name.endswith("module") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name):
        raise NestBuildError(f"module name must be an identifier ending in 'module', got '{module_name}'")
    try:
        from pynestml.cocos.co_cos_manager import CoCosManager
        from pynestml.frontend import pynestml_frontend as fe
        from pynestml.frontend.frontend_configuration import FrontendConfiguration
        from pynestml.utils.logger import Logger, LoggingLevel
    except ImportError as exc:
        raise NestBuildError(f"generating NEST code needs nestml (pip install 'nestml>=9,<10'): {exc}") from None
    os.makedirs(target_path, exist_ok=True)
    fe.configure_front_end(list(model_paths), "NEST", target_path=target_path, module_name=module_name,
                           suffix=SUFFIX, logging_level=logging_level, codegen_opts=dict(codegen_opts))
    opts = FrontendConfiguration.get_codegen_opts()
    transformers, _ = fe.transformers_from_target_name("NEST", options=opts)
    generator = fe.code_generator_from_target_name("NEST", options=opts)
    models = fe.get_parsed_models()
    for m in models:
        if not Logger.has_errors(m):
            CoCosManager.check_cocos(m)
    errors = [str(msg[-1]) for msg in Logger.get_messages(level=LoggingLevel.ERROR)]
    if errors or not models or any(Logger.has_errors(m) for m in models):
        raise NestBuildError("NESTML: " + (errors[0] if errors else "the models have errors").replace("\n", " "))
    models, metadata = fe.transform_models(transformers, models)
    generator.generate_code(models, metadata)
    return sorted(os.listdir(target_path))


def _nest_package_dir() -> str:
    spec = importlib.util.find_spec("nest")  # finds the package without importing (starting) NEST
    if spec is None or not spec.submodule_search_locations:
        raise NestBuildError("NEST is not installed (pip install nest-simulator)")
    return next(iter(spec.submodule_search_locations))


def nest_wheel_version() -> str:
    """The version of the installed NEST (``v3.10.0``), read from its ``config.h`` (NEST is not imported)."""
    cfg = os.path.join(_nest_package_dir(), "include", "nest", "config.h")
    try:
        with open(cfg) as fh:
            m = re.search(r'#define NEST_VERSION "(\d+\.\d+(?:\.\d+)?)"', fh.read())
    except OSError:
        m = None
    if not m:
        raise NestBuildError(f"cannot read the NEST version from {cfg}")
    return "v" + m.group(1)


def _old_string_abi(lib: str) -> bool:
    """True if the library uses libstdc++'s pre-C++11 std::string (manylinux2014 wheels built with devtoolset)."""
    # a NEST symbol with a C++11 std::string in its signature (libstdc++'s own statics have both kinds)
    with open(lib, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return re.search(rb"_ZNK?4nest[A-Za-z0-9_]{0,400}?St7__cxx11", mm) is None


#: Debian/Ubuntu packages the build needs besides the pip wheel (headers the wheel's own headers include)
BUILD_PACKAGES = "g++ make cmake libboost-dev libltdl-dev"
_NEEDED_HEADERS = {"ltdl.h": "libltdl-dev", "boost/version.hpp": "libboost-dev"}


def pip_nest_config(dest_dir: str) -> str:
    """Write ``dest_dir/bin/nest-config`` for the pip wheel ``nest-simulator`` and return its path.

    The wheel's own ``nest-config`` names the machine that built the wheel: includes under a deleted temporary
    directory, the compiler ``/opt/rh/devtoolset-10/root/usr/bin/g++`` and libraries ``/usr/lib64/libgsl.so`` ...
    that do not exist here, so NESTML's cmake step cannot use it. This one points at the headers inside the wheel
    (``site-packages/nest/include/nest``), uses the system ``g++`` with the wheel's C++ standard and string ABI, and
    links nothing: the module's NEST symbols resolve when NEST loads it, against ``nestkernel_api.so``, which PyNEST
    loads with ``RTLD_GLOBAL``.
    """
    pkg = _nest_package_dir()
    inc = os.path.join(pkg, "include", "nest")
    lib = os.path.join(pkg, "nestkernel_api.so")
    if not os.path.isfile(os.path.join(inc, "config.h")) or not os.path.isfile(lib):
        raise NestBuildError(f"{pkg} has no include/nest/config.h or nestkernel_api.so: not the pip NEST wheel")
    for tool in ("g++", "cmake", "make"):
        if shutil.which(tool) is None:
            raise NestBuildError(f"building a NEST module needs {tool} (apt-get install {BUILD_PACKAGES})")
    missing = [pkg_ for h, pkg_ in _NEEDED_HEADERS.items()
               if not any(os.path.isfile(os.path.join(d, h)) for d in ("/usr/include", "/usr/local/include"))]
    if missing:
        raise NestBuildError(f"the NEST headers need {', '.join(missing)} (apt-get install {BUILD_PACKAGES})")
    version = nest_wheel_version()[1:]
    flags = "-O2 -std=c++20 -fopenmp -fPIC" + (" -D_GLIBCXX_USE_CXX11_ABI=0" if _old_string_abi(lib) else "")
    prefix = os.path.abspath(dest_dir)
    os.makedirs(os.path.join(prefix, "bin"), exist_ok=True)
    for text in (prefix, inc):
        if re.search(r"[\s'\"\\$`]", text):
            raise NestBuildError(f"path with spaces or quotes not supported for the build: {text}")
    script = f"""#!/bin/sh
# nest-config for the pip wheel nest-simulator {version}, written by plasticity-search (see pip_nest_config)
case "$1" in
  --prefix|--exec-prefix) echo "{prefix}" ;;
  --version) echo "{version}" ;;
  --compiler) echo "g++" ;;
  --compiler-name) echo "GNU" ;;
  --cflags) echo "{flags}" ;;
  --includes) echo "-I{inc}" ;;
  --libs) echo "" ;;
  --static-libraries) echo "OFF" ;;
  --libdir) echo "lib" ;;
  --python-executable) echo "{sys.executable}" ;;
  *) echo "usage: nest-config --prefix|--version|--compiler|--cflags|--includes|--libs" >&2; exit 1 ;;
esac
"""
    path = os.path.join(prefix, "bin", "nest-config")
    with open(path, "w") as fh:
        fh.write(script)
    os.chmod(path, 0o755)
    return path


def build_module(target_path: str, install_path: str, nest_config: str, jobs: int | None = None,
                 log_path: str | None = None) -> str:
    """cmake + make + make install of NESTML's generated module; returns the installed ``.so``.

    ``nest_config``: :func:`pip_nest_config` for the pip wheel, or the ``nest-config`` of a NEST built from source.
    The compiler output goes to ``log_path`` (default ``target_path/build.log``); a failure raises
    :class:`NestBuildError` naming the step and the log's first error line.
    """
    target_path, install_path = os.path.abspath(target_path), os.path.abspath(install_path)
    log_path = log_path or os.path.join(target_path, "build.log")
    jobs = jobs or max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8))
    cache = os.path.join(target_path, "CMakeCache.txt")
    if os.path.exists(cache):
        os.remove(cache)
    steps = [("cmake", ["cmake", f"-Dwith-nest={os.path.abspath(nest_config)}",
                        f"-DCMAKE_INSTALL_PREFIX={install_path}", "."]),
             ("make", ["make", f"-j{jobs}", "all"]), ("make install", ["make", "install"])]
    with open(log_path, "w") as log:
        for step, cmd in steps:
            r = subprocess.run(cmd, cwd=target_path, stdout=log, stderr=subprocess.STDOUT, check=False)
            if r.returncode != 0:
                log.flush()
                with open(log_path, errors="replace") as fh:
                    lines = [ln.strip() for ln in fh if "error" in ln.lower()]
                first = lines[0] if lines else f"exit code {r.returncode}"
                raise NestBuildError(f"{step} failed ({first[:300]}); full log: {log_path}")
    so = [f for f in os.listdir(install_path) if f.endswith(".so")] if os.path.isdir(install_path) else []
    if not so:
        raise NestBuildError(f"make install wrote no .so to {install_path}; full log: {log_path}")
    return os.path.join(install_path, min(so))


def install_hint(install_path: str, module_name: str) -> str:
    """The Python lines that load a built module into NEST."""
    return (f'import os; os.environ["LD_LIBRARY_PATH"] = "{os.path.abspath(install_path)}"; '
            f'import nest; nest.Install("{module_name}")')


def main(argv: list[str] | None = None) -> int:
    """``python -m plasticity_search.export.nestml SYNAPSE.nestml``: pair, generate, build a NEST module."""
    ap = argparse.ArgumentParser(
        prog="python -m plasticity_search.export.nestml",
        description="Generate (NESTML) and build (cmake, make) a NEST extension module for a synapse exported with "
                    "`plasticity-search export RULE --to nestml -o FILE.nestml`, paired with a neuron.")
    ap.add_argument("synapse", help="the exported .nestml file (one model NAME_synapse)")
    ap.add_argument("--neuron", default=DEFAULT_NEURON, choices=sorted(PAIRED_NEURONS))
    ap.add_argument("--out", help="output directory (default: FILE without .nestml, plus _nest)")
    ap.add_argument("--module", help="module name (default: NAMEmodule)")
    ap.add_argument("--nest-config", help="nest-config of a NEST built from source (default: one for the pip wheel)")
    ap.add_argument("--nest-version", help="NEST version to generate for, e.g. v3.10.0 (default: the installed "
                                           f"wheel's, else {NEST_VERSION})")
    ap.add_argument("--generate-only", action="store_true", help="write the C++ and stop (needs no NEST)")
    a = ap.parse_args(argv)
    try:
        if not os.path.isfile(a.synapse):
            raise NestBuildError(f"no such file: {a.synapse}")
        if os.path.getsize(a.synapse) > 1_000_000:
            raise NestBuildError(f"{a.synapse} is larger than 1 MB: not an exported synapse")
        with open(a.synapse, errors="replace") as fh:
            text = fh.read()
        names = model_names(text)
        if len(names) != 1 or not names[0].endswith("_synapse"):
            raise NestBuildError(f"{a.synapse} must hold exactly one 'model NAME_synapse:' (found: "
                                 f"{', '.join(names) or 'none'})")
        syn = names[0]
        version = a.nest_version
        if version is None:
            try:
                version = nest_wheel_version()
            except NestBuildError:
                version = NEST_VERSION
        out = os.path.abspath(a.out or (os.path.splitext(a.synapse)[0] + "_nest"))
        module = a.module or f"{syn[:-len('_synapse')]}module"
        models = os.path.join(out, "models")
        os.makedirs(models, exist_ok=True)
        paths = [os.path.join(models, f"{syn}.nestml"), os.path.join(models, f"{a.neuron}.nestml")]
        for p_, t_ in zip(paths, (text, PAIRED_NEURONS[a.neuron])):
            with open(p_, "w") as fh:
                fh.write(t_)
        opts = codegen_options(syn, a.neuron, version, {syn: synaptic_vars(text)})
        with open(os.path.join(models, "codegen_opts.json"), "w") as fh:
            json.dump(opts, fh, indent=2)
        target = os.path.join(out, "target")
        generate_cpp(paths, target, module, opts)
        print(f"C++ for NEST {version} in {target}")
        if a.generate_only:
            return 0
        cfg = a.nest_config or pip_nest_config(os.path.join(out, "nest_config"))
        so = build_module(target, os.path.join(out, "install"), cfg)
        neuron_model, synapse_model = paired_model_names(syn, a.neuron)
        print(f"built {so}\nload it:  {install_hint(os.path.dirname(so), module)}\n"
              f"models:   neuron '{neuron_model}', synapse '{synapse_model}' (weight: '{WEIGHT_VARIABLE}')")
        return 0
    except (NestBuildError, RuleError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2


__all__ = [
    "PAIRED_NEURONS",
    "NestBuildError",
    "build_module",
    "codegen_options",
    "generate_cpp",
    "install_hint",
    "model_names",
    "nest_files",
    "nest_wheel_version",
    "nestml_float",
    "paired_model_names",
    "pip_nest_config",
    "synapse_name",
    "synaptic_vars",
    "to_nestml_source",
    "validate",
]

if __name__ == "__main__":
    sys.exit(main())
