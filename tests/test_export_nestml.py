"""The NESTML export passes NESTML's own parser and context checks (``--target_platform NONE``)."""
import jax
import numpy as np
import pytest

pytest.importorskip("pynestml", reason="nestml not installed (pip install -e '.[nestml]')")

from plasticity_search.export import export  # noqa: E402
from plasticity_search.export.nestml import validate  # noqa: E402
from plasticity_search.rules import RuleError, Space, index, random_population  # noqa: E402
from plasticity_search.rules.resolve import ResolvedRule  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SPECS = {
    "stdp_add": "stdp_add", "stdp_mult": "stdp_mult", "stdp_triplet": "stdp_triplet", "r_stdp": "r_stdp",
    "vogels": "vogels",
    "discovered": "0.004*sy*tx*(1 - w) - 0.003*ty*sx + 0.001*sy*tx2*ty2",
    "functions": ("0.01*sign(tx - 0.5)*sy + 0.002*sqrt(abs(ty))*sx*w + 0.003*max(tx2, 0.2)*sx*ty - 1e-5*w*(r - rbar)"
                  " + 0.004*step(ty - 0.1)*sx*tx + 0.002*sy*log(1 + tx) + 0.001*min(ty2, 0.5)*sx"
                  " + 0.001*sy*tanh(tx)*exp(-ty2) + 0.002*sx/(1 + ty)"),
    "eligibility": "dw = 0.01*elig*tx - 0.00001*elig*w + 0.1*sy*elig; delig = 0.1*sy*tx - 0.05*sx*ty - 0.001*ty*tx",
}


@pytest.mark.parametrize("key", list(SPECS))
def test_nestml_model_validates(key):
    text = export(SPECS[key], "nestml")
    assert text.count("model ") == 1 and "onReceive(pre_spikes):" in text and "emit_spike(w)" in text
    assert validate(text) == [], text


def test_validator_catches_errors():
    text = export("stdp_add", "nestml").replace("c0*tx", "c0*tx*undefined_name")
    errors = validate(text)
    assert errors and any("undefined_name" in e for e in errors)


@pytest.mark.slow
def test_random_spiking_programs_validate():
    space = Space(name="synapse", post_vars=("sy", "ty", "ty2"), pre_vars=("sx", "tx", "tx2"),
                  global_vars=("r", "rbar"), syn=("1", "w", "w2", "sign_w", "elig", "w_elig"), elig=True,
                  n_post=3, n_pre=3, n_terms=4)
    pop = random_population(jax.random.PRNGKey(5), space, 10, max_init_terms=4)
    checked = 0
    for i in range(10):
        rule = ResolvedRule(index(pop, i), space, f"random_{i}", "", "spiking")
        try:
            text = export(rule, "nestml")
        except RuleError as exc:  # the only refusal possible here: a same-step sx*sy term
            assert "same step" in str(exc)
            continue
        assert validate(text) == [], text
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("v", [5e-10, -5e-10, 1e-10, 2.5e-20, 7.5e-10, 1e10, 3e20, 0.0062, 1e-5, 16.8, 1.0, 0.007])
def test_constants_reach_the_cpp_as_their_value(v):
    """NESTML 9 writes float literals into the C++ with ConstantPrinter (``f"{v:#.9g}".rstrip("0")``), which drops
    the trailing zeros of an exponent too: 5e-10 -> 5.00000000e-1. nestml_float writes those as (ten_times / 10),
    whose literal survives; every other value stays a plain literal."""
    from pynestml.codegeneration.printers.constant_printer import ConstantPrinter

    from plasticity_search.export.nestml import nestml_float

    text = nestml_float(v)
    scaled = text.startswith("(")
    literal = float(text[1:-len(" / 10)")] if scaled else text)
    # NESTML parses a minus sign as an operator: the printer sees the magnitude
    printed = float(ConstantPrinter().print_constant(abs(literal))) * np.sign(literal) / (10 if scaled else 1)
    assert printed == pytest.approx(v, rel=1e-7), (v, text, printed)
    exponent = int(f"{abs(v):e}".split("e")[1])
    assert scaled == (exponent != 0 and exponent % 10 == 0), text


def test_stdp_triplet_exports_its_constants_and_synaptic_trace():
    text = export("stdp_triplet", "nestml")
    assert "        c3 real = (5e-09 / 10)    # post instruction 1 (cadd)" in text
    assert "ty2_syn real = 0.0" in text and "c0*tx*(c2*ty2_syn + c3)" in text
    assert validate(text) == [], text
