"""``search.generations_per_call``: generations of regularized evolution run on the device in one compiled call
(search/device_generations.py). Known answers: the traced complexity is the numpy one, a child's fitness from the
device is the host evaluator's, the keys are the host path's, the search does not depend on how its generations are
grouped into calls, a restored state continues exactly, and configs it cannot run are refused in one line."""
import json

import jax
import numpy as np
import pytest

from plasticity_search.rules import mutation
from plasticity_search.rules.program import Program, Space, complexities, complexities_traced
from plasticity_search.search import Search, load_config
from plasticity_search.search.config import ConfigError
from plasticity_search.search.state import np_prog, state_from_tree, state_to_tree

DIGITS = {"task": "digits", "seeds": 2, "steps": 40}
CFG = {
    "name": "device_generations",
    "space": {"post_vars": ["y", "e"], "pre_vars": ["x", "e_pre"], "ops": ["add", "sub", "mul"], "syn": ["1", "w"],
              "n_post": 1, "n_pre": 1, "n_terms": 3},
    "search": {"population": 32, "tournament": 4, "children": 16, "fec": False, "generations_per_call": 2},
    "network": {"hidden": [8]},
    "tasks": {"search": [DIGITS], "select": [DIGITS], "final": [DIGITS]},
    "fitness": {"metric": "final_accuracy", "complexity_penalty": 0.002},
    "baselines": [],
    "generalization": {"at_end": False},
    "budget": {"generations": 4},
}


def _run(cfg, state=None, search=None):
    s = search or Search(cfg)
    state = s.init() if state is None else state
    lines = []
    while not s.done(state):
        state, ms = s.steps(state)
        lines += ms
    return s, state, lines


