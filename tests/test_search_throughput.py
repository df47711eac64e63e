"""Filling the device without changing results: chunked evaluation (any chunk gives the same hall of fame), the
least-padding call plan, ``search.children: auto``, the memory cap, and ``budget.time_limit_s`` counting wall time."""
import json
import time

import numpy as np
import pytest

from plasticity_search.search import Search, load_config, run_search
from plasticity_search.search import autosize
from plasticity_search.search.config import ConfigError
from plasticity_search.search.evaluator import SplitEval

PCA = {"task": "pca", "seeds": 2, "steps": 100}
DIGITS = {"task": "digits", "seeds": 2, "steps": 60}
TINY = {
    "name": "tiny",
    "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 2, "n_pre": 1, "n_terms": 3},
    "search": {"population": 16, "tournament": 2, "children": 8},
    "tasks": {"search": [PCA], "select": [PCA], "final": [PCA]},
    "fitness": {"penalties": [{"metric": "weight_norm", "target": 1.0, "weight": 1.0}]},
    "budget": {"generations": 4},
}


def _doc(hof) -> str:
    d = hof.to_json()
    d["info"].pop("wall_time_s")
    return json.dumps(d, sort_keys=True)


def _hof(cfg):
    return _doc(run_search(cfg))


def _searched(s):
    """The state of search ``s`` run to its end (generations only, no finalize)."""
    state = s.init()
    while not s.done(state):
        state, _ = s.step(state)
    return state


# --- chunked evaluation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tasks", [PCA, pytest.param(DIGITS, marks=pytest.mark.slow)],   # digits: 18 s
                         ids=["pca", "digits"])
def test_tiny_chunk_gives_the_same_hall_of_fame(tasks):
    """Every candidate is computed independently of its batch: 64 children evaluated in calls of 16, 17 (-> 16) or
    32 give exactly the hall of fame of one call of 64 (buckets are powers of two from 16, see evaluator.buckets)."""
    over = {"tasks.search": [tasks], "tasks.select": [tasks], "tasks.final": [tasks]}
    if tasks is DIGITS:
        over.update({"fitness.penalties": [], "network.hidden": [8], "budget.generations": 2})
    ref = _hof(load_config(TINY, {**over, "search.population": 128, "search.children": 64}))
    for chunk in (16, 17, 32):
        got = _hof(load_config(TINY, {**over, "search.population": 128, "search.children": 64,
                                      "budget.chunk": chunk}))
        assert got == ref, chunk


def test_buckets_are_powers_of_two():
    from plasticity_search.search.evaluator import buckets
    assert buckets(32) == [16, 32]
    assert buckets(48) == [16, 32]             # 48 children run as 32 + 16: no padding, same shapes
    assert buckets(1) == [16] and buckets(3) == [16]
    assert buckets(1024, small=4) == [4, 256, 512, 1024]   # the select re-scoring of 4 has its own size
    assert buckets(32, small=4) == [4, 16, 32] and buckets(16, small=16) == [16]
    assert buckets(1024, floor=2) == [256, 512, 1024] and buckets(3, floor=2) == [2]


