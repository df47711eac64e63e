"""NESTML export: a NESTML 9 synapse model (``model NAME_synapse:``) for spike-based rules.

Same split as the Brian2 export: terms with the pre spike ``sx`` run in ``onReceive(pre_spikes)``, terms with the
post spike ``sy`` in ``onReceive(post_spikes)``, each reading the traces before its own spike is added (the
triplet rule's "epsilon-before" slow traces); terms with neither spike run in ``update:`` after
``integrate_odes()``, scaled by ``timestep() / dt_rule`` (``dt_rule``: the step the rule was found with).
Traces are ODEs (``tx' = -tx / tau_plus``), the constants ``c0, c1, ...``, ``lr``, the time constants, the weight
bounds, the reward ``r`` and its baseline ``rbar`` are parameters.

Not expressible (a one-line RuleError): rate rules; variables a NEST synapse does not see (``e``, ``psi``, ``v``);
terms that need a pre and a post spike in the same step (``sx*sy``), since NEST delivers them to separate
handlers. :func:`validate` runs NESTML's own parser and context checks (``pip install nestml``).
"""
from __future__ import annotations

import os
import tempfile
from typing import ClassVar

import sympy as sp

from ..rules.program import RuleError
from ..rules.resolve import ResolvedRule
from .codegen import (POST_TRACES, PRE_TRACES, TRACE_TAUS, EquationPrinter, check_printer, check_synapse_rule,
                      float_text, formula_text, rule_form, safe_name, spike_split, synapse_defaults, trace_taus,
                      used_traces, weight_bounds)


@check_printer
class NestmlPrinter(EquationPrinter):
    """NESTML expressions: ln for the natural log, ** 0.5 for sqrt, conditional expressions for sign/step."""

    functions: ClassVar[dict[str, str]] = {"exp": "exp", "log": "ln", "tanh": "tanh", "abs": "abs"}

    def op_sqrt(self, b):
        return f"({self._print(b)})**0.5"

    def op_sign(self, a):
        a = self._print(a)
        return f"(({a}) > 0 ? 1.0 : (({a}) < 0 ? -1.0 : 0.0))"

    def op_step(self, a):
        return f"(({self._print(a)}) > 0 ? 1.0 : 0.0)"

    def op_max(self, first, *rest):
        out = self._print(first)
        for a in rest:
            out = f"max({out}, {self._print(a)})"
        return out

    def op_min(self, first, *rest):
        out = self._print(first)
        for a in rest:
            out = f"min({out}, {self._print(a)})"
        return out


def _update(dw: sp.Expr, de: sp.Expr, pr: NestmlPrinter, scale: str = "") -> list[str]:
    lines = []
    if dw != 0 and de != 0:
        lines += [f"dw_ real = {pr.print(dw)}", f"delig_ real = {pr.print(de)}",
                  f"w = clip(w + lr * dw_{scale}, w_min, w_max)", f"elig += delig_{scale}"]
    elif dw != 0:
        lines.append(f"w = clip(w + lr * ({pr.print(dw)}){scale}, w_min, w_max)")
    elif de != 0:
        lines.append(f"elig += ({pr.print(de)}){scale}" if scale else f"elig += {pr.print(de)}")
    return lines


def _num(v: float) -> str:
    if v == float("inf"):
        return "inf"
    if v == float("-inf"):
        return "-inf"
    return float_text(v)


def to_nestml_source(rule: ResolvedRule) -> str:
    f = rule_form(rule)
    check_synapse_rule(rule, f, "nestml")
    (f0, f1, f2, f3), (g0, g1, g2, g3) = spike_split(f).f, spike_split(f).g
    if f3 != 0 or g3 != 0:
        raise RuleError("nestml export: the rule has a term that needs a pre and a post spike in the same step "
                        "(sx*sy), which NEST delivers to separate handlers")
    pr = NestmlPrinter()
    name = f"{safe_name(rule, 'plasticity_rule')}_synapse"
    traces = used_traces(f)
    kw = synapse_defaults(rule, f)
    taus = trace_taus(rule, traces)
    bounds = weight_bounds(rule) or (float("-inf"), float("inf"))
    continuous = f0 != 0 or g0 != 0

    lines = [
        f"# {name}: plasticity rule exported by plasticity-search",
        f"#     {formula_text(rule)}",
        "# Traces are all-to-all with increment 1; each handler reads them before its own spike is added.",
        "# w += lr * dw, clipped to [w_min, w_max]; c0, c1, ... are the rule's constants.",
        f"model {name}:",
        "    state:",
        "        w real = 1.0    # synaptic weight",
    ]
    for t in traces:
        lines.append(f"        {t} real = 0.0")
    lines.append("")
    lines.append("    parameters:")
    for (c, role), v in zip(zip(f.consts, f.roles), f.values):
        lines.append(f"        {c} real = {float_text(v)}    # {role}")
    lines.append(f"        lr real = {float_text(kw['lr'])}")
    for tau, v in taus.items():
        lines.append(f"        {tau} ms = {float_text(v)} ms")
    lines.append(f"        w_min real = {_num(bounds[0])}")
    lines.append(f"        w_max real = {_num(bounds[1])}")
    for g, what in (("r", "reward"), ("rbar", "reward baseline")):
        if g in f.variables:
            lines.append(f"        {g} real = 0.0    # {what}, set from outside")
    if continuous:
        lines.append("        dt_rule ms = 1.0 ms    # the every-step terms are per step of dt_rule")
    lines.append("")
    if traces:
        lines.append("    equations:")
        for t in traces:
            lines.append(f"        {t}' = -{t} / {TRACE_TAUS[t][0]}")
        lines.append("")
    lines += ["    input:", "        pre_spikes <- spike", "        post_spikes <- spike", "",
              "    output:", "        spike", ""]
    post = _update(f2, g2, pr) + [f"{t} += 1" for t in traces if t in POST_TRACES]
    if post:
        lines.append("    onReceive(post_spikes):")
        lines += [f"        {ln}" for ln in post]
        lines.append("")
    pre = _update(f1, g1, pr) + [f"{t} += 1" for t in traces if t in PRE_TRACES] + ["emit_spike(w)"]
    lines.append("    onReceive(pre_spikes):")
    lines += [f"        {ln}" for ln in pre]
    lines.append("")
    lines.append("    update:")
    lines.append("        integrate_odes()")
    if continuous:
        lines += [f"        {ln}" for ln in _update(f0, g0, pr, scale=" * (timestep() / dt_rule)")]
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


__all__ = ["to_nestml_source", "validate"]
