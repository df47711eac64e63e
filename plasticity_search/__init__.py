"""plasticity-search: discover local synaptic plasticity rules with JAX.

Public API (kept small): the rule language in :mod:`plasticity_search.rules`, tasks in
:mod:`plasticity_search.tasks`, exports in :mod:`plasticity_search.export`.
"""
__version__ = "0.1.0"
