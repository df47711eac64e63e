"""Brian2 export: a Python file defining ``make_synapses(source, target, **params) -> brian2.Synapses``.

The expanded per-step rule is split by its spike variables (exact for 0/1 spikes, see
:func:`~plasticity_search.export.codegen.spike_split`): terms with ``sx`` run in ``on_pre``, terms with ``sy`` in
``on_post``, terms with both in ``on_post`` gated by a same-step flag ``spre``, and terms with neither in a
``run_regularly`` once per step. Following ``docs/SPIKING_CONVENTIONS.md`` the rule reads the traces before this
step's spikes are added: ``on_pre`` updates ``w`` before ``tx += 1``; ``on_post`` runs after ``on_pre`` in Brian2,
so it reads ``tx - spre`` (the pre trace before a same-step pre spike was added) and updates ``w`` before ``ty += 1``.
Traces are event-driven unless a continuous term reads them (then clock-driven, integrated exactly); the weight
is ``w``; the reward ``r`` and its baseline ``rbar`` are shared variables the user sets (``S.r = ...``).
Every-step terms are computed before the pathways; when spike-triggered terms read ``w`` or ``elig`` their
increments are stashed and applied after the pathways, so every part reads the state of the start of the step.
The one difference from plasticity-search: in a step where both neurons spike, the post-spike terms see the
``w``/``elig`` update of the pre-spike terms (second order in the learning rate for ``w``).

Generating the file needs no brian2; running it needs ``brian2`` (``numpy`` code generation works without a
compiler: ``prefs.codegen.target = "numpy"``). Rate rules and variables a synapse cannot see (``e``, ``psi``,
``v``, ...) are a RuleError.
"""
from __future__ import annotations

from typing import ClassVar

import sympy as sp

from ..rules.formula import symbol
from ..rules.program import RuleError
from ..rules.resolve import ResolvedRule
from .codegen import (POST_TRACES, PRE_TRACES, TRACE_TAUS, EquationPrinter, check_printer, check_synapse_rule,
                      float_text, formula_text, rule_form, safe_name, spike_split, synapse_defaults, trace_taus,
                      used_traces, weight_bounds)


@check_printer
class Brian2Printer(EquationPrinter):
    """Brian2 code strings: its default functions (exp, log, tanh, abs, sign, sqrt, clip, int) only."""

    functions: ClassVar[dict[str, str]] = {**EquationPrinter.functions, "sign": "sign", "sqrt": "sqrt"}

    def op_step(self, a):
        return f"int({self._print(a)} > 0)"

    def op_max(self, *args):
        return self.fold("clip({}, {}, inf)", *args)

    def op_min(self, *args):
        return self.fold("clip({}, -inf, {})", *args)


def _update_lines(dw: sp.Expr, de: sp.Expr, printer: Brian2Printer) -> list[str]:
    """Statements applying one part of the rule: both increments read the state before either is applied."""
    lines = []
    if dw != 0 and de != 0:
        lines += [f"dw_ = {printer.print(dw)}", f"delig_ = {printer.print(de)}",
                  "w = clip(w + lr*dw_, w_min, w_max)", "elig += delig_"]
    elif dw != 0:
        lines.append(f"w = clip(w + lr*({printer.print(dw)}), w_min, w_max)")
    elif de != 0:
        lines.append(f"elig += {printer.print(de)}")
    return lines


