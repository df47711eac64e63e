"""Multi-layer rate networks whose every layer learns by a local rule, with a choice of feedback pathway.

gymnax-style: static configuration in :class:`NetworkConfig`, pure functions over explicit state in :class:`RateNet`
(``init(key) -> state``, ``forward(state, x)``, ``errors(state, fwd, target)``).

* Biases are weights from an always-on presynaptic neuron (pre activity 1), so the same local rule updates them.
* The error at the output is ``e = p - y*`` (softmax + cross-entropy) or ``e = a - y*`` (linear + squared error);
  objective 'pca' has no error (``e = 0``): unsupervised rules only.
* Hidden errors ``delta_l = f'(a_l) * (B_l delta_{l+1})`` reach each neuron through the feedback pathway:
  ``bp``   B_l = W_{l+1}^T (transposed forward weights: the non-local reference),
  ``fa``   B_l fixed random (Lillicrap et al. 2016),
  ``dfa``  delta_l = f'(a_l) * (D_l e) with D_l fixed random from the output (Noekland 2016),
  ``sign`` B_l = sign(W_{l+1})^T * mean|W_{l+1}| (Liao et al. 2016; scaled so deep nets stay stable).
* Per-layer rules: ``readout_rule`` (e.g. ``'fa'``) trains the readout layer with a fixed rule while the searched
  (or evaluated) rule trains the hidden layers; ``layer_rules`` gives one entry per layer (a fixed rule, or None for
  the searched rule). Both are compiled by the rule language in the inner loop (:mod:`.online`).
* Feedback matrices are drawn from the seed and never change, unless ``feedback_rule`` names a second rule for B
  (e.g. Kolen-Pollack ``-e*x - lam*w``): it is written in the same rule language and evaluated on the local
  quantities of the forward layer that B mirrors (post = the neuron sending the error, pre = the neuron receiving
  it, ``w`` = the feedback weight), and its update is applied transposed to B.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple

import jax
import jax.numpy as jnp


def _softplus(beta):
    return lambda a: jax.nn.softplus(beta * a) / beta


def _act(name: str, beta: float):
    if name == "tanh":
        return jnp.tanh, lambda a, h: 1.0 - h * h
    if name == "relu":
        return jax.nn.relu, lambda a, h: (a > 0).astype(a.dtype)
    if name == "sigmoid":
        return jax.nn.sigmoid, lambda a, h: h * (1.0 - h)
    if name == "softplus":
        return _softplus(beta), lambda a, h: jax.nn.sigmoid(beta * a)
    if name == "linear":
        return (lambda a: a), (lambda a, h: jnp.ones_like(a))
    raise ValueError(f"unknown activation '{name}' (known: {', '.join(ACTIVATIONS)})")


ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus", "linear")
FEEDBACKS = ("bp", "fa", "dfa", "sign")
INITS = ("xavier", "he", "lecun", "normal", "zeros")
OUTPUTS = ("auto", "softmax_xent", "linear_mse", "linear")


class NetworkError(ValueError):
    """Malformed network specification (one line)."""


@dataclass(frozen=True)
class NetworkConfig:
    """Static configuration of a rate network (hashable)."""

    hidden: tuple[int, ...] = (100,)
    activation: str = "tanh"
    softplus_beta: float = 10.0
    bias: bool = True
    init: str = "xavier"
    init_scale: float = 1.0
    output: str = "auto"          # auto: softmax_xent (classification), linear_mse (regression), linear (pca)
    feedback: str = "fa"
    lr: float = 0.05
    batch_size: int = 1
    tau_mean: float = 100.0       # running means ybar, xbar (steps)
    tau_theta: float = 100.0      # BCM threshold theta = running mean of y^2 (steps)
    feedback_rule: str | None = None   # plastic feedback: a rule (name or formula) for B, e.g. 'kolen_pollack'
    feedback_lr: float | None = None   # its learning rate (default: lr)
    readout_rule: str | None = None    # a fixed rule (name or formula) for the readout layer, e.g. 'fa'; the searched
                                       # (or evaluated) rule then trains the hidden layers only
    readout_lr: float | None = None    # the readout rule's learning rate (default: lr)
    layer_rules: tuple[str | None, ...] | None = None   # one entry per layer from the input (hidden..., readout):
                                       # a fixed rule, or None for the searched rule (at least one None)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise NetworkError(f"unknown activation '{self.activation}' (known: {', '.join(ACTIVATIONS)})")
        if self.feedback not in FEEDBACKS:
            raise NetworkError(f"unknown feedback '{self.feedback}' (known: {', '.join(FEEDBACKS)})")
        if self.init not in INITS:
            raise NetworkError(f"unknown init '{self.init}' (known: {', '.join(INITS)})")
        if self.output not in OUTPUTS:
            raise NetworkError(f"unknown output '{self.output}' (known: {', '.join(OUTPUTS)})")
        if any(int(h) < 1 for h in self.hidden):
            raise NetworkError(f"hidden layer sizes must be >= 1, got {self.hidden}")
        if self.feedback_rule is not None and self.feedback != "fa":
            raise NetworkError(f"a plastic feedback rule needs feedback 'fa' (got '{self.feedback}')")
        if self.batch_size < 1:
            raise NetworkError(f"batch_size must be >= 1, got {self.batch_size}")
        self._check_layer_rules()

    def _check_layer_rules(self) -> None:
        for name in ("readout_rule", "feedback_rule"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise NetworkError(f"{name} must be a rule name or formula, got {v!r}")
        if self.readout_lr is not None and self.readout_rule is None:
            raise NetworkError("readout_lr needs readout_rule (it is the readout rule's learning rate)")
        if self.readout_rule is not None:
            if self.layer_rules is not None:
                raise NetworkError("set readout_rule or layer_rules, not both")
            if not self.hidden:
                raise NetworkError("readout_rule needs at least one hidden layer (the other rule trains the hidden "
                                   "layers)")
        if isinstance(self.layer_rules, list):
            object.__setattr__(self, "layer_rules", tuple(self.layer_rules))    # hashable (a jit static argument)
        if self.layer_rules is not None:
            n = len(self.hidden) + 1
            if not isinstance(self.layer_rules, tuple) or len(self.layer_rules) != n:
                got = len(self.layer_rules) if isinstance(self.layer_rules, tuple) else repr(self.layer_rules)
                raise NetworkError(f"layer_rules needs one entry per layer ({n}: {len(self.hidden)} hidden and the "
                                   f"readout), got {got}")
            for i, v in enumerate(self.layer_rules):
                if v is not None and (not isinstance(v, str) or not v.strip()):
                    raise NetworkError(f"layer_rules[{i}] must be a rule name or formula, or null for the searched "
                                       f"rule, got {v!r}")
            if all(v is not None for v in self.layer_rules):
                raise NetworkError("layer_rules gives every layer a fixed rule: leave at least one entry null (the "
                                   "searched rule)")

    def layer_rule_specs(self) -> tuple:
        """Per layer from the input (hidden..., readout): ``(rule, lr)`` of a fixed rule, or None where the searched
        (or evaluated) rule applies. All None unless ``readout_rule`` or ``layer_rules`` is set."""
        n = len(self.hidden) + 1
        if self.layer_rules is not None:
            return tuple(None if r is None else (r.strip(), self.lr) for r in self.layer_rules)
        if self.readout_rule is not None:
            lr = self.readout_lr if self.readout_lr is not None else self.lr
            return (None,) * (n - 1) + ((self.readout_rule.strip(), lr),)
        return (None,) * n

    def with_(self, **kw) -> "NetworkConfig":
        return replace(self, **kw)

    def with_feedback(self, feedback: str) -> "NetworkConfig":
        """This network with its errors delivered by ``feedback``. A plastic feedback rule trains FA's matrices B,
        so under another pathway (a run's BP baseline) it is dropped: it was kept, and a supervised run with
        ``feedback_rule`` failed when it came to score BP."""
        if feedback == "fa":
            return replace(self, feedback=feedback)
        return replace(self, feedback=feedback, feedback_rule=None, feedback_lr=None)

    def spec(self, n_in: int, n_out: int) -> str:
        """The layer spec ``64-100-10:tanh`` that :func:`parse_network_spec` reads back."""
        return "-".join(str(n) for n in (n_in, *self.hidden, n_out)) + f":{self.activation}"


def default_network(objective: str) -> NetworkConfig:
    """The network a task gets when none is given: one neuron for PCA (Oja's setting), a linear readout for
    regression (the delta rule's setting), one tanh hidden layer of 100 for classification."""
    if objective == "pca":
        return NetworkConfig(hidden=(), bias=False, init="normal", lr=0.005)
    if objective == "regression":
        return NetworkConfig(hidden=(), lr=0.01)
    return NetworkConfig()


def parse_network_spec(spec: str, n_in: int, n_out: int, base: NetworkConfig | None = None) -> NetworkConfig:
    """``"64-100-10"`` (full sizes, must match the task), ``"100"`` or ``"170-130"`` (hidden sizes only), ``"-"``
    or ``"linear"`` (no hidden layer); an optional ``:activation`` suffix, e.g. ``"64-100-10:relu"``."""
    base = base or NetworkConfig()
    if not isinstance(spec, str) or not spec.strip():
        raise NetworkError("empty network spec")
    body, _, act = spec.strip().partition(":")
    kw = {}
    if act:
        if act not in ACTIVATIONS:
            raise NetworkError(f"unknown activation '{act}' in network spec (known: {', '.join(ACTIVATIONS)})")
        kw["activation"] = act
    if body in ("-", "none", "linear"):
        return replace(base, hidden=(), **kw)
    if not re.fullmatch(r"\d+([-x]\d+)*", body, re.ASCII):
        raise NetworkError(f"malformed network spec '{spec}' (expected sizes like 64-100-10 or 100, "
                           "optionally ':tanh')")
    sizes = [int(s) for s in re.split(r"[-x]", body)]
    if any(s < 1 for s in sizes):
        raise NetworkError(f"layer sizes must be >= 1 in '{spec}'")
    if len(sizes) >= 2 and sizes[0] == n_in and sizes[-1] == n_out:
        hidden = tuple(sizes[1:-1])
    elif len(sizes) >= 3:
        raise NetworkError(f"network spec '{spec}' does not match the task: {n_in} inputs and {n_out} outputs")
    else:
        hidden = tuple(sizes)
    return replace(base, hidden=hidden, **kw)


class NetState(NamedTuple):
    W: tuple            # per layer [n_post, n_pre (+1 bias)]
    B: tuple            # feedback matrices per hidden layer (fa: [n_l, n_{l+1}], dfa: [n_l, n_out]); () for bp/sign
    ybar: jax.Array     # running mean of post activity, all layers concatenated [N_post_total]
    theta: jax.Array    # running mean of y^2 [N_post_total]
    xbar: jax.Array     # running mean of pre activity (incl. bias neuron) [N_pre_total]


class Forward(NamedTuple):
    acts: tuple         # pre activity per layer, incl. the bias neuron: [n_l (+1)] for l = 0..L-1
    pre_acts: tuple     # a per layer (post side) [n_{l+1}]
    posts: tuple        # y per layer (post side) [n_{l+1}]
    out: jax.Array      # network output p (softmax) or a (linear)


@dataclass(frozen=True)
class RateNet:
    """A rate MLP for a given task shape."""

    n_in: int
    n_out: int
    objective: str
    cfg: NetworkConfig

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n_in,) + tuple(self.cfg.hidden) + (self.n_out,)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def output(self) -> str:
        if self.cfg.output != "auto":
            return self.cfg.output
        return {"classification": "softmax_xent", "regression": "linear_mse", "pca": "linear"}[self.objective]

    def post_sizes(self) -> tuple[int, ...]:
        return self.sizes[1:]

    def pre_sizes(self) -> tuple[int, ...]:
        b = 1 if self.cfg.bias else 0
        return tuple(s + b for s in self.sizes[:-1])

    # --- init ---------------------------------------------------------------------------------------------------
    def _draw(self, key, n_out, n_in, scheme):
        s = self.cfg.init_scale
        if scheme == "zeros":
            return jnp.zeros((n_out, n_in))
        if scheme == "xavier":
            lim = s * jnp.sqrt(6.0 / (n_in + n_out))
            return jax.random.uniform(key, (n_out, n_in), minval=-lim, maxval=lim)
        std = {"he": jnp.sqrt(2.0 / n_in), "lecun": jnp.sqrt(1.0 / n_in), "normal": 1.0 / jnp.sqrt(n_in)}[scheme]
        return s * std * jax.random.normal(key, (n_out, n_in))

    def init(self, key) -> NetState:
        kw, kb = jax.random.split(key)
        Ws = []
        for l, k in enumerate(jax.random.split(kw, self.n_layers)):
            W = self._draw(k, self.sizes[l + 1], self.sizes[l], self.cfg.init)
            if self.cfg.bias:
                W = jnp.concatenate([W, jnp.zeros((self.sizes[l + 1], 1))], axis=1)
            Ws.append(W)
        Bs = []
        n_hidden = self.n_layers - 1
        if self.cfg.feedback in ("fa", "dfa") and n_hidden > 0:
            for l, k in enumerate(jax.random.split(kb, n_hidden)):
                src = self.sizes[l + 2] if self.cfg.feedback == "fa" else self.n_out
                lim = jnp.sqrt(6.0 / (self.sizes[l + 1] + src))
                Bs.append(jax.random.uniform(k, (self.sizes[l + 1], src), minval=-lim, maxval=lim))
        n_post, n_pre = sum(self.post_sizes()), sum(self.pre_sizes())
        return NetState(tuple(Ws), tuple(Bs), jnp.zeros(n_post), jnp.zeros(n_post), jnp.zeros(n_pre))

    # --- dynamics -----------------------------------------------------------------------------------------------
    def forward(self, W: tuple, x: jax.Array) -> Forward:
        f, _ = _act(self.cfg.activation, self.cfg.softplus_beta)
        h = x
        acts, pre_acts, posts = [], [], []
        for l in range(self.n_layers):
            inp = jnp.concatenate([h, jnp.ones((1,), h.dtype)]) if self.cfg.bias else h
            a = W[l] @ inp
            last = l == self.n_layers - 1
            if last:
                y = jax.nn.softmax(a) if self.output == "softmax_xent" else a
            else:
                y = f(a)
            acts.append(inp)
            pre_acts.append(a)
            posts.append(y)
            h = y
        return Forward(tuple(acts), tuple(pre_acts), tuple(posts), posts[-1])

    def output_error(self, fwd: Forward, target: jax.Array) -> jax.Array:
        if self.output == "linear" and self.objective == "pca":
            return jnp.zeros_like(fwd.out)
        return fwd.out - target

    def errors(self, state: NetState, fwd: Forward, target: jax.Array) -> tuple:
        """delta per layer (post side), delivered through the configured feedback pathway."""
        _, fprime = _act(self.cfg.activation, self.cfg.softplus_beta)
        e = self.output_error(fwd, target)
        deltas = [None] * self.n_layers
        deltas[-1] = e
        fb = self.cfg.feedback
        for l in range(self.n_layers - 2, -1, -1):
            Wn = state.W[l + 1][:, : self.sizes[l + 1]]  # drop the bias column
            if fb == "bp":
                g = Wn.T @ deltas[l + 1]
            elif fb == "sign":
                # sign-symmetric feedback, scaled to the layer's mean weight magnitude (unscaled +-1 entries
                # blow the error up by ~sqrt(n) per layer in deep nets)
                g = (jnp.sign(Wn).T @ deltas[l + 1]) * jnp.mean(jnp.abs(Wn))
            elif fb == "fa":
                g = state.B[l] @ deltas[l + 1]
            else:  # dfa
                g = state.B[l] @ e
            deltas[l] = fprime(fwd.pre_acts[l], fwd.posts[l]) * g
        return tuple(deltas)

    def loss(self, out: jax.Array, target: jax.Array) -> jax.Array:
        if self.output == "softmax_xent":
            return -jnp.sum(target * jnp.log(jnp.clip(out, 1e-12, 1.0)))
        return 0.5 * jnp.sum((out - target) ** 2)
