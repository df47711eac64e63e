"""The rule language: typed separable programs over local quantities, their op table, formulas and registry.

The names below load with their module on first use (PEP 562): ``from plasticity_search.rules import RULES`` reads
the registry without sympy or JAX (``plasticity-search rules`` starts fast); ``compile_formula`` brings sympy,
``random_population`` JAX.
"""
from __future__ import annotations

import importlib

# submodule -> the names it gives the package
_EXPORTS = {
    "fec": ("fec_hashes", "probe_outputs"),
    "formula": ("compile_formula", "expr_latex", "expr_text", "from_sympy", "parse_formula", "simplify_expr",
                "to_latex", "to_sympy", "to_sympy_raw", "to_text"),
    "mutation": ("DEFAULT_MUTATION_PROBS", "MUTATIONS", "mutate", "random_population", "random_program"),
    "ops": ("OP_BY_NAME", "OPS", "SYN_BY_NAME", "SYN_FACTORS"),
    "layout": ("pad",),
    "program": ("TARGET_ELIG", "TARGET_W", "Program", "RuleError", "Space", "complexity", "dce", "index", "liveness",
                "stack", "unstack"),
    "known": ("RATE_SPACE", "RULES", "SPACES", "SPIKING_SPACE", "KnownRule", "family_program", "get",
              "with_coefficients"),
    "variables": ("VARIABLES", "Variable"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "Program", "Space", "RuleError", "TARGET_W", "TARGET_ELIG", "OPS", "OP_BY_NAME", "SYN_FACTORS", "SYN_BY_NAME",
    "VARIABLES", "Variable", "compile_formula", "parse_formula", "from_sympy", "to_sympy", "to_sympy_raw", "to_text",
    "to_latex", "expr_text", "expr_latex", "simplify_expr", "random_program", "random_population", "mutate",
    "MUTATIONS", "DEFAULT_MUTATION_PROBS", "fec_hashes", "probe_outputs", "complexity", "dce", "liveness", "pad",
    "stack", "unstack", "index", "RULES", "KnownRule", "get", "family_program", "with_coefficients", "RATE_SPACE",
    "SPIKING_SPACE", "SPACES",
]


def __getattr__(name: str):
    if name in _EXPORTS:                                   # rules.formula etc., as after an eager import
        return importlib.import_module(f"{__name__}.{name}")
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF) | set(_EXPORTS))
