"""NESTML export for NEST: the synapse comes with a neuron to pair it with and the code generator options NESTML
needs (neuron_synapse_pairs with post_ports, weight_variable, an explicit nest_version); NESTML generates C++ from
them without importing NEST; the module builds against the pip wheel nest-simulator and reproduces our pairing
protocol in NEST (slow: generating and compiling take minutes)."""
import importlib.util
import json
import os
import subprocess

import numpy as np
import pytest

from plasticity_search.export import export
from plasticity_search.export import nestml as nx
from plasticity_search.rules.resolve import resolve_rule

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISCOVERED_JSON = os.path.join(ROOT, "tests", "data", "stdp_pattern_discovered.json")
RULES = {"stdp_add": "stdp_add", "stdp_mult": "stdp_mult", "stdp_triplet": "stdp_triplet",
         "discovered": DISCOVERED_JSON}


def test_files_and_options_name_what_the_models_declare():
    files = nx.nest_files("stdp_mult")
    assert set(files) == {"stdp_mult_synapse.nestml", "iaf_psc_exp_neuron.nestml", "codegen_opts.json"}
    syn, neuron = files["stdp_mult_synapse.nestml"], files["iaf_psc_exp_neuron.nestml"]
    assert syn == export("stdp_mult", "nestml")
    assert nx.model_names(syn) == ["stdp_mult_synapse"] and nx.model_names(neuron) == ["iaf_psc_exp_neuron"]
    opts = json.loads(files["codegen_opts.json"])
    (pair,) = opts["neuron_synapse_pairs"]
    assert pair["neuron"] == "iaf_psc_exp_neuron"
    assert pair["synapses"] == {"stdp_mult_synapse": {"post_ports": ["post_spikes"]}}
    assert opts["weight_variable"] == {"stdp_mult_synapse": "w"} and opts["nest_version"] == "v3.10.0"
    # the port and the weight are really declared by the synapse, the neuron emits spikes for the post port
    assert "        post_spikes <- spike" in syn and "        w real = " in syn
    assert "emit_spike()" in neuron and "exc_spikes <- excitatory spike" in neuron
    assert nx.paired_model_names("stdp_mult_synapse") == (
        "iaf_psc_exp_neuron_nestml__with_stdp_mult_synapse_nestml",
        "stdp_mult_synapse_nestml__with_iaf_psc_exp_neuron_nestml")
    # several synapses: one pair (one neuron copy) each
    two = nx.codegen_options(["a_synapse", "b_synapse"])
    assert [list(p["synapses"]) for p in two["neuron_synapse_pairs"]] == [["a_synapse"], ["b_synapse"]]
    with pytest.raises(nx.NestBuildError, match="nest_version"):
        nx.codegen_options("a_synapse", nest_version="3.10; rm")
    with pytest.raises(nx.NestBuildError, match="unknown neuron"):
        nx.nest_files("stdp_add", neuron="hh_neuron")


