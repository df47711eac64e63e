"""Known plasticity rules, written in the rule language (formulas from ../shared/docs/RULES.md).

Each entry carries its formula (with named parameters), the parameter defaults, the network model it is meant for
(``rate`` or ``spiking``), simulation defaults (learning rate, time constants, weight bounds), a reference and the
biological-plausibility criteria it meets (C1 forward and backward weights differ, C2 errors represented locally,
C3 no separate phases, C4 spiking neurons, C5 unsigned errors; after Lv et al. 2024).

Rule *families* (the Shervani-Tabar term pool, Confavreux's polynomial basis) are rules whose parameters are the
coefficients of a fixed pool of terms: ``family_program`` gives the fixed structure plus the linear map from the
parameter vector to the term coefficients, which the evosax and optax strategies tune.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .program import Program, RuleError, Space

# sympy (the formula module) is imported where a formula is parsed or compiled, not here: the listing of
# ``plasticity-search rules`` reads the table and :data:`_LISTED` only, and starts without sympy or JAX.

RATE_SPACE = Space(name="rate", post_vars=("y", "a", "e", "ybar", "theta"), pre_vars=("x", "xbar", "e_pre"),
                   syn=("1", "w", "w2", "sign_w"))
SPIKING_SPACE = Space(name="spiking", post_vars=("sy", "ty", "ty2", "v", "psi", "e"), pre_vars=("sx", "tx", "tx2"),
                      global_vars=("r", "rbar"), syn=("1", "w", "w2", "sign_w", "elig", "w_elig"), elig=True)
SPACES = {"rate": RATE_SPACE, "spiking": SPIKING_SPACE}


@dataclass(frozen=True)
class KnownRule:
    name: str
    formula: str                       # may use the parameter names below
    model: str                         # 'rate' | 'spiking'
    reference: str
    description: str
    params: dict = field(default_factory=dict)     # parameter name -> default value (inside the formula)
    defaults: dict = field(default_factory=dict)   # simulation defaults: lr, taus, w_bounds, ...
    criteria: tuple[str, ...] = ()
    basis: tuple[str, ...] = ()        # for families: one formula per parameter, rule = sum_i params_i * basis_i

    @property
    def space(self) -> Space:
        return SPACES[self.model]

    def resolved_formula(self) -> str:
        """The formula with the parameter defaults substituted (numbers only)."""
        listed = self._listed()
        return listed[0] if listed is not None else self.derived_formula()

    def compile(self, params: dict | None = None) -> tuple[Program, Space]:
        from .formula import compile_formula
        p = dict(self.params)
        p.update(params or {})
        return compile_formula(self.formula, self.space, p)

    @property
    def variables(self) -> list[str]:
        """The local quantities the rule's formula reads (every parameter taken as nonzero: a family lists the
        variables of all its terms, also those its defaults switch off)."""
        listed = self._listed()
        return list(listed[1]) if listed is not None else self.derived_variables()

    # --- the same two, derived from the formula with sympy ----------------------------------------------------
    def derived_formula(self) -> str:
        """:meth:`resolved_formula` computed from the formula (sympy)."""
        from .formula import expr_text, parse_formula
        dw, de = parse_formula(self.formula, self.space, self.params)
        return expr_text((dw, de) if de != 0 else dw)

    def derived_variables(self) -> list[str]:
        """:attr:`variables` computed from the formula (sympy)."""
        from .formula import parse_formula
        dw, de = parse_formula(self.formula, self.space, {k: 1.0 for k in self.params})
        syms = (dw.free_symbols | (de.free_symbols if de != 0 else set()))
        return sorted(s.name for s in syms)

    def _listed(self) -> tuple[str, tuple[str, ...]] | None:
        """The stored (resolved formula, variables) of a rule of :data:`RULES` (equal to the registered one), else
        None."""
        entry = _LISTED.get(self.name)
        return entry if entry is not None and RULES.get(self.name) == self else None


def _volterra_basis() -> tuple[tuple[str, ...], tuple[str, ...]]:
    names, basis = [], []
    for a, b, c in itertools.product(range(3), repeat=3):
        names.append(f"A_{a}{b}{c}")
        parts = [f"x**{a}" if a else "", f"y**{b}" if b else "", f"w**{c}" if c else ""]
        basis.append("*".join(p for p in parts if p) or "1")
    return tuple(names), tuple(basis)


_VOLT_NAMES, _VOLT_BASIS = _volterra_basis()

_RULES = [
    # ---------------- rate: error-driven ------------------------------------------------------------------------
    KnownRule("fa", "-e*x", "rate", "Lillicrap et al. 2016, Nat. Commun. 7:13276",
              "Feedback-alignment / delta update -e x, given the error e that arrives through the feedback pathway "
              "(bp, fa, dfa and sign are pathways, chosen with --feedback)",
              defaults={"lr": 0.05}, criteria=("C1", "C2")),
    KnownRule("shervani_tabar", "-th0*e*x - th1*e*e_pre + th2*(y*x - y**2*w)", "rate",
              "Shervani-Tabar & Rosenbaum 2023, Nat. Commun. 14:1854",
              "Meta-learned pool: pseudo-gradient (FA) term, error-Hebbian term, and (local) Oja term; defaults "
              "start from plain FA",
              params={"th0": 1.0, "th1": 0.0, "th2": 0.0}, defaults={"lr": 0.05}, criteria=("C1", "C2"),
              basis=("-e*x", "-e*e_pre", "y*x - y**2*w")),
    KnownRule("kolen_pollack", "-e*x - lam*w", "rate", "Kolen & Pollack 1994; Akrout et al. 2019, NeurIPS 32",
              "FA update with weight decay; used for both W and (as feedback_rule) the feedback weights B, which "
              "then align with W^T", params={"lam": 0.02}, defaults={"lr": 0.05}, criteria=("C1", "C2")),
    # ---------------- rate: unsupervised ------------------------------------------------------------------------
    KnownRule("hebb", "y*x", "rate", "Hebb 1949, The Organization of Behavior", "Plain Hebbian rule",
              defaults={"lr": 0.005}, criteria=("C1", "C2", "C3")),
    KnownRule("anti_hebb", "-y*x", "rate", "Foldiak 1990, Biol. Cybern. 64:165", "Anti-Hebbian rule",
              defaults={"lr": 0.005}, criteria=("C1", "C2", "C3")),
    KnownRule("oja", "y*(x - y*w)", "rate", "Oja 1982, J. Math. Biol. 15:267",
              "Oja's rule: a single linear neuron converges to the first principal component with unit norm",
              defaults={"lr": 0.005}, criteria=("C1", "C2", "C3")),
    KnownRule("covariance", "(y - ybar)*(x - xbar)", "rate", "Sejnowski 1977, J. Math. Biol. 4:303",
              "Covariance rule with running means of pre and post activity (network state)",
              defaults={"lr": 0.005, "tau_mean": 100.0}, criteria=("C1", "C2", "C3")),
    KnownRule("bcm", "x*y*(y - theta)", "rate", "Bienenstock, Cooper & Munro 1982, J. Neurosci. 2:32",
              "BCM rule; theta is the sliding threshold, a running mean of y^2 (y0 = 1) kept by the network",
              defaults={"lr": 0.005, "tau_theta": 100.0}, criteria=("C1", "C2", "C3")),
    KnownRule("volterra", " + ".join(f"{n}*{b}" for n, b in zip(_VOLT_NAMES, _VOLT_BASIS)), "rate",
              "Confavreux et al. 2020, NeurIPS 33",
              "Polynomial (Volterra) basis sum A_abc x^a y^b w^c, a,b,c in {0,1,2}; defaults give Oja "
              "(A_110 = 1, A_021 = -1)",
              params={n: (1.0 if n == "A_110" else -1.0 if n == "A_021" else 0.0) for n in _VOLT_NAMES},
              defaults={"lr": 0.005}, criteria=("C1", "C2", "C3"), basis=_VOLT_BASIS),
    # ---------------- spiking ----------------------------------------------------------------------------------
    KnownRule("stdp_add", "A_plus*sy*tx - A_minus*ty*sx", "spiking", "Song, Miller & Abbott 2000, Nat. Neurosci. 3:919",
              "Additive pair STDP with nearest-neighbour-free (all-to-all) traces; weights clipped to [0, w_max]",
              params={"A_plus": 0.01, "A_minus": 0.0105},
              defaults={"tau_plus": 20.0, "tau_minus": 20.0, "w_bounds": [0.0, 1.0], "lr": 1.0},
              criteria=("C1", "C2", "C3", "C4")),
    KnownRule("stdp_mult", "lam*(sy*tx*(1 - w) - alpha*ty*sx*w)", "spiking",
              "van Rossum, Bi & Turrigiano 2000; Guetig et al. 2003 (NEST stdp_synapse, mu = 1, w_max = 1)",
              "Multiplicative STDP: LTP scaled by (1 - w/w_max), LTD by w/w_max",
              params={"lam": 0.01, "alpha": 1.0},
              defaults={"tau_plus": 20.0, "tau_minus": 20.0, "w_bounds": [0.0, 1.0], "lr": 1.0},
              criteria=("C1", "C2", "C3", "C4")),
    KnownRule("stdp_triplet", "sy*tx*(A2p + A3p*ty2) - ty*sx*(A2m + A3m*tx2)", "spiking",
              "Pfister & Gerstner 2006, J. Neurosci. 26:9673 (visual cortex, all-to-all)",
              "Triplet STDP: slow traces ty2 (tau_y) and tx2 (tau_x) are read before this step's spikes",
              params={"A2p": 5e-10, "A3p": 6.2e-3, "A2m": 7e-3, "A3m": 2.3e-4},
              defaults={"tau_plus": 16.8, "tau_minus": 33.7, "tau_x": 101.0, "tau_y": 125.0, "lr": 1.0},
              criteria=("C1", "C2", "C3", "C4")),
    KnownRule("r_stdp", "dw = (r - rbar)*elig; delig = A_plus*sy*tx - A_minus*ty*sx", "spiking",
              "Izhikevich 2007, Cereb. Cortex 17:2443",
              "Reward-modulated STDP: an eligibility trace collects STDP and the reward minus its baseline gates it",
              params={"A_plus": 1.0, "A_minus": 1.5},
              defaults={"tau_elig": 1000.0, "tau_plus": 20.0, "tau_minus": 20.0, "lr": 0.01},
              criteria=("C1", "C2", "C3", "C4", "C5")),
    KnownRule("eprop", "-e*psi*tx", "spiking", "Bellec et al. 2020, Nat. Commun. 11:3625 (random e-prop)",
              "Random e-prop: learning signal e = B (y - y*) through fixed random feedback, times the eligibility "
              "psi_j * (filtered pre spikes)", defaults={"lr": 0.01, "tau_plus": 20.0},
              criteria=("C1", "C2", "C3", "C4")),
    KnownRule("bp_stdp", "-e*tx", "spiking", "Tavanaei & Maida 2019, Neurocomputing 330:39",
              "BP-STDP: dw_ij = mu xi_i sum_{t-eps..t} s_j, the error xi_i of the post neuron (target minus "
              "output spiking at the output; at hidden neurons the errors of the layer above sent back through the "
              "weights, here through the run's feedback pathway: --feedback bp is theirs, fa/dfa random) times the "
              "presynaptic spike count over a window (here the pre trace tx, an exponential window of tau_plus); "
              "e = output - target, hence the minus. Differs from the paper: an exponential instead of a boxcar "
              "window, and hidden errors are not gated by 'the hidden neuron spiked in the window' (one program "
              "serves every layer; that gate would silence readouts that never spike)",
              defaults={"lr": 0.01, "tau_plus": 20.0},
              criteria=("C1", "C2", "C4")),
    KnownRule("urbanczik_senn", "(sy - phi_max*sigmoid(beta*(v - 1)))*tx", "spiking",
              "Urbanczik & Senn 2014, Neuron 81:521",
              "Dendritic prediction of somatic spiking: (S - phi(V)) PSP_j, phi(V) = phi_max sigmoid(beta (V - 1)) "
              "the predicted spike probability per step (membrane in units of the threshold, dt = 1 ms: 50 Hz at "
              "threshold)", params={"phi_max": 0.1, "beta": 5.0},
              defaults={"lr": 0.01, "tau_plus": 20.0}, criteria=("C1", "C2", "C3", "C4")),
    KnownRule("vogels", "eta*(sx*(ty - alpha) + sy*tx)", "spiking", "Vogels et al. 2011, Science 334:1569",
              "Inhibitory STDP: on pre eta (y_post - alpha), alpha = 2 rho0 tau_stdp; on post eta x_pre",
              params={"eta": 0.01, "alpha": 0.12}, defaults={"tau_plus": 20.0, "tau_minus": 20.0, "lr": 1.0},
              criteria=("C1", "C2", "C3", "C4")),
]

RULES: dict[str, KnownRule] = {r.name: r for r in _RULES}

# Each known rule's resolved formula and variables, as :meth:`KnownRule.derived_formula` and
# :meth:`KnownRule.derived_variables` compute them with sympy: stored so that ``plasticity-search rules`` lists them
# without loading sympy. tests/test_cli_ux.py checks that every entry equals the derived values (its failure prints
# the line to paste); a rule missing here is derived (slower, same result).
_LISTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "fa": ("-e*x", ("e", "x")),
    "shervani_tabar": ("-e*x", ("e", "e_pre", "w", "x", "y")),
    "kolen_pollack": ("-e*x - 0.02*w", ("e", "w", "x")),
    "hebb": ("x*y", ("x", "y")),
    "anti_hebb": ("-x*y", ("x", "y")),
    "oja": ("y*(-w*y + x)", ("w", "x", "y")),
    "covariance": ("(x - xbar)*(y - ybar)", ("x", "xbar", "y", "ybar")),
    "bcm": ("x*y*(-theta + y)", ("theta", "x", "y")),
    "volterra": ("-w*y**2 + x*y", ("w", "x", "y")),
    "stdp_add": ("-0.0105*sx*ty + 0.01*sy*tx", ("sx", "sy", "tx", "ty")),
    "stdp_mult": ("-0.01*sx*ty*w + 0.01*sy*tx*(1 - w)", ("sx", "sy", "tx", "ty", "w")),
    "stdp_triplet": ("-sx*ty*(0.00023*tx2 + 0.007) + sy*tx*(0.0062*ty2 + 5e-10)",
                     ("sx", "sy", "tx", "tx2", "ty", "ty2")),
    "r_stdp": ("dw = elig*(r - rbar); delig = -1.5*sx*ty + sy*tx", ("elig", "r", "rbar", "sx", "sy", "tx", "ty")),
    "eprop": ("-e*psi*tx", ("e", "psi", "tx")),
    "bp_stdp": ("-e*tx", ("e", "tx")),
    "urbanczik_senn": ("tx*(sy - 0.1/(exp(5 - 5*v) + 1))", ("sy", "tx", "v")),
    "vogels": ("0.01*sx*(ty - 0.12) + 0.01*sy*tx", ("sx", "sy", "tx", "ty")),
}


def get(name: str) -> KnownRule:
    if name not in RULES:
        raise RuleError(f"unknown rule '{name}' (known: {', '.join(RULES)})")
    return RULES[name]


def family_program(rule: KnownRule) -> tuple[Program, Space, np.ndarray, np.ndarray]:
    """Fixed structure of a rule family: (program, space, M, theta0) with term_coef = M @ theta.

    Each basis formula is compiled with coefficient 1 and its terms are placed in consecutive term slots.
    """
    if not rule.basis:
        raise RuleError(f"rule '{rule.name}' is not a family (it has no term pool)")
    # compile every basis formula into one program: a shared compiler reuses registers across the pool
    from .formula import _merge, _separate, _SideCompiler, assemble, parse_formula, symbol, TARGET_W
    import sympy as sp
    space = rule.space
    post, pre = _SideCompiler(space, "post"), _SideCompiler(space, "pre")
    rows, col = [], []
    for i, b in enumerate(rule.basis):
        dw, _ = parse_formula(b, space)
        for t in _merge(_separate(dw, space)):
            s_name = next((s.name for s in space.syn_objs
                           if sp.simplify(s.sympy(symbol("w"), symbol("elig")) - t.S) == 0), None)
            if s_name is None:
                raise RuleError(f"basis term '{b}' needs a synapse factor outside the space's menu")
            rows.append((t.coef, post.compile(t.P), pre.compile(t.Q), space.syn.index(s_name), TARGET_W))
            col.append(i)
    space = space.resized(n_post=len(post.instr), n_pre=len(pre.instr), n_terms=len(rows))
    M = np.zeros((len(rows), len(rule.basis)), np.float32)
    for k, i in enumerate(col):
        M[k, i] = rows[k][0]
    theta0 = np.array([rule.params[n] for n in rule.params], np.float32)
    return assemble(space, post, pre, rows), space, M, theta0


def with_coefficients(prog: Program, M: np.ndarray, theta) -> Program:
    """The family program with term_coef = M @ theta (works on traced theta)."""
    import jax.numpy as jnp
    return prog._replace(term_coef=jnp.asarray(M) @ jnp.asarray(theta))