def brian2_parts(rule: ResolvedRule) -> dict:
    """The Brian2 model, on_pre, on_post and per-step code, and the keyword defaults (for tests and the file)."""
    f = rule_form(rule)
    check_synapse_rule(rule, f, "brian2")
    split = spike_split(f)
    (f0, f1, f2, f3), (g0, g1, g2, g3) = split.f, split.g
    printer = Brian2Printer()
    traces = used_traces(f)
    continuous = {s.name for e in (f0, g0) for s in e.free_symbols}
    clock = {t for t in traces if t in continuous or (t == "elig" and g0 != 0)}

    post_reads = {s.name for e in (f2, f3, g2, g3) for s in e.free_symbols}
    flag = any(e != 0 for e in (f3, g3)) or bool(post_reads & set(PRE_TRACES))
    spre = sp.Symbol("spre", real=True)
    # the pre traces before a same-step pre spike was added (printed as they read, an atom for sympy)
    shift = {symbol(t): sp.Symbol(f"({t} - spre)", real=True) for t in PRE_TRACES} if flag else {}

    model = ["w : 1"]
    for t in traces:
        tau = TRACE_TAUS[t][0]
        model.append(f"d{t}/dt = -{t}/{tau} : 1 ({'clock-driven' if t in clock else 'event-driven'})")
    for g in ("r", "rbar"):
        if g in f.variables:
            model.append(f"{g} : 1 (shared)")
    if flag:
        model.append("spre : 1")

    on_pre = _update_lines(f1, g1, printer)
    on_pre += [f"{t} += 1" for t in traces if t in PRE_TRACES]
    if flag:
        on_pre.append("spre = 1")
    on_post = _update_lines((f2 + spre * f3).xreplace(shift), (g2 + spre * g3).xreplace(shift), printer)
    on_post += [f"{t} += 1" for t in traces if t in POST_TRACES]
    # terms with neither spike: computed before the pathways (after the decay); if spike-triggered terms read w
    # or elig, the increments are stashed and applied after the pathways, so that those read the state before
    # this step's update, as in plasticity-search
    spike_reads = {s.name for e in (f1, f2, f3, g1, g2, g3) for s in e.free_symbols}
    late = (f0 != 0 or g0 != 0) and bool(spike_reads & {"w", "elig"})
    if late:
        every_step = ([f"dw_step = {printer.print(f0)}"] if f0 != 0 else []) + \
                     ([f"delig_step = {printer.print(g0)}"] if g0 != 0 else [])
        every_step_apply = (["w = clip(w + lr*dw_step, w_min, w_max)"] if f0 != 0 else []) + \
                           (["elig += delig_step"] if g0 != 0 else [])
        model += (["dw_step : 1"] if f0 != 0 else []) + (["delig_step : 1"] if g0 != 0 else [])
    else:
        every_step, every_step_apply = _update_lines(f0, g0, printer), []

    kw = synapse_defaults(rule, f)
    kw.update(trace_taus(rule, traces))
    bounds = weight_bounds(rule)
    kw["w_min"], kw["w_max"] = bounds if bounds else (float("-inf"), float("inf"))
    return {"form": f, "split": split, "model": model, "on_pre": on_pre, "on_post": on_post,
            "every_step": every_step, "every_step_apply": every_step_apply, "flag": flag, "kwargs": kw,
            "clock_driven": sorted(clock)}


def _block(lines: list[str]) -> str:
    text = "\n".join(lines)
    if '"' in text or "\\" in text:  # pragma: no cover - our printers never emit these
        raise RuleError("internal error: unexpected character in generated Brian2 code")
    return '"""\n' + text + '\n"""' if lines else '""'


def _kw_text(v: float) -> str:
    if v == float("inf"):
        return 'float("inf")'
    if v == float("-inf"):
        return '-float("inf")'
    return float_text(v)