def test_plan_covers_every_program_with_least_padding():
    ev = SplitEval.__new__(SplitEval)
    ev.tight, ev.mesh, ev.shared, ev.calls = False, None, None, "padding"
    for buckets, small in (([256, 512, 1024], None), ([4, 256, 512, 1024], 4), ([8, 16, 32], None), ([1], None)):
        # (the plan works for any sorted sizes; runs use evaluator.buckets)
        ev.buckets, ev.small = buckets, small
        ev.__dict__.pop("_plans", None)
        for n in [1, 3, 4, 5, 9, 20, 31, 100, 257, 700, 1024, 1025, 3000]:
            plan = ev.plan(n)
            assert sum(m for m, _ in plan) == n
            assert all(m <= size and size in buckets for m, size in plan)
            big = [b for b in buckets if b != small]
            # padding stays below the smallest regular bucket
            assert sum(size - m for m, size in plan) < big[0] or n <= (small or 0)
    ev.buckets, ev.small = [256, 512, 1024], None
    ev.__dict__.pop("_plans", None)
    assert ev.plan(700) in ([(256, 256), (444, 512)], [(512, 512), (188, 256)])   # 768 padded, never 1024
    ev.buckets, ev.small = [4, 256, 512, 1024], 4
    ev.__dict__.pop("_plans", None)
    assert ev.plan(4) == [(4, 4)]           # the select re-scoring of 4 candidates is not padded to 256
    assert ev.plan(20) == [(20, 256)]       # a slice of a big batch never runs as 4-candidate calls
    assert ev.plan(1025) == [(1024, 1024), (1, 256)]
    # a tight split (the end of a run: a few candidates on many seeds): the rest in one call of the power of two
    # holding it, never padded to the search's batch
    ev.buckets, ev.small, ev.tight = [16, 32], None, True
    assert ev.plan(5) == [(5, 8)] and ev.plan(1) == [(1, 1)] and ev.plan(16) == [(16, 16)]
    assert ev.plan(40) == [(32, 32), (8, 8)] and ev.plan(33) == [(32, 32), (1, 1)] and ev.plan(20) == [(20, 32)]
    # sharing the search split's compiled calls (share_compiles): the rest pads to the search's batch holding it
    ev.shared = ((16, 32), [4])
    assert ev.plan(5) == [(5, 16)] and ev.plan(16) == [(16, 16)] and ev.plan(40) == [(32, 32), (8, 16)]
    assert ev.plan(3) == [(3, 4)]           # not padded to more than twice its batch: its own call
    ev.buckets, ev.shared = [256, 512, 1024], ((256, 512, 1024), [4])       # a GPU search's batches
    assert ev.plan(11) == [(11, 16)] and ev.plan(200) == [(200, 256)]


