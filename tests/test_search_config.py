"""Search configs: every shipped search space loads, defaults are written out, bad input is a one-line error naming
the key (before any compute)."""
import glob
import json
import os

import pytest
import yaml

from plasticity_search.search import ConfigError, load_config

ROOT = os.path.join(os.path.dirname(__file__), "..")
SPACES = sorted(glob.glob(os.path.join(ROOT, "search_spaces", "*.yaml")))
BASE = {"tasks": {"search": [{"task": "pca", "seeds": 2, "steps": 50}]},
        "space": {"post_vars": ["y"], "pre_vars": ["x"], "ops": ["add", "mul"], "syn": ["1", "w"],
                  "n_post": 1, "n_pre": 0, "n_terms": 2}}


def test_shipped_search_spaces():
    names = {os.path.basename(p) for p in SPACES}
    assert {"quickstart.yaml", "oja.yaml", "delta.yaml", "st_pool.yaml", "st_pool_metagrad.yaml",
            "volterra_oja.yaml"} <= names


@pytest.mark.parametrize("path", SPACES, ids=os.path.basename)
def test_search_space_loads_and_round_trips(path):
    cfg = load_config(path)
    d = cfg.to_dict()
    again = load_config(json.loads(json.dumps(d)))          # through JSON: plain data only
    assert again == cfg and again.to_dict() == d
    assert load_config(yaml.safe_load(yaml.safe_dump(d))) == cfg
    # every default is written out
    assert {"name", "seed", "space", "search", "coefficients", "hybrid", "spiking", "network", "tasks", "fitness",
            "budget", "hall_of_fame", "baselines", "generalization"} == set(d)
    assert d["fitness"]["metric"] and "restart_after" in d["search"]
    if cfg.model == "rate":
        assert "lr" in d["network"]
    else:                        # spiking tasks bring their own network; the rules' settings are in `spiking`
        assert d["network"] == {} and "w_bounds" in d["spiking"]
    assert cfg.generations == d["budget"]["generations"] and cfg.seed == d["seed"]


def test_quickstart_space_section_keeps_its_shape():
    with open(os.path.join(ROOT, "search_spaces", "digits_online.yaml")) as f:
        space = yaml.safe_load(f)["space"]
    from plasticity_search.rules import Space
    s = Space.from_dict(space)
    assert s.post_vars == ("y", "a", "e", "ybar", "theta") and s.n_terms == 4


def test_overrides_and_shorthands():
    cfg = load_config({**BASE, "tasks": {"search": "pca", "final": ["pca"]}},
                      {"seed": 3, "budget.generations": 5, "search.population": 20})
    assert (cfg.seed, cfg.generations, cfg.search.population) == (3, 5, 20)
    assert cfg.tasks.search[0].task == "pca" and cfg.tasks.final[0].seed_list == (0, 1)
    assert cfg.fitness.metric == "pc1_alignment"           # default for the pca objective
    assert cfg.network["hidden"] == [] and cfg.network["lr"] == 0.005


def _deep(d, dotted, value):
    import copy
    d = copy.deepcopy(d)
    node = d
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return d


