"""Networks trained by plasticity rules (rate MLPs with feedback pathways; spiking layers live in ``spiking``)."""
from .rate import ACTIVATIONS, FEEDBACKS, INITS, NetworkConfig, NetworkError, RateNet, default_network, parse_network_spec

__all__ = ["NetworkConfig", "RateNet", "parse_network_spec", "default_network", "NetworkError", "ACTIVATIONS", "FEEDBACKS", "INITS"]