def to_brian2_source(rule: ResolvedRule) -> str:
    p = brian2_parts(rule)
    f = p["form"]
    kw = p["kwargs"]
    name = safe_name(rule)
    title = f"the plasticity rule {name}" if name else "a plasticity rule"
    taus = [k for k in kw if k.startswith("tau_")]
    sig = ", ".join(f"{k}={_kw_text(v)}" for k, v in kw.items())
    ns = ", ".join(f'"{k}": {k} * ms' if k in taus else f'"{k}": {k}' for k in kw)
    globals_used = [g for g in ("r", "rbar") if g in f.variables]
    roles = "\n".join(f"        {c}: {role} (default {float_text(v)})" for c, role, v in zip(f.consts, f.roles, f.values))
    lines = [
        f'"""Brian2 synapses for {title}, exported by plasticity-search.',
        "",
        f"    {formula_text(rule)}",
        "",
        "make_synapses(source, target, ...) returns brian2.Synapses with the weight variable w. Semantics as in",
        "plasticity-search (docs/SPIKING_CONVENTIONS.md): all-to-all traces tx (tau_plus), ty (tau_minus),",
        "tx2 (tau_x), ty2 (tau_y) with increment 1; on_pre runs the terms with the pre spike sx, on_post the terms",
        "with the post spike sy, both reading the traces before this step's spikes are added (spre flags a pre",
        "spike in the same step); terms with neither spike run once per step (run_regularly, dt_rule) after",
        "the traces decay. All parts read w and elig before this step's updates, except that in a step where",
        "both neurons spike, the post-spike terms see the update of the pre-spike terms.",
        "w += lr * dw, clipped to [w_min, w_max].",
        *(["The reward r and its baseline rbar are shared variables: set S.r, S.rbar during the run."]
          if globals_used else []),
        "Without a C++ compiler use numpy code generation: brian2.prefs.codegen.target = 'numpy'.",
        '"""',
        "from brian2 import Synapses, ms",
        "",
        f"MODEL = {_block(p['model'])}",
        f"ON_PRE = {_block(p['on_pre'])}",
        f"ON_POST = {_block(p['on_post'])}",
        f"EVERY_STEP = {_block(p['every_step'])}",
        f"EVERY_STEP_APPLY = {_block(p['every_step_apply'])}",
        f"SAME_STEP_FLAG = {p['flag']!r}",
        "",
        "",
        f"def make_synapses(source, target, *, {sig}, dt_rule=None, connect=None, w=None, **synapses_kwargs):",
        '    """brian2.Synapses from source to target with this plasticity rule.',
        "",
        "    Constants (the rule's parameter vector):",
        roles,
        "    lr: learning rate; tau_*: trace time constants in ms; w_min, w_max: weight bounds;",
        "    dt_rule: interval in ms of the every-step terms (default: every step of the Synapses' clock);",
        "    connect: if given, S.connect(**connect) for a dict, S.connect() for True, S.connect(condition=...) for",
        "    a string; w: initial weight, set after connecting. Other keywords go to brian2.Synapses.",
        '    """',
        f"    namespace = {{{ns}}}",
        "    S = Synapses(source, target, model=MODEL, on_pre=ON_PRE or None, on_post=ON_POST or None,",
        '                 namespace=namespace, method="exact", **synapses_kwargs)',
        "    if EVERY_STEP:",
        '        S.run_regularly(EVERY_STEP, dt=None if dt_rule is None else dt_rule * ms, when="synapses", order=-2)',
        "    if EVERY_STEP_APPLY:  # after on_pre (order -1) and on_post (order 1)",
        '        S.run_regularly(EVERY_STEP_APPLY, dt=None if dt_rule is None else dt_rule * ms, when="synapses",',
        "                        order=2)",
        "    if SAME_STEP_FLAG:",
        '        S.run_regularly("spre = 0", when="end")',
        "    if connect is True:",
        "        S.connect()",
        "    elif isinstance(connect, dict):",
        "        S.connect(**connect)",
        "    elif connect is not None:",
        "        S.connect(condition=connect)",
        "    if w is not None:",
        "        S.w = w",
        "    return S",
        "",
        "",
        'if __name__ == "__main__":  # demo: one pre and one post spike per synapse, offsets -50..50 ms',
        "    import numpy as np",
        "    from brian2 import Network, SpikeGeneratorGroup, prefs",
        "",
        '    prefs.codegen.target = "numpy"',
        "    dt = 0.1",
        "    offsets = np.arange(-50, 51, 10)",
        "    n = len(offsets)",
        "    k_pre = np.full(n, 600)",
        "    k_post = k_pre + np.round(offsets / dt).astype(int)",
        "    pre = SpikeGeneratorGroup(n, np.arange(n), k_pre * dt * ms, dt=dt * ms)",
        "    post = SpikeGeneratorGroup(n, np.arange(n), k_post * dt * ms, dt=dt * ms)",
        '    S = make_synapses(pre, post, connect={"j": "i"}, w=0.5, dt=dt * ms)',
        "    Network(pre, post, S).run(1200 * dt * ms)",
        "    for o, dw in zip(offsets, np.asarray(S.w) - 0.5):",
        '        print(f"t_post - t_pre = {o:5.1f} ms   dw = {dw:+.6g}")',
    ]
    return "\n".join(lines) + "\n"


__all__ = ["brian2_parts", "to_brian2_source"]