def _same_state(a, b):
    for x, y in zip(jax.tree.leaves(a.strategy), jax.tree.leaves(b.strategy)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(jax.random.key_data(a.key), jax.random.key_data(b.key))
    np.testing.assert_array_equal(a.archive.fitness, b.archive.fitness)
    assert a.archive.hashes == b.archive.hashes
    assert a.select == b.select and a.generation == b.generation


def _lines(lines):
    return [{k: v for k, v in m.items() if k not in ("wall_time_s", "candidates_per_s", "generations_per_call")}
            for m in lines]


@pytest.mark.parametrize("which", ["wide", "spiking"])
def test_traced_complexity_is_the_numpy_complexity(which):
    from plasticity_search.rules.known import SPIKING_SPACE
    spaces = {
        "quickstart": Space.from_dict(CFG["space"]),
        "wide": Space.from_dict({"post_vars": ["y", "a", "e"], "pre_vars": ["x", "xbar"], "global_vars": ["r"],
                                 "ops": ["add", "sub", "mul", "cmul", "square", "tanh", "div"],
                                 "syn": ["1", "w", "w2"], "n_post": 4, "n_pre": 3, "n_terms": 5}),
        "spiking": SPIKING_SPACE,
    }
    space = spaces[which]
    pop = np_prog(mutation.random_population(jax.random.key(0), space, 400, 3))
    kids = np_prog(jax.vmap(lambda k, p: mutation.mutate(k, p, space))(jax.random.split(jax.random.key(1), 400), pop))
    for progs in (pop, kids):
        want = complexities(progs, space)
        got = np.asarray(jax.jit(lambda p: complexities_traced(p, space))(progs))
        np.testing.assert_array_equal(got, want)
        assert len(set(want.tolist())) > 3


SPIKING = {"task": "spiking_teacher", "seeds": 2, "steps": 100}
SPIKING_OVER = {"space.post_vars": ["sy", "ty", "v", "e"], "space.pre_vars": ["sx", "tx"],
                "space.ops": ["add", "sub", "mul", "cmul"], "space.n_post": 2, "network": {},
                "tasks.search": [SPIKING], "tasks.select": [SPIKING], "tasks.final": [SPIKING],
                "fitness.metric": "neg_rmse"}


@pytest.mark.parametrize("model", ["rate", "spiking"])
def test_device_fitness_is_the_host_evaluators_and_keys_are_the_host_paths(model):
    """The children a call evaluated, scored again by the host path's evaluator: the same fitness to float32
    precision (the device averages instances in float32, the host in float64); the search key after the call is
    the one the host path's generations would hold (key, k_step, _ = split(key, 3) per generation)."""
    s = Search(load_config(CFG, SPIKING_OVER if model == "spiking" else None))
    st = s.init()
    key0 = st.key
    key, _, children, fit, cplx, _, _ = s.device_generations.run(st.key, st.strategy, 2)
    host, _ = s.evaluator("search").evaluate(Program(*[x[1] for x in children]))
    assert np.isfinite(host).sum() > 8
    np.testing.assert_array_equal(np.isfinite(fit[1]), np.isfinite(host))
    ok = np.isfinite(host)
    np.testing.assert_allclose(fit[1][ok], host[ok], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(cplx[1], complexities(Program(*[x[1] for x in children]), s.space))
    want = key0
    for _ in range(2):
        want = jax.random.split(want, 3)[0]
    np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(want))


def test_grouping_of_generations_into_calls_changes_nothing_but_the_select_rescoring():
    """Five generations as calls of 2 + 2 + 1 and of 5: the same populations, keys, archive and per-generation
    lines (the select re-scoring runs once per call, so only it may differ; here compared at the calls' common
    end). A search stopped after a call, its state written and read back, continues exactly."""
    cfg2 = load_config(CFG, {"budget.generations": 5})
    _, a, lines_a = _run(cfg2)
    assert [m["generation"] for m in lines_a] == [1, 2, 3, 4, 5]
    assert [m["generations_per_call"] for m in lines_a] == [2, 2, 2, 2, 1]
    cfg5 = load_config(CFG, {"budget.generations": 5, "search.generations_per_call": 5})
    _, b, lines_b = _run(cfg5)
    for x, y in zip(jax.tree.leaves(a.strategy), jax.tree.leaves(b.strategy)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(a.archive.fitness, b.archive.fitness)
    assert a.archive.hashes == b.archive.hashes
    keep = ("best_fitness", "median_fitness", "best_fitness_ever", "best_complexity", "n_evaluated")
    assert [{k: m[k] for k in keep} for m in lines_a] == [{k: m[k] for k in keep} for m in lines_b]
    assert lines_a[-1]["n_evaluated"] == 32 + 5 * 16 and lines_a[-1]["fec_hit_rate"] == 0.0
    # stopped after the first call, written as a checkpoint and read back
    s = Search(cfg2)
    st = s.init()
    st, first = s.steps(st)
    arrays, meta = state_to_tree(st)
    restored = state_from_tree({k: np.array(v) for k, v in arrays.items()}, json.loads(json.dumps(meta)))
    s2 = Search(cfg2)
    s2.check_state(restored)
    _, c, rest = _run(cfg2, restored, s2)
    _same_state(a, c)
    assert _lines(first + rest) == _lines(lines_a)


@pytest.mark.parametrize("override, needle", [
    ({"search.strategy": "hybrid"}, "regularized evolution only"),
    ({"search.fec": True}, "search.fec: false"),
    ({"search.hurdle": {"steps": 10, "seeds": 1, "threshold": 0.1}}, "search.hurdle: null"),
    ({"search.restart_after": 3}, "search.restart_after: null"),
    ({"budget.devices": 1}, "budget.devices: null"),
    ({"budget.chunk": 8}, "16 children in one call"),
    ({"search.generations_per_call": 0}, ">= 1"),
])
def test_configs_it_cannot_run_are_refused_in_one_line(override, needle):
    with pytest.raises(ConfigError) as e:
        load_config(CFG, override)
    msg = str(e.value)
    assert "search.generations_per_call" in msg and needle in msg and "\n" not in msg


def test_several_processes_are_refused():
    from plasticity_search.search.config import generations_per_call_refusal
    cfg = load_config(CFG)
    assert generations_per_call_refusal(cfg) is None
    assert generations_per_call_refusal(cfg, processes=2) == "runs in one process"


def test_run_writes_a_line_per_generation_and_an_extension_is_the_longer_run(tmp_path):
    """Through the command line: a run of 4 generations in calls of 2 writes 4 metrics lines and a checkpoint after
    each call; extended to 5 generations (calls end at multiples of K, so it makes the calls of a run of 5: 2 + 2 +
    1) it writes the metrics lines and the hall of fame of the run of 5, select re-scoring included."""
    import yaml

    from plasticity_search.cli import main

    def run(gens, d, *extra):
        path = tmp_path / f"c{gens}.yaml"
        path.write_text(yaml.safe_dump(dict(CFG, budget={"generations": gens, "checkpoint_every_s": 0})))
        assert main(["run", str(path), "--out", str(d), "--wandb", "disabled", "--no-curves", *extra]) == 0

    def read(d):
        lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        hof = json.loads((d / "hall_of_fame.json").read_text())
        hof["info"] = {k: v for k, v in hof["info"].items() if "time" not in k and "wall" not in k}
        return _lines(lines), lines, hof

    d = tmp_path / "run"
    run(4, d)
    _, lines, _ = read(d)
    assert [m["generation"] for m in lines] == [1, 2, 3, 4]
    assert [m["generations_per_call"] for m in lines] == [2, 2, 2, 2]
    assert [p.name for p in sorted((d / "checkpoints").iterdir())] == ["ckpt-00000002.npz", "ckpt-00000004.npz"]
    assert json.loads((d / "run.json").read_text())["generations_done"] == 4
    assert main(["run", str(d), "--resume", "--generations", "5", "--wandb", "disabled", "--no-curves"]) == 0
    d5 = tmp_path / "run5"
    run(5, d5)
    ext, ext_raw, ext_hof = read(d)
    straight, _, straight_hof = read(d5)
    assert [m["generation"] for m in ext_raw] == [1, 2, 3, 4, 5]
    assert ext == straight
    assert ext_hof["entries"] == straight_hof["entries"] and ext_hof["best"] == straight_hof["best"]


def test_refused_on_the_command_line_with_exit_2(tmp_path, capsys):
    import yaml

    from plasticity_search.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(dict(CFG, search=dict(CFG["search"], fec=True))))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--wandb", "disabled"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search.generations_per_call" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "run").exists()
