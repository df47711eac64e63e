"""The online inner loop: train a rate network with a rule, one sample per update, and score it.

``compiled_population(space, task, cfg)`` returns one jitted function that runs a whole *population of different
rule programs* on a batch of task instances (tasks x seeds)::

    evaluate(pop, data, keys) -> {metric: [P, S]}, curves [P, S, C]

``vmap`` over the population (outer) and the instances (inner), ``lax.scan`` over time; weights and activity never
leave the device between steps, there is one compile per population shape, and a candidate whose weights become
inf/NaN (or whose finite weights give a non-finite output) only spoils its own metrics (they become NaN,
``finite`` = 0; the fitness maps NaN to the worst score).

Rule inputs per step (rate space variables): post side ``y`` (activity), ``a`` (input current), ``e`` (error through
the feedback pathway), ``ybar``/``theta`` (running means of y and y^2); pre side ``x`` (activity; biases are weights
from an always-on neuron with x = 1), ``xbar``, ``e_pre`` (error at the pre neuron, 0 for network inputs); globals
``r = -loss`` of the current sample and ``rbar`` its running mean. All layers are concatenated into one post vector
and one pre vector so each side's program runs once per step for the whole network. With per-layer rules
(``network.readout_rule`` / ``layer_rules``) each fixed rule's program runs the same way, and each layer's update
takes its slice of the P/Q vectors of its own rule (the assignment is static configuration).

Metrics (per objective): classification ``online_accuracy`` (predicted before each update), ``final_accuracy``,
``final_loss``; regression ``online_mse``, ``final_mse``, ``final_loss``; pca ``pc1_alignment`` (|cos(w, PC1)|) and
``weight_norm``; always ``finite``. Curves: online accuracy / mse / alignment in ``curve_points`` windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import jit_options
from .mlp import NetState, NetworkConfig, RateNet
from ..rules.program import Program, RuleError, Space
from ..rules.resolve import resolve_rule
from ..tasks import Task, TaskData
from ..tasks.base import CURVE_POINTS

RATE_VARIABLES = {"post": ("y", "a", "e", "ybar", "theta"), "pre": ("x", "xbar", "e_pre"), "global": ("r", "rbar")}

METRICS = {
    "classification": ("online_accuracy", "final_accuracy", "final_loss", "finite"),
    "regression": ("online_mse", "final_mse", "final_loss", "finite"),
    "pca": ("pc1_alignment", "weight_norm", "finite"),
}
# direction of each metric: +1 higher is better, -1 lower is better
METRIC_SIGN = {"online_accuracy": 1, "final_accuracy": 1, "final_loss": -1, "online_mse": -1, "final_mse": -1,
               "pc1_alignment": 1, "weight_norm": 0, "finite": 1,
               # metrics of the spiking tasks (plasticity_search.tasks.spike_tasks), for searches on them
               "snr": 1, "snr_before": 0, "rate_hz": 0, "detection": 1, "detection_before": 0, "hit_rate": 0,
               "false_alarm_rate": 0, "neg_rmse": 1, "neg_rmse_before": 0, "total_reward": 1,
               "late_accuracy": 1}


@dataclass(frozen=True)
class InnerConfig:
    network: NetworkConfig = field(default_factory=NetworkConfig)
    steps: int | None = None          # None: the task's default
    curve_points: int = CURVE_POINTS
    barrier: bool = True              # keep program arrays from being hoisted/broadcast out of the time loop
    #                                   (XLA's CPU compiler removes the barrier: the same code there either way)

    def with_(self, **kw) -> "InnerConfig":
        return replace(self, **kw)


def check_space(space: Space) -> None:
    for side, names in (("post", space.post_vars), ("pre", space.pre_vars), ("global", space.global_vars)):
        for v in names:
            if v not in RATE_VARIABLES[side]:
                raise RuleError(f"variable '{v}' is not available in rate networks "
                                f"(rate variables: {', '.join(sum(RATE_VARIABLES.values(), ()))})")
    if space.elig:
        raise RuleError("rate networks have no eligibility trace: use a spiking task for 'elig'")


class InnerState(NamedTuple):
    net: NetState
    rbar: jax.Array


class InnerLoop:
    """Pure building blocks of the inner loop for one (space, task shape, config); used by the evaluator and by
    meta-gradient strategies (which differentiate through :meth:`run`)."""

    def __init__(self, space: Space, task: Task, cfg: InnerConfig):
        check_space(space)
        self.space, self.task, self.cfg = space, task, cfg
        self.net = RateNet(task.n_in, task.n_out, task.objective, cfg.network)
        self.post_sizes = self.net.post_sizes()
        self.pre_sizes = self.net.pre_sizes()
        self.post_off = np.concatenate([[0], np.cumsum(self.post_sizes)])
        self.pre_off = np.concatenate([[0], np.cumsum(self.pre_sizes)])
        self.fb_prog, self.fb_space = None, None
        if cfg.network.feedback_rule is not None:
            # a known rule name, formula or rule .json file, compiled by the rule language (never a run's rule)
            fb = resolve_rule(cfg.network.feedback_rule)
            fb_space = fb.space
            check_space(fb_space)
            self.fb_prog, self.fb_space = jax.tree.map(jnp.asarray, fb.program), fb_space
        # per-layer rules: layer_fixed[l] is None (the searched program trains layer l) or (index into self.fixed,
        # learning rate); self.fixed holds each distinct fixed rule once as (space, program), compiled like the
        # feedback rule. Which layer takes which rule is static configuration, so the choice is made at trace time.
        self.fixed, self.layer_fixed = [], []
        names: dict = {}
        for spec in cfg.network.layer_rule_specs():
            if spec is None:
                self.layer_fixed.append(None)
                continue
            rule, lr = spec
            if rule not in names:
                r = resolve_rule(rule)
                if r.model != "rate":
                    raise RuleError(f"layer rule '{rule}' is a {r.model} rule, not a rate rule")
                check_space(r.space)
                names[rule] = len(self.fixed)
                self.fixed.append((r.space, jax.tree.map(jnp.asarray, r.program)))
            self.layer_fixed.append((names[rule], float(lr)))

    # --- state --------------------------------------------------------------------------------------------------
    def init(self, key) -> InnerState:
        return InnerState(self.net.init(key), jnp.zeros(()))

    # --- one update -------------------------------------------------------------------------------------------
    def _local_values(self, st: InnerState, fwd, deltas, r):
        """Every rate local quantity by name: post-side [N_post_total], pre-side [N_pre_total], globals scalars."""
        net = self.net
        cat = lambda xs: jnp.concatenate(xs) if len(xs) > 1 else xs[0]  # noqa: E731
        post_vals = {"y": cat(fwd.posts), "a": cat(fwd.pre_acts), "e": cat(deltas), "ybar": st.net.ybar,
                     "theta": st.net.theta}
        e_pre = []
        for l in range(net.n_layers):
            d = jnp.zeros((net.sizes[0],)) if l == 0 else deltas[l - 1]
            e_pre.append(jnp.concatenate([d, jnp.zeros((1,))]) if net.cfg.bias else d)
        pre_vals = {"x": cat(fwd.acts), "xbar": st.net.xbar, "e_pre": cat(e_pre)}
        return post_vals, pre_vals, {"r": r, "rbar": st.rbar}

    def _input_rows(self, space: Space, post_vals, pre_vals, g):
        """The interpreter's input rows for ``space`` as lists of vectors: its variables then its globals."""
        n_post, n_pre = int(self.post_off[-1]), int(self.pre_off[-1])
        post_in = [post_vals[v] for v in space.post_vars] + [jnp.broadcast_to(g[v], (n_post,))
                                                               for v in space.global_vars]
        pre_in = [pre_vals[v] for v in space.pre_vars] + [jnp.broadcast_to(g[v], (n_pre,))
                                                            for v in space.global_vars]
        return post_in, pre_in

    def _rule_vectors(self, space: Space, prog: Program, post_vals, pre_vals, g):
        """P [K, N_post_total], Q [K, N_pre_total] of a program on this network's local quantities."""
        post_in, pre_in = self._input_rows(space, post_vals, pre_vals, g)
        return space.rule_vectors(prog, post_in, pre_in, int(self.post_off[-1]), int(self.pre_off[-1]))

    def _stack_inputs(self, space: Space, post_vals, pre_vals, g):
        """The interpreter's input rows for ``space`` stacked: [n_vars + n_globals, N] per side."""
        post_in, pre_in = self._input_rows(space, post_vals, pre_vals, g)
        stack = lambda rows, n: jnp.stack(rows) if rows else jnp.zeros((0, n))  # noqa: E731
        return stack(post_in, int(self.post_off[-1])), stack(pre_in, int(self.pre_off[-1]))

    def step(self, prog: Program, st: InnerState, x: jax.Array, y: jax.Array):
        """One online update on a mini-batch x [B, n_in], y [B, n_out]. Returns (state, (score, loss))."""
        net, space, cfg = self.net, self.space, self.cfg.network
        if self.cfg.barrier:
            prog = jax.lax.optimization_barrier(prog)

        def per_sample(xb, yb):
            fwd = net.forward(st.net.W, xb)
            deltas = net.errors(st.net, fwd, yb)
            loss = net.loss(fwd.out, yb)
            pv, qv, g = self._local_values(st, fwd, deltas, -loss)
            P, Q = self._rule_vectors(space, prog, pv, qv, g)
            if self.task.objective == "classification":
                score = (jnp.argmax(fwd.out) == jnp.argmax(yb)).astype(jnp.float32)
            elif self.task.objective == "regression":
                score = jnp.mean((fwd.out - yb) ** 2)
            else:
                score = jnp.zeros(())
            extra = (None, None)
            if self.fb_prog is not None:
                extra = self._rule_vectors(self.fb_space, self.fb_prog, pv, qv, g)
            fixed = tuple(self._rule_vectors(fsp, fp, pv, qv, g) for fsp, fp in self.fixed)
            return P, Q, score, loss, pv, qv, extra, fixed

        B = x.shape[0]
        if B == 1:   # online: no batch axis in the hot path
            P, Q, score, loss, pv, qv, fbPQ, fixedPQ = jax.tree.map(lambda v: v[None], per_sample(x[0], y[0]))
        else:
            P, Q, score, loss, pv, qv, fbPQ, fixedPQ = jax.vmap(per_sample)(x, y)     # P [B, K, N], Q [B, K, M]
        tile = lambda v: jnp.tile(v, B) if B > 1 else v  # noqa: E731
        W_new = []
        for l in range(net.n_layers):
            ps = slice(int(self.post_off[l]), int(self.post_off[l + 1]))
            qs = slice(int(self.pre_off[l]), int(self.pre_off[l + 1]))
            if self.layer_fixed[l] is None:          # the searched (evaluated) program
                lsp, lprog, lP, lQ, lr = space, prog, P, Q, cfg.lr
            else:                                    # a fixed per-layer rule (readout_rule / layer_rules)
                j, lr = self.layer_fixed[l]
                (lsp, lprog), (lP, lQ) = self.fixed[j], fixedPQ[j]
            K = lP.shape[1]
            Pl = lP[:, :, ps].reshape(B * K, -1)
            Ql = lQ[:, :, qs].reshape(B * K, -1)
            W_new.append(lsp.update_weights(tile(lprog.term_s), tile(lprog.term_tgt), Pl, Ql, st.net.W[l], lr / B))
        B_new = st.net.B
        if self.fb_prog is not None:
            # B[l] mirrors W[l+1]: evaluate the feedback rule on layer l+1's local quantities, apply transposed
            fsp, fp = self.fb_space, self.fb_prog
            fP, fQ = fbPQ
            Kf = fP.shape[1]
            fts = jnp.tile(fp.term_s, B) if B > 1 else fp.term_s
            ftt = jnp.tile(fp.term_tgt, B) if B > 1 else fp.term_tgt
            flr = cfg.feedback_lr if cfg.feedback_lr is not None else cfg.lr
            B_new = []
            for l, Bl in enumerate(st.net.B):
                ps = slice(int(self.post_off[l + 1]), int(self.post_off[l + 2]))
                n_recv = net.sizes[l + 1]
                qs = slice(int(self.pre_off[l + 1]), int(self.pre_off[l + 1]) + n_recv)   # no bias neuron
                B_new.append(fsp.update_weights(fts, ftt, fP[:, :, ps].reshape(B * Kf, -1),
                                                fQ[:, :, qs].reshape(B * Kf, -1), Bl.T, flr / B).T)
            B_new = tuple(B_new)
        a_m, a_t = 1.0 / cfg.tau_mean, 1.0 / cfg.tau_theta
        y_mean, x_mean = pv["y"].mean(0), qv["x"].mean(0)
        ns = st.net._replace(W=tuple(W_new), B=B_new, ybar=st.net.ybar + a_m * (y_mean - st.net.ybar),
                             theta=st.net.theta + a_t * ((pv["y"] ** 2).mean(0) - st.net.theta),
                             xbar=st.net.xbar + a_m * (x_mean - st.net.xbar))
        rbar = st.rbar + a_m * (-loss.mean() - st.rbar)
        return InnerState(ns, rbar), (score.mean(), loss.mean())

    def run(self, prog: Program, st: InnerState, xs: jax.Array, ys: jax.Array):
        """Scan over a stream xs [T, n_in], ys [T, n_out] in mini-batches of cfg.network.batch_size."""
        B = self.cfg.network.batch_size
        T = (xs.shape[0] // B) * B
        xb = xs[:T].reshape(T // B, B, xs.shape[-1])
        yb = ys[:T].reshape(T // B, B, ys.shape[-1])
        return jax.lax.scan(lambda s, d: self.step(prog, s, d[0], d[1]), st, (xb, yb))

    # --- scoring ---------------------------------------------------------------------------------------------------
    def final_metrics(self, st: InnerState, data: TaskData, scores) -> dict:
        net = self.net
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(W)) for W in st.net.W]))
        out = {}
        obj = self.task.objective
        if obj == "pca":
            w = st.net.W[0][0, : net.n_in]
            norm = jnp.linalg.norm(w)
            out["pc1_alignment"] = jnp.abs(w @ data.pc1) / jnp.maximum(norm * jnp.linalg.norm(data.pc1), 1e-12)
            out["weight_norm"] = norm
            finite = finite & jnp.isfinite(norm) & jnp.isfinite(out["pc1_alignment"])
        else:
            fwd = jax.vmap(lambda x: net.forward(st.net.W, x).out)(data.x_eval)
            losses = jax.vmap(net.loss)(fwd, data.y_eval)
            # finite weights can still overflow the output (W @ x beyond float32): that counts as non-finite too,
            # never as a chance-level score of a NaN output
            finite = finite & jnp.all(jnp.isfinite(fwd)) & jnp.all(jnp.isfinite(losses))
            out["final_loss"] = losses.mean()
            if obj == "classification":
                out["final_accuracy"] = jnp.mean(jnp.argmax(fwd, -1) == jnp.argmax(data.y_eval, -1))
                out["online_accuracy"] = scores.mean()
            else:
                out["final_mse"] = jnp.mean((fwd - data.y_eval) ** 2)
                out["online_mse"] = scores.mean()
        out = {k: jnp.where(finite, v, jnp.nan).astype(jnp.float32) for k, v in out.items()}
        out["finite"] = finite.astype(jnp.float32)
        return out

    def curve(self, scores, st_traj=None):
        C = self.cfg.curve_points
        T = scores.shape[0]
        C = max(1, min(C, T))
        n = (T // C) * C
        return scores[:n].reshape(C, n // C).mean(-1)

    def evaluate_one(self, prog: Program, data: TaskData, key):
        """Train from scratch on one instance and return (metrics, curve)."""
        st = self.init(key)
        if self.task.objective == "pca":
            # curve: alignment of the (single) neuron's weights with PC1 over time
            def step(s, d):
                s, _ = self.step(prog, s, d[0], d[1])
                w = s.net.W[0][0, : self.net.n_in]
                return s, jnp.abs(w @ data.pc1) / jnp.maximum(jnp.linalg.norm(w), 1e-12)
            B = self.cfg.network.batch_size
            T = (data.x_stream.shape[0] // B) * B
            xb = data.x_stream[:T].reshape(T // B, B, -1)
            yb = data.y_stream[:T].reshape(T // B, B, -1)
            st, align = jax.lax.scan(step, st, (xb, yb))
            return self.final_metrics(st, data, align), self.curve(align)
        st, (scores, _) = self.run(prog, st, data.x_stream, data.y_stream)
        return self.final_metrics(st, data, scores), self.curve(scores)


@lru_cache(maxsize=32)
def compiled_population(space: Space, task: Task, cfg: InnerConfig, one_shot: bool = False):
    """jit(vmap_pop(vmap_instance(train + score))): (pop, data [S, ...], keys [S]) -> ({metric: [P, S]}, [P, S, C]).
    ``one_shot``: compiled for one or two calls (:func:`..jit_options.one_shot`: half the compile time, a slower
    run, the same results). The evaluator contract (``make_evaluator``, instances, one rule) is :mod:`.rate_model`."""
    loop = InnerLoop(space, task, cfg)
    per_instance = jax.vmap(loop.evaluate_one, in_axes=(None, 0, 0))
    per_pop = jax.vmap(per_instance, in_axes=(0, None, None))
    return jax.jit(per_pop, compiler_options=jit_options.one_shot(one_shot))