def test_plan_with_fewest_calls():
    """An accelerator's plan (autosize.PLAN: "calls"): full calls of the largest bucket, the rest in one call of
    the smallest bucket holding it; the small bucket and tight splits as on a CPU."""
    ev = SplitEval(None, [], None, 1024, small=4, calls="calls")
    assert ev.buckets == [4, 256, 512, 1024]
    assert ev.plan(530) == [(530, 1024)] and ev.plan(700) == [(700, 1024)] and ev.plan(200) == [(200, 256)]
    assert ev.plan(300) == [(300, 512)] and ev.plan(1025) == [(1024, 1024), (1, 256)] and ev.plan(4) == [(4, 4)]
    assert ev.plan(20) == [(20, 256)] and ev.plan(2100) == [(1024, 1024)] * 2 + [(52, 256)]
    for n in range(1, 3000, 7):
        plan = ev.plan(n)
        assert sum(m for m, _ in plan) == n and all(m <= size for m, size in plan)
        assert len(plan) == -(-n // 1024)           # the fewest calls
    padding = SplitEval(None, [], None, 1024, small=4)
    assert padding.calls == "padding" and padding.plan(530) == [(256, 256), (274, 512)]
    assert SplitEval(None, [], None, 32, tight=True, calls="calls").plan(5) == [(5, 8)]
    with pytest.raises(ValueError, match="calls"):
        SplitEval(None, [], None, 32, calls="fast")
    assert autosize.plan_policy("cpu") == "padding" and autosize.plan_policy("gpu") == "calls"
    assert autosize.plan_policy("tpu") == "calls"


@pytest.mark.parametrize("tasks", [PCA, pytest.param(DIGITS, marks=pytest.mark.slow)],   # digits: 20 s
                         ids=["pca", "digits"])
def test_fewest_calls_plan_gives_the_same_hall_of_fame(tasks, monkeypatch):
    """The accelerator's plan, forced on the CPU: FEC-thinned batches of the 64 children run in one call of 64
    instead of 32 + 16 and the like; every candidate's results are the same, so is the hall of fame."""
    over = {"tasks.search": [tasks], "tasks.select": [tasks], "tasks.final": [tasks],
            "search.population": 128, "search.children": 64}
    if tasks is DIGITS:
        over.update({"fitness.penalties": [], "network.hidden": [8], "budget.generations": 2})
    cfg = load_config(TINY, over)
    ref = _hof(cfg)
    monkeypatch.setitem(autosize.PLAN, "cpu", "calls")
    s = Search(cfg)
    assert s.evaluator("search").calls == "calls" and s.evaluator("search").plan(40) == [(40, 64)]
    assert _hof(cfg) == ref


def test_select_rescoring_gets_its_own_small_bucket():
    cfg = load_config(TINY, {"search.population": 128, "search.children": 64, "hall_of_fame.select_top_k": 4})
    s = Search(cfg)
    assert s.evaluator("select").buckets == [4, 16, 32, 64]
    assert s.evaluator("select").plan(4) == [(4, 4)]          # not padded to 16
    assert s.evaluator("select").plan(20) in ([(16, 16), (4, 16)], [(20, 32)])   # never a slice in the small one
    assert s.evaluator("search").buckets == [16, 32, 64]
    # the end of a run: the final split and the select choice are tight, the per-generation splits are not
    assert s.evaluator("final").plan(5) == [(5, 8)] and s.evaluator("search").plan(5) == [(5, 16)]
    # a fixed small request (a refinement's ES population of 8, one program) keeps its own size
    assert s.evaluator("search", 8).buckets == [8] and s.evaluator("search", 1).buckets == [1]


# --- auto sizes ----------------------------------------------------------------------------------------------------
def test_auto_batch_known_answers():
    what, knee = autosize.KNEE["cpu"]
    assert what == "work"                                                     # CPU: by arithmetic
    assert autosize.auto_batch(knee, plat="cpu") == autosize.MIN_AUTO          # one candidate saturates: the floor
    assert autosize.auto_batch(knee // 64, plat="cpu") == 64
    assert autosize.auto_batch(knee // 100, plat="cpu") == 128                 # rounded up to a power of two
    assert autosize.auto_batch(1, plat="cpu") == autosize.MAX_AUTO
    assert autosize.auto_batch(knee // 64, devices=4, plat="cpu") == 256       # per device
    what, knee = autosize.KNEE["gpu"]
    assert what == "networks"                                                 # GPU: by networks side by side
    assert autosize.auto_batch(10 ** 9, instances=knee // 1024, plat="gpu") == 1024
    assert autosize.auto_batch(1, instances=knee // 1024, plat="gpu") == 1024  # work does not matter there
    assert autosize.auto_batch(1, instances=4, plat="gpu") == knee // 4


def test_children_auto_resolves_to_numbers_in_the_config():
    cfg = load_config(TINY, {"search.children": "auto", "search.population": "auto"})
    c, p = cfg.search.children, cfg.search.population
    assert autosize.MIN_AUTO <= c <= autosize.MAX_AUTO and c & (c - 1) == 0
    assert p == max(64, 2 * c)
    d = cfg.to_dict()
    assert d["search"]["children"] == c and d["search"]["population"] == p    # the run's config.yaml has numbers
    assert load_config(d) == cfg
    # an explicit population bounds auto children
    assert load_config(TINY, {"search.children": "auto", "search.population": 16}).search.children == 16
    # more work per candidate -> fewer children
    wide = load_config(TINY, {"search.children": "auto", "search.population": "auto",
                              "tasks.search": [{"task": "digits", "seeds": 8, "steps": 50}],
                              "tasks.select": [DIGITS], "tasks.final": [DIGITS], "fitness.penalties": [],
                              "network.hidden": [256, 256]})
    assert wide.search.children < c


@pytest.mark.parametrize("value", ["Auto", "max", ""])
def test_children_bad_string_is_one_line(value):
    with pytest.raises(ConfigError, match=r"^search.children: expected int or auto"):
        load_config(TINY, {"search.children": value})


def test_memory_caps_the_chunk():
    # one candidate of a 64-100-10 net on 2 digits instances needs ~1 MB of weights: a 64 MB limit holds fewer
    # than the 1024 a search would ask for, a 64 GB limit holds them all
    entries = [(64, 10, 2, 100, 250)]
    small = autosize.memory_chunk(entries, (100,), True, limit=64 << 20)
    large = autosize.memory_chunk(entries, (100,), True, limit=64 << 30)
    assert 1 <= small < 1024 < large
    assert autosize.memory_chunk(entries, (100,), True, limit=1 << 10) == 0


# --- wall-time budget ----------------------------------------------------------------------------------------------
def test_time_limit_counts_wall_time_between_generations():
    """Work outside the engine's step (checkpoints, logging) counts towards budget.time_limit_s."""
    s = Search(load_config(TINY, {"budget.time_limit_s": 0.6, "budget.generations": 100}))
    st = s.init()
    st, _ = s.step(st)
    before = st.counters["elapsed_s"]
    time.sleep(0.7)
    st, m = s.step(st)
    assert st.counters["elapsed_s"] >= before + 0.7
    assert s.stop_reason(st) == "time_limit"
    assert np.isfinite(m["wall_time_s"])


# --- vectorised bookkeeping (what a generation does besides the inner loop) ---------------------------------------
@pytest.mark.parametrize("space_name", ["quickstart", "wide"])
def test_batched_complexity_and_hashes_equal_the_per_program_ones(space_name):
    import hashlib

    import jax

    from plasticity_search.rules import mutation
    from plasticity_search.rules.fec import _quantize, fec_hashes, probe_outputs
    from plasticity_search.rules.program import Space, complexities, complexity, index, liveness, liveness_batch
    from plasticity_search.search.state import np_prog

    if space_name == "quickstart":
        space = Space.from_dict({"post_vars": ["y", "e"], "pre_vars": ["x", "e_pre"], "ops": ["add", "sub", "mul"],
                                 "syn": ["1", "w"], "n_post": 1, "n_pre": 1, "n_terms": 3})
    else:
        space = Space.from_dict({"post_vars": ["y", "a", "e"], "pre_vars": ["x", "xbar"], "global_vars": ["r"],
                                 "ops": ["add", "sub", "mul", "cmul", "square", "tanh", "div"],
                                 "syn": ["1", "w", "w2"], "n_post": 4, "n_pre": 3, "n_terms": 5})
    pop = np_prog(mutation.random_population(jax.random.key(0), space, 300, 3))
    # mutated programs too: dead instructions, removed terms, zero coefficients
    kids = np_prog(jax.vmap(lambda k, p: mutation.mutate(k, p, space))(
        jax.random.split(jax.random.key(1), 300), pop))
    for progs in (pop, kids):
        lp, lq, t = liveness_batch(progs, space)
        got = complexities(progs, space)
        for i in range(300):
            a, b, c = liveness(index(progs, i), space)
            np.testing.assert_array_equal(lp[i], a)
            np.testing.assert_array_equal(lq[i], b)
            np.testing.assert_array_equal(t[i], c)
            assert got[i] == complexity(index(progs, i), space)
        assert len(set(got.tolist())) > 2
        dw, _ = probe_outputs(progs, space)
        ref = [hashlib.blake2b(_quantize(dw[i]).tobytes(), digest_size=12).hexdigest() for i in range(300)]
        assert fec_hashes(progs, space) == ref


# --- the end of a run: calls side by side, FA in the candidates' call --------------------------------------------
def test_overlapped_keeps_order_and_raises():
    from plasticity_search.search.overlap import overlapped
    assert overlapped([lambda i=i: i * i for i in range(5)]) == [0, 1, 4, 9, 16]
    assert overlapped([lambda: 1], workers=4) == [1] and overlapped([]) == []

    def boom():
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        overlapped([lambda: 1, boom])


def test_finalize_side_by_side_equals_one_after_the_other(monkeypatch):
    """The final scores (candidates and FA in one call) and BP run side by side; the hall of fame is exactly that
    of the same calls one after the other, and FA's entry equals FA scored on its own."""
    import plasticity_search.search.baselines as bl
    from plasticity_search.search.overlap import overlapped
    over = {"tasks.search": [DIGITS], "tasks.select": [DIGITS], "tasks.final": [DIGITS], "fitness.penalties": [],
            "network.hidden": [8], "budget.generations": 2, "baselines": ["fa", "bp"]}
    s = Search(load_config(TINY, over))
    state = _searched(s)
    ref = _doc(s.finalize(state))          # finalize works on a copy of the state
    monkeypatch.setattr(bl, "overlapped", lambda thunks, workers=None: overlapped(thunks, workers=1))
    assert _doc(s.finalize(state)) == ref
    fa = next(b for b in json.loads(ref)["baselines"] if b["name"] == "fa")
    alone, _, _ = s.score_baselines("final")
    assert next(b for b in alone if b["name"] == "fa")["instances"] == fa["instances"]


# --- the end of a run computed ahead, while the search runs ------------------------------------------------------
def test_ahead_runs_jobs_in_order_and_computes_failed_ones_at_the_end():
    from plasticity_search.search.ahead import Ahead
    order = []

    def boom():
        raise RuntimeError("boom")
    a = Ahead({"x": lambda: order.append("x") or 1, "bad": boom, "y": lambda: order.append("y") or 2}).start()
    assert a.get("y") == 2 and a.get("x") == 1 and order == ["x", "y"]
    assert a.get("bad") is None and a.get("bad", lambda: 7) == 7   # a failed job is computed by the caller
    assert a.get("z") is None and a.get("z", lambda: 3) == 3        # so is a key that is not a job
    stopped = Ahead({"p": lambda: 1, "q": lambda: 2})
    stopped.stop()
    stopped.start()
    assert stopped.get("q", lambda: 5) == 5                     # stopped before it ran: the caller computes it
    assert len(Ahead({})) == 0 and Ahead({}).start().get("k") is None


def test_one_shot_compiles_give_the_same_results():
    """Evaluators compiled for a single use (the end of a run's own baselines, the generalization conditions) run
    at LLVM level 2 on the CPU (about half the compile time): the same metrics and curves as XLA's default."""
    import jax
    from plasticity_search import jit_options
    from plasticity_search.rate import InnerConfig, evaluate_population
    from plasticity_search.rate.mlp import NetworkConfig
    from plasticity_search.rules import random_population
    from plasticity_search.rules.program import Program
    from plasticity_search.tasks import make
    assert jit_options.one_shot(False) is None
    # mutation: without LLVM optimisation for small batches (every shipped config), level 2 from 256 children
    assert jit_options.mutation(32) == jit_options.FAST_COMPILE and jit_options.mutation(255) == jit_options.FAST_COMPILE
    assert jit_options.mutation(256) == jit_options.mutation(4096) == jit_options.ONE_SHOT
    assert jit_options.one_shot() == (jit_options.ONE_SHOT if jax.default_backend() == "cpu" else None)
    space = Search(load_config(TINY)).space
    pop = Program(*[np.asarray(x) for x in random_population(jax.random.key(2), space, 4, 3)])
    cfg = InnerConfig(network=NetworkConfig(hidden=(8,)), steps=40)
    task = make("yinyang")
    (m0, c0), (m1, c1) = (evaluate_population(pop, space, task, cfg, [0, 1], "final", one_shot=o) for o in (0, 1))
    assert m0.keys() == m1.keys() and all(np.array_equal(m0[k], m1[k], equal_nan=True) for k in m0)
    np.testing.assert_array_equal(c0, c1)


def test_ahead_takes_jobs_while_it_runs_until_stopped():
    import threading
    from plasticity_search.search.ahead import Ahead
    gate = threading.Event()
    a = Ahead({}).start()
    assert a.idle() and a.submit("slow", lambda: gate.wait(30) and "slow")
    assert not a.submit("slow", lambda: 0)                      # a key is queued once
    assert a.submit("next", lambda: "next") and not a.idle()
    gate.set()
    assert a.get("next") == "next" and a.get("slow") == "slow" and a.idle()
    a.stop()
    assert not a.submit("late", lambda: 1) and a.get("late", lambda: 2) == 2


def test_ahead_jobs_run_with_a_short_switch_interval():
    """A job's Python work shares the GIL with the search's thread: while it runs the interpreter switches threads
    every SWITCH_S (not every 5 ms), and the interval is restored after."""
    import sys
    from plasticity_search.search.ahead import SWITCH_S, Ahead
    before = sys.getswitchinterval()
    a = Ahead({"interval": sys.getswitchinterval}).start()
    try:
        assert a.get("interval") == pytest.approx(min(before, SWITCH_S))
        while not a.idle():
            time.sleep(0.01)
    finally:
        a.stop()
    assert sys.getswitchinterval() == before


def _counting(monkeypatch):
    """Count the programs :class:`SplitEval` actually evaluates (memo hits do not count)."""
    counted = []
    orig = SplitEval._evaluate

    def counting(self, progs, curves, min_size, batch=None):
        counted.append(int(np.asarray(progs.term_on).shape[0]))
        return orig(self, progs, curves, min_size, batch)
    monkeypatch.setattr(SplitEval, "_evaluate", counting)
    return counted


def test_evaluation_memo_gives_the_results_of_evaluating_everything(monkeypatch):
    """Inside memo_scope a request evaluates only the programs the memo lacks and returns exactly what evaluating
    the whole request returns, curves included; an entry is only taken at the batch the request's plan gives the
    program (results may differ in the last bit across batches: spiking_digits' final loss, 16 vs 64)."""
    import jax
    from plasticity_search.rules import random_population
    from plasticity_search.rules.program import Program
    from plasticity_search.search.evaluator import memo_scope
    from plasticity_search.search.state import take
    over = {"tasks.search": [DIGITS], "tasks.select": [DIGITS], "tasks.final": [DIGITS], "fitness.penalties": [],
            "network.hidden": [8], "search.children": 16, "search.population": 16}
    s = Search(load_config(TINY, over))
    progs = Program(*[np.asarray(x) for x in random_population(jax.random.key(5), s.space, 9, 2)])
    first, later = take(progs, [0, 1, 2, 3, 4]), take(progs, [6, 3, 5, 3, 0, 8, 7])
    counted = _counting(monkeypatch)
    for ev in (s.evaluator("search"), s.evaluator("final")):
        ref = ev.evaluate(later, curves=True, min_size=16)
        memo = {}
        with memo_scope(memo):
            ev.evaluate(first, min_size=16)
            del counted[:]
            got = ev.evaluate(later, curves=True, min_size=16)
        assert counted == [4]                                     # 6, 5, 8, 7: the others come from the memo
        np.testing.assert_array_equal(got[0], ref[0])
        for a, b in zip(got[1] + got[2], ref[1] + ref[2]):
            if isinstance(a, dict):
                assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
            else:
                np.testing.assert_array_equal(a, b)
    sel = s.evaluator("select")
    assert sel.plan(3) == [(3, 4)] and sel.plan(7)[0][1] == 16
    memo = {}
    with memo_scope(memo):
        sel.evaluate(take(progs, [0, 1, 2]))
        del counted[:]
        got = sel.evaluate(take(progs, [0, 1, 2, 3, 4, 5, 6]))
    assert counted == [7]                                         # batch 4 != 16: computed again
    np.testing.assert_array_equal(got[0], sel.evaluate(take(progs, [0, 1, 2, 3, 4, 5, 6]))[0])
    big = SplitEval(s.space, s.evaluator("search").items, s.fit, 32)   # batches of 16 and 32
    many = Program(*[np.asarray(x) for x in random_population(jax.random.key(6), s.space, 40, 2)])
    assert big.plan(40) == [(32, 32), (8, 16)]
    ref = big.evaluate(take(many, range(30, 40)))                 # one call of 16
    memo = {}
    with memo_scope(memo):
        big.evaluate(many)                                        # 0-31 at 32, 32-39 at 16
        del counted[:]
        got = big.evaluate(take(many, range(30, 40)))
    assert counted == [2]                                         # 30 and 31 ran at 32: computed again at 16
    np.testing.assert_array_equal(got[0], ref[0])


def test_finalize_computed_ahead_equals_finalizing_at_the_end(monkeypatch):
    """FinalizeAhead: near the end of the search, finalize runs on snapshots in the background thread; the end of
    the run then evaluates only what changed since, and the hall of fame is exactly that of finalizing at the end
    (hybrid strategy: snapped constants, the select choice on its own seeds, FA riding in the final call, BP)."""
    from plasticity_search.search.ahead import Ahead, FinalizeAhead
    over = {"tasks.search": [DIGITS], "tasks.select": [DIGITS], "tasks.final": [DIGITS], "fitness.penalties": [],
            "network.hidden": [8], "budget.generations": 6, "baselines": ["fa", "bp"],
            "search.strategy": "hybrid", "hybrid": {"every": 2, "steps": 1, "population": 4},
            "hall_of_fame.select_seeds": 3}
    s = Search(load_config(TINY, over))
    s.ahead = Ahead({}).start()
    spec = FinalizeAhead(s, s.ahead)
    try:
        _finalize_ahead_checks(s, spec, monkeypatch)
    finally:
        s.ahead.stop()


def _finalize_ahead_checks(s, spec, monkeypatch):
    from plasticity_search.search.ahead import FinalizeAhead, near_end
    state, queued, near = s.init(), [], []
    while not s.done(state):
        state, _ = s.step(state)
        near.append(near_end(s, state))
        if spec.after_generation(state):
            queued.append(state.generation)
            s.ahead.get(spec.key)             # (a real run goes on searching meanwhile)
    assert near == [False, False, False, True, True, True] and queued and queued[0] == 4
    counted = _counting(monkeypatch)
    hof = spec.finalize(state)
    n_ahead = sum(counted)
    del counted[:]
    s.ahead.stop()
    s.ahead = None
    ref = s.finalize(state)
    assert _doc(hof) == _doc(ref)
    assert n_ahead < sum(counted)                  # the memo saved evaluations at the end
    from plasticity_search.runs.runner import start_ahead
    s.ahead = start_ahead(s)                       # with the baselines outside the candidates' call (FA, BP) ahead
    try:
        spec2 = FinalizeAhead(s, s.ahead)
        while not s.ahead.idle():                  # (queued only when the thread has nothing else to do)
            time.sleep(0.05)
        assert spec2.after_generation(state) and spec2.ahead.get(spec2.key)
        del counted[:]
        import plasticity_search.search.finalize as fin
        host = []                                  # the per-program sympy work is kept in the memo too
        for name in ("canonical", "entry_text"):
            monkeypatch.setattr(fin, name, lambda *a, _f=getattr(fin, name), _n=name: host.append(_n) or _f(*a))
        assert _doc(spec2.finalize(state)) == _doc(ref) and counted == []    # the same state: nothing left to do
        assert host == []
        assert not spec2.after_generation(state)   # the same candidates: nothing queued again
    finally:
        s.ahead.stop()


def test_finalize_and_generalization_with_baselines_ahead_equal_the_end_of_run_ones():
    """BP on the final split and FA/BP on the held-out conditions, computed in the background thread while the
    search runs, give exactly the hall of fame and generalization report of computing them at the end."""
    from plasticity_search.runs.runner import generalization_conditions, start_ahead
    from plasticity_search.search.generalize import generalization_report
    over = {"tasks.search": [DIGITS], "tasks.select": [DIGITS], "tasks.final": [DIGITS], "fitness.penalties": [],
            "network.hidden": [8], "budget.generations": 2, "baselines": ["fa", "bp"],
            "generalization": {"at_end": True, "seeds": 2,
                               "conditions": [{"task": "yinyang", "steps": 40}, {"task": "digits", "steps": 30,
                                                                                 "network": {"hidden": [6]}}]}}
    s = Search(load_config(TINY, over))
    conds = generalization_conditions(s.cfg)
    assert len(conds) == 2
    s.ahead = start_ahead(s)
    # FA (outside this space without errors: a group of its own) and BP on final; FA and BP per condition
    assert s.ahead is not None and len(s.ahead) == 2 + 2 * 2
    state = _searched(s)
    hof = s.finalize(state)
    prog, space = hof.entries[hof.best].rule_program()
    with_ahead = (_doc(hof), generalization_report(prog, space, s.cfg, conds, ahead=s.ahead))
    s.ahead.stop()
    s.ahead = None
    assert (_doc(s.finalize(state)), generalization_report(prog, space, s.cfg, conds)) == with_ahead
    assert [r["condition"] for r in with_ahead[1]["rows"]] == ["yinyang", "digits (hidden=[6])"]
    # the finalize computed ahead near the end also scores its chosen rule on the conditions
    from plasticity_search.search.ahead import FinalizeAhead
    s.ahead = start_ahead(s)
    try:
        spec = FinalizeAhead(s, s.ahead, conds)
        while not s.ahead.idle():
            time.sleep(0.05)
        assert spec.after_generation(state) and s.ahead.get(spec.key)
        hof = spec.finalize(state)
        assert _doc(hof) == with_ahead[0]
        assert spec.generalization(*hof.entries[hof.best].rule_program()) == with_ahead[1]
        assert spec.generalization(*hof.entries[-1].rule_program()) is None or len(hof) == 1
    finally:
        s.ahead.stop()


def test_end_of_run_splits_run_in_the_search_splits_compiled_calls():
    """The select choice and the final split (a few candidates on many seeds) run in calls of the search split's
    shape: no compile of their own; every instance in order, the padding of the last call dropped; the same
    values as one call over all seeds (accuracies exactly, losses to float32 rounding)."""
    import jax
    from plasticity_search.rules import random_population
    from plasticity_search.rules.program import Program
    from plasticity_search.search.evaluator import SplitEval
    digits = {"task": "digits", "steps": 40}
    over = {"tasks.search": [dict(digits, seeds=2)], "tasks.select": [dict(digits, seeds=3)],
            "tasks.final": [dict(digits, seeds=5)], "fitness.penalties": [], "network.hidden": [8],
            "hall_of_fame.select_seeds": 6, "search.children": 16, "search.population": 16}
    s = Search(load_config(TINY, over))
    search_ev = s.evaluator("search")
    progs = Program(*[np.asarray(x) for x in random_population(jax.random.key(3), s.space, 5, 2)])
    search_ev.evaluate(progs)                                     # compiles the search split's 16 x 2 call
    compiles = []            # compiles of the inner loop (evaluate_one), not of the small ops that slice instances

    def listen(name, _d, fun_name="", **_kw):
        if name == "/jax/core/compile/backend_compile_duration" and "evaluate_one" in fun_name:
            compiles.append(fun_name)
    jax.monitoring.register_event_duration_secs_listener(listen)
    for ev, n_seeds in ((s.evaluators.choice(), 6), (s.evaluator("final"), 5)):
        assert ev.shared is not None and ev.shared[1] == [2]      # calls of the search split's 2 instances
        assert ev.plan(5) == [(5, 16)]                            # padded to the search split's batch
        n_compiles = len(compiles)
        fit, per_task, cv = ev.evaluate(progs, curves=True)
        assert len(compiles) == n_compiles                        # no compile of its own
        _, fn_alone, inst = ev.items[0]
        whole = SplitEval(s.space, ev.items, s.fit, 16, tight=True)   # one call over all seeds, for reference
        fit1, per_task1, cv1 = whole.evaluate(progs, curves=True)
        assert len(compiles) == n_compiles + 1                    # (the listener sees the inner loop's compiles)
        assert per_task[0]["final_accuracy"].shape == (5, n_seeds) and cv[0].shape[:2] == (5, n_seeds)
        np.testing.assert_array_equal(per_task[0]["final_accuracy"], per_task1[0]["final_accuracy"])
        np.testing.assert_allclose(per_task[0]["final_loss"], per_task1[0]["final_loss"], rtol=1e-5)
        np.testing.assert_allclose(cv[0], cv1[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(fit, fit1)
    spiking_like = SplitEval(s.space, [(t, lambda p, i: None, inst) for t, _, inst in s.evaluator("final").items],
                             s.fit, 16, tight=True)
    assert spiking_like.share_compiles(search_ev).shared is None  # no shared compiled function: nothing shared


def test_a_candidate_diverging_on_the_choice_split_is_reported(monkeypatch):
    """A Pareto candidate whose select re-score diverges gets the worst fitness and leaves the hall of fame; the
    choice line says how many did (before, it vanished without a word)."""
    over = {"tasks.search": [DIGITS], "tasks.select": [DIGITS], "tasks.final": [DIGITS], "fitness.penalties": [],
            "network.hidden": [8], "budget.generations": 2}
    s = Search(load_config(TINY, over))
    state = _searched(s)
    ok = s.finalize(state).to_json()
    assert "diverged" not in ok["info"]["choice"] and "diverged_on_choice" not in ok["info"]
    choice = s.choice_evaluator()
    real = choice.evaluate

    def first_diverges(progs, *a, **kw):
        fit, per_task = real(progs, *a, **kw)
        fit = np.array(fit, np.float64)
        fit[0] = -np.inf
        return fit, per_task
    monkeypatch.setattr(choice, "evaluate", first_diverges)
    doc = s.finalize(state).to_json()
    assert doc["info"]["diverged_on_choice"] == 1
    assert "1 of " in doc["info"]["choice"] and "diverged on the select instances" in doc["info"]["choice"]
    assert len(doc["entries"]) >= 1
