"""The rule language: typed separable programs over local quantities, their op table, formulas and registry."""
from .fec import fec_hashes, probe_outputs
from .formula import (compile_formula, expr_latex, expr_text, from_sympy, parse_formula, simplify_expr, to_latex,
                      to_sympy, to_sympy_raw, to_text)
from .mutation import DEFAULT_MUTATION_PROBS, MUTATIONS, mutate, random_population, random_program
from .ops import OP_BY_NAME, OPS, SYN_BY_NAME, SYN_FACTORS
from .layout import pad
from .program import (TARGET_ELIG, TARGET_W, Program, RuleError, Space, complexity, dce, index, liveness, stack,
                      unstack)
from .known import RATE_SPACE, RULES, SPACES, SPIKING_SPACE, KnownRule, family_program, get, with_coefficients
from .variables import VARIABLES, Variable

__all__ = [
    "Program", "Space", "RuleError", "TARGET_W", "TARGET_ELIG", "OPS", "OP_BY_NAME", "SYN_FACTORS", "SYN_BY_NAME",
    "VARIABLES", "Variable", "compile_formula", "parse_formula", "from_sympy", "to_sympy", "to_sympy_raw", "to_text",
    "to_latex", "expr_text", "expr_latex", "simplify_expr", "random_program", "random_population", "mutate",
    "MUTATIONS", "DEFAULT_MUTATION_PROBS", "fec_hashes", "probe_outputs", "complexity", "dce", "liveness", "pad",
    "stack", "unstack", "index", "RULES", "KnownRule", "get", "family_program", "with_coefficients", "RATE_SPACE",
    "SPIKING_SPACE", "SPACES",
]