@pytest.mark.parametrize("dotted,value,key,needle", [
    ("frobnicate", 1, "frobnicate", "unknown key"),
    ("search.frobnicate", 1, "search.frobnicate", "unknown key"),
    ("search.population", -4, "search.population", "must be >= 2, got -4"),
    ("search.population", "many", "search.population", "expected int"),
    ("search.population", 2.5, "search.population", "expected int"),
    ("search.fec", "yes", "search.fec", "expected bool"),
    ("search.strategy", "annealing", "search.strategy", "unknown strategy"),
    ("search.mutation.teleport", 0.1, "search.mutation.teleport", "unknown mutation"),
    ("search.children", 100, "search.children", "must be <="),
    ("search.seed_rules", ["e*x"], "search.seed_rules[0]", "not available"),
    ("space.ops", ["add", "teleport"], "space.ops", "unknown op 'teleport'"),
    ("space.post_vars", ["y", "banana"], "space.post_vars", "unknown variable 'banana'"),
    ("space.post_vars", ["x"], "space.post_vars", "pre quantity"),
    ("space.post_vars", ["sy"], "space.post_vars", "not available in rate networks"),
    ("space.syn", ["1", "elig"], "space.syn", "needs an eligibility trace"),
    ("space.syn", ["1", "w3"], "space.syn", "unknown synapse factor"),
    ("space.n_terms", 0, "space.n_terms", "must be >= 1"),
    ("tasks.search", [{"task": "imagenet"}], "tasks.search[0].task", "unknown task"),
    ("tasks.search", [{"task": "pca", "seeds": 0}], "tasks.search[0].seeds", "must be >= 1"),
    ("tasks.search", [{"task": "pca", "sedes": 2}], "tasks.search[0].sedes", "unknown key"),
    ("tasks.search", [], "tasks.search", "at least one task"),
    ("fitness.metric", "final_accuracy", "fitness.metric", "not a metric of task pca"),
    ("fitness.metric", "weight_norm", "fitness.metric", "no direction"),
    ("network.activation", "swish", "network.activation", "unknown activation"),
    ("network.hidden", "big", "network.hidden", "expected"),
    ("network.widht", 3, "network.widht", "unknown key"),
    ("coefficients.algorithm", "NoSuchES", "coefficients.algorithm", "unknown or unsupported evosax algorithm"),
    # distribution-based, but not built from a population size and a solution alone: a traceback before
    ("coefficients.algorithm", "RandomSearch", "coefficients.algorithm", "unknown or unsupported evosax algorithm"),
    ("coefficients.algorithm", "SV_CMA_ES", "coefficients.algorithm", "unknown or unsupported evosax algorithm"),
    # fewer steps than one mini-batch trained nothing, silently
    ("network.batch_size", 64, "tasks.search[0].steps", "50 steps make no mini-batch of network.batch_size 64"),
    ("coefficients.structure", "frobnicate", "coefficients.structure", "unknown name"),
    ("coefficients.optimizer", "newton", "coefficients.optimizer", "unknown optimizer"),
    ("budget.generations", -1, "budget.generations", "must be >= 0"),
    ("budget.time_limit_s", 0, "budget.time_limit_s", "must be > 0"),
    ("hall_of_fame.choose", "vibes", "hall_of_fame.choose", "unknown rule"),
])
def test_invalid_config_names_the_key(dotted, value, key, needle):
    _assert_one_line_error(_deep(BASE, dotted, value), key, needle)