def test_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    missing = tmp_path / "none.nestml"
    assert nx.main([str(missing)]) == 2
    two = tmp_path / "two.nestml"
    two.write_text(export("stdp_add", "nestml") + "\n" + nx.PAIRED_NEURONS["iaf_psc_exp_neuron"])
    assert nx.main([str(two), "--generate-only"]) == 2
    bad_module = tmp_path / "ok.nestml"
    bad_module.write_text(export("stdp_add", "nestml"))
    assert nx.main([str(bad_module), "--generate-only", "--module", "x;y"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err), err
    assert "no such file" in err[0] and "exactly one" in err[1] and "module name" in err[2]


def _generate(specs, tmp_path, module="psgenmodule"):
    paths, names = [], []
    for spec in specs:
        rule = resolve_rule(spec)
        files = nx.nest_files(rule)
        for name, text in files.items():
            if name.endswith(".nestml"):
                (tmp_path / name).write_text(text)
        names.append(nx.synapse_name(rule))
        paths.append(str(tmp_path / f"{names[-1]}.nestml"))
    paths.append(str(tmp_path / "iaf_psc_exp_neuron.nestml"))
    out = nx.generate_cpp(paths, str(tmp_path / "target"), module, nx.codegen_options(names))
    return names, out


def _no_version_detection(monkeypatch):
    """NESTML must not start NEST to find its version: fail if it tries."""
    from pynestml.codegeneration.nest_tools import NESTTools

    def refuse(*a, **k):
        raise AssertionError("NESTML tried to detect the NEST version")
    monkeypatch.setattr(NESTTools, "detect_nest_version", classmethod(refuse))


@pytest.mark.slow
def test_generates_cpp_without_nest(tmp_path, monkeypatch):
    """One rule (12-35 s on 2 cores: slow, to keep the default run in budget)."""
    pytest.importorskip("pynestml", reason="nestml not installed (pip install -e '.[nestml]')")
    _no_version_detection(monkeypatch)
    (name,), out = _generate(["stdp_add"], tmp_path)
    neuron, synapse = nx.paired_model_names(name)
    assert {f"{neuron}.h", f"{neuron}.cpp", f"{synapse}.h", "psgenmodule.cpp", "CMakeLists.txt"} <= set(out), out
    header = (tmp_path / "target" / f"{synapse}.h").read_text()
    assert "0.01" in header and "-0.0105" in header          # the rule's constants c0, c1 reach the C++
    assert "ty" in (tmp_path / "target" / f"{neuron}.h").read_text()   # the post trace moved into the neuron


@pytest.mark.slow
def test_generates_cpp_for_known_and_discovered_rules(tmp_path, monkeypatch):
    """stdp_add, stdp_mult, stdp_triplet and a rule found by a spiking search, in one module (~3 min)."""
    pytest.importorskip("pynestml", reason="nestml not installed (pip install -e '.[nestml]')")
    _no_version_detection(monkeypatch)
    names, out = _generate(list(RULES.values()), tmp_path, "psallmodule")
    assert len(set(names)) == 4
    for name in names:
        neuron, synapse = nx.paired_model_names(name)
        assert {f"{neuron}.h", f"{neuron}.cpp", f"{synapse}.h"} <= set(out), (name, out)


def test_pip_nest_config_points_at_the_wheel(tmp_path):
    """The written nest-config names the wheel's headers and string ABI (no NEST import, no build)."""
    pytest.importorskip("nest", reason="NEST not installed (pip install nest-simulator)")
    try:
        cfg = nx.pip_nest_config(str(tmp_path))
    except nx.NestBuildError as exc:    # no compiler or headers here: the error names the packages
        assert "apt-get install" in str(exc)
        return
    run = lambda arg: subprocess.run([cfg, arg], capture_output=True, text=True, check=True).stdout.strip()  # noqa
    inc = run("--includes")[2:]
    assert os.path.isfile(os.path.join(inc, "config.h")) and os.path.isfile(os.path.join(inc, "stdp_synapse.h"))
    assert run("--version") == nx.nest_wheel_version()[1:]
    assert run("--prefix") == str(tmp_path) and run("--libs") == ""
    assert ("-D_GLIBCXX_USE_CXX11_ABI=0" in run("--cflags")) == nx._old_string_abi(
        os.path.join(os.path.dirname(os.path.dirname(inc)), "nestkernel_api.so"))


@pytest.fixture(scope="module")
def built_module(tmp_path_factory):
    pytest.importorskip("pynestml", reason="nestml not installed")
    pytest.importorskip("nest", reason="NEST not installed (pip install nest-simulator)")
    spec = importlib.util.spec_from_file_location("nest_parity", os.path.join(ROOT, "scripts", "nest_parity.py"))
    parity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(parity)
    out = str(tmp_path_factory.mktemp("nest_module"))
    try:
        built = parity.build_rules_module({k: resolve_rule(v) for k, v in RULES.items()}, out, "pstestmodule")
    except nx.NestBuildError as exc:
        if "apt-get install" in str(exc):
            pytest.skip(str(exc))
        raise
    return parity, built


# stdp_triplet's LTP term reads the post trace ty2 in onReceive(post_spikes); in the NEST module (ty2 moved into the
# paired neuron by NESTML) a single pair gives LTP = 0.5*tx instead of A2p*tx = 5e-10*tx (BENCHMARKS.md, issue 18)
_TRIPLET = pytest.mark.xfail(strict=True, reason="post trace read in the post handler differs in NESTML's pairing")


@pytest.mark.slow
@pytest.mark.parametrize("label", [pytest.param(k, marks=_TRIPLET) if k == "stdp_triplet" else k for k in RULES])
def test_module_reproduces_our_pairing_protocol_in_nest(built_module, label):
    """The Brian2 parity test's offsets at dt = 0.1 ms, in NEST with the built module: every offset's weight
    change within 5% of our simulator's (max error below 1e-3 of the largest change)."""
    parity, built = built_module
    from plasticity_search.spiking.pairing import pairing_dw
    rule = resolve_rule(RULES[label])
    kw = parity.MODULE_OVERRIDES.get(label, {})
    offsets = parity.PAIRING_OFFSETS
    run = parity.nest_module_pairing(built, label, offsets, 0.1, 1.0, params=kw)
    assert np.allclose(run["realized"], offsets, atol=1e-6), np.c_[offsets, run["realized"]]
    ours = parity.ours_for_module_run(rule, run, 0.1, **kw)
    agg, per_offset = parity.rel_error(run["dw"], ours)
    assert per_offset <= 0.05 and agg <= 1e-3, (label, agg, per_offset, np.c_[offsets, ours, run["dw"]])
    if label != "discovered":   # no pre-spike-only term: the flush spike changes nothing, this is pairing_dw
        assert np.allclose(ours, pairing_dw(rule, offsets, **kw), rtol=1e-4, atol=1e-7)
