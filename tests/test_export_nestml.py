"""The NESTML export passes NESTML's own parser and context checks (``--target_platform NONE``)."""
import jax
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
