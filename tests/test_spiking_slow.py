"""Known-answer spiking checks that take minutes on 2 cores (run with ``python -m pytest -m slow``)."""
import importlib.util
import json
import os

import numpy as np
import pytest

from plasticity_search.rules.resolve import resolve_rule
from plasticity_search.spiking import analytic_window, evaluate_rule, pairing_dw

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_r_stdp_earns_more_reward_than_chance():
    """Chance (a policy that ignores the pattern) is 0; a fixed random network spreads by about +-90 per seed."""
    res, _ = evaluate_rule(resolve_rule("r_stdp"), "spiking_reward", seeds=5)
    print("r_stdp spiking_reward", res)
    assert res["total_reward"]["mean"] > 80
    assert res["late_accuracy"]["mean"] > 0.58


def test_eprop_on_spiking_digits_well_above_chance():
    res, _ = evaluate_rule(resolve_rule("eprop"), "spiking_digits", seeds=3)
    print("eprop spiking_digits", res)
    assert res["final_accuracy"]["mean"] > 0.45          # chance 0.1
    assert res["online_accuracy"]["mean"] > 0.3


def test_eprop_on_spiking_yinyang_above_chance():
    res, _ = evaluate_rule(resolve_rule("eprop"), "spiking_yinyang", seeds=3)
    print("eprop spiking_yinyang", res)
    assert res["final_accuracy"]["mean"] > 0.6            # chance 1/3


def test_stdp_add_pattern_detection_five_seeds():
    res, _ = evaluate_rule(resolve_rule("stdp_add"), "stdp_pattern", seeds=5)
    print("stdp_add stdp_pattern", res)
    assert res["snr"]["mean"] > res["snr_before"]["mean"] + 1.0


def test_triplet_pairing_window():
    off = np.arange(-100, 101, 5.0)
    sim = pairing_dw(resolve_rule("stdp_triplet"), off)
    ana = analytic_window("stdp_triplet", off)
    nz = ana != 0
    assert np.max(np.abs(sim[nz] - ana[nz]) / np.abs(ana[nz])) < 0.01


def test_bench_script_runs(capsys):
    spec = importlib.util.spec_from_file_location("bench_spiking", os.path.join(ROOT, "scripts", "bench_spiking.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--json", "--pop", "4", "--steps", "100", "--repeats", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    names = {r["variant"] for r in res["rows"]}
    assert names == set(mod.VARIANTS) == {"interpreted", "interpreted_reference", "interpreted_poly",
                                          "interpreted_stdp", "handwritten_stdp"}
    assert all(r["candidate_steps_per_s"] > 0 for r in res["rows"])