def _assert_one_line_error(cfg: dict, key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    msg = str(exc.value)
    assert msg.startswith(key + ":"), msg
    assert needle in msg and "\n" not in msg


SPIKING = {"tasks": {"search": [{"task": "spiking_teacher", "seeds": 1, "steps": 100}]},
           "space": {"post_vars": ["sy", "e"], "pre_vars": ["tx"], "ops": ["add", "mul"], "syn": ["1", "w"],
                     "n_post": 1, "n_pre": 0, "n_terms": 2}}


def test_spiking_search_config():
    cfg = load_config(SPIKING)
    assert cfg.model == "spiking" and cfg.fitness.metric == "neg_rmse" and cfg.network == {}
    pat = load_config(_deep(_deep(SPIKING, "tasks.search", [{"task": "stdp_pattern"}]), "spiking.w_bounds", [0, 1]))
    assert pat.fitness.metric == "snr"
    assert pat.spiking_eval_config() == {"feedback": "fa", "rule_defaults": {"w_bounds": [0.0, 1.0]}}


@pytest.mark.parametrize("dotted,value,key,needle", [
    ("tasks.select", [{"task": "pca"}], "tasks.select[0].task", "one model per search"),
    ("network.hidden", [8], "network.hidden", "spiking tasks bring their own network"),
    ("space.post_vars", ["y"], "space.post_vars", "not available in spiking networks"),
    ("spiking.w_bounds", [1.0, 0.0], "spiking.w_bounds", "lo < hi"),
    ("spiking.tau_plus", -5.0, "spiking.tau_plus", "must be > 0"),
    ("spiking.feedback", "telepathy", "spiking.feedback", "unknown feedback"),
    ("search.strategy", "metagrad", "search.strategy", "metagrad differentiates through rate networks"),
    ("fitness.metric", "snr", "fitness.metric", "not a metric of task spiking_teacher"),
    ("fitness.metric", "neg_rmse_before", "fitness.metric", "no direction"),
    ("search.seed_rules", ["oja"], "search.seed_rules[0]", "rate rule"),
])
def test_invalid_spiking_config_names_the_key(dotted, value, key, needle):
    _assert_one_line_error(_deep(SPIKING, dotted, value), key, needle)


def test_spiking_coefficient_search():
    es = _deep(_deep(SPIKING, "search.strategy", "evosax"), "coefficients.structure", "stdp_add")
    cfg = load_config(es)
    assert cfg.coefficients.structure == "stdp_add" and cfg.model == "spiking"
    _assert_one_line_error(_deep(es, "coefficients.structure", "oja"), "coefficients.structure",
                           "'oja' is a rate rule; this search's tasks are spiking")
    _assert_one_line_error(_deep(_deep(BASE, "search.strategy", "evosax"), "coefficients.structure", "stdp_add"),
                           "coefficients.structure", "'stdp_add' is a spiking rule; this search's tasks are rate")


def test_spiking_section_with_rate_tasks_is_an_error():
    with pytest.raises(ConfigError, match=r"^spiking: applies to spiking tasks only"):
        load_config(_deep(BASE, "spiking.lr", 0.1))


def test_strategy_needs_structure_and_sizes():
    with pytest.raises(ConfigError, match=r"^coefficients.structure: strategy 'evosax' needs a structure"):
        load_config(_deep(BASE, "search.strategy", "evosax"))
    with pytest.raises(ConfigError, match=r"^coefficients.init: expected 3 values"):
        load_config(_deep(_deep(_deep(BASE, "search.strategy", "evosax"), "coefficients.structure",
                                "shervani_tabar"), "coefficients.init", [1.0]))


def test_an_evosax_algorithm_gets_a_population_it_takes():
    """Open_ES (PGPE, ARS, ...) needs an even population: an odd one crashed after the run directory was written
    (found by a config audit); now it is the population's key, before anything runs."""
    evo = _deep(_deep(_deep(BASE, "search.strategy", "evosax"), "coefficients.structure", "oja"),
                "coefficients.algorithm", "Open_ES")
    _assert_one_line_error(_deep(evo, "search.population", 5), "search.population", "Population size must be even")
    load_config(_deep(evo, "search.population", 6))
    hybrid = _deep(_deep(_deep(BASE, "search.strategy", "hybrid"), "coefficients.algorithm", "Open_ES"),
                   "hybrid.population", 5)
    _assert_one_line_error(hybrid, "hybrid.population", "Open_ES does not take a population of 5")


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n  space: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match=r"^search.population: must be >= 2"):
        load_config(os.path.join(ROOT, "search_spaces", "oja.yaml"), {"search.population": -4})


def test_scientific_notation_is_a_number(tmp_path):
    """``lr: 1e-3`` (no dot in the mantissa) is a float, as in YAML 1.2 and as a researcher writes it; PyYAML's
    YAML 1.1 read it as the string '1e-3' and the config refused it. Quoted, it stays a string."""
    from plasticity_search.search.config import load_yaml
    assert load_yaml("a: 1e-3\nb: [0, 2E5, -1.5e-2, 1.0e-3]\nc: '1e-3'\nd: x1e3") == {
        "a": 0.001, "b": [0, 200000.0, -0.015, 0.001], "c": "1e-3", "d": "x1e3"}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({**BASE, "network": {"lr": 0.5}}).replace("lr: 0.5", "lr: 1e-3"))
    assert "lr: 1e-3" in p.read_text()
    assert load_config(str(p)).network["lr"] == pytest.approx(1e-3)


def test_a_string_that_looks_like_a_number_survives_a_config_dump():
    """A run writes its config with dump_yaml and reads it back on resume: '1e3' (a name, a seed rule) stays the
    string it was, while 1e-3 stays a number."""
    from plasticity_search.runs.configs import dump_yaml
    from plasticity_search.search.config import load_yaml
    d = {"name": "1e3", "network": {"lr": 1e-3}, "search": {"seed_rules": ["1e-3", "2E5", ".5e3", "e5"]}}
    assert load_yaml(dump_yaml(d)) == d


def test_control_characters_in_a_config_are_refused():
    """A run writes its config's names and baselines into its directory, whose readers refuse escape sequences;
    tab and newline (a multi-line formula) are fine."""
    from plasticity_search.search.config import load_yaml
    with pytest.raises(ConfigError, match="control character"):
        load_yaml('name: "a\\x1b[2Jb"')
    assert load_yaml('name: "a\\tb"\nfixed: |\n  e*x\n  + y') == {"name": "a\tb", "fixed": "e*x\n+ y"}
