"""Shared numerics of the FastLRNR solve service (numpy only, no torch).

The public API, by topic (the math of each is in docs/method.md):

- the PDE family: ``PdeFamily`` (what a family declares), ``FAMILIES`` (by name: ``CDR_FAMILY``,
  ``ALLEN_CAHN_FAMILY``), ``Domain``, ``DOMAINS``, ``TEST_DOMAINS``, ``residual`` (CDR's),
  ``interior_points``, ``uniform_grid``, ``standard_grid``, ``ParameterError``; the reference
  solver ``solve_reference``, ``solve_reference_batch``;
- the model: ``LRNRWeights``, ``lrnr_forward``, ``lrnr_jets``, ``HyperWeights``, ``hyper_forward``;
- the fast phase: ``FastPhaseModel``, ``FastPhaseSettings``, ``FastPhaseResult``,
  ``run_fast_phase`` (over ``JetChain``: ``exact_chain`` or a FastLRNR ``ReducedOperators``,
  built by ``build_fastlrnr``);
- trust: ``ErrorProxy``, ``linearised_error`` (the error a residual implies), ``ErrorModel``,
  ``fit_error_model`` (its calibration into an estimate); an answer's diagnostics and flags
  (``core.answer``);
- artifacts: ``load_artifact``, ``write_artifact``, ``Artifact``, ``ArtifactError``.

Everything else in the package is an implementation detail that may change.

The names are loaded on first use (PEP 562): ``from core import X`` imports X's module then,
and ``import core.answer`` (what the client needs) loads nothing else of the numerics.
"""

from __future__ import annotations

import importlib

# public name → the module that defines it
_SOURCES = {
    "Artifact": "core.artifact",
    "ArtifactError": "core.artifact",
    "load_artifact": "core.artifact",
    "write_artifact": "core.artifact",
    "ErrorModel": "core.error_estimate",
    "fit_error_model": "core.error_estimate",
    "ErrorProxy": "core.error_proxy",
    "linearised_error": "core.error_proxy",
    "ALLEN_CAHN_FAMILY": "core.families",
    "CDR_FAMILY": "core.families",
    "FAMILIES": "core.families",
    "PdeFamily": "core.family",
    "FastPhaseModel": "core.fast_phase",
    "FastPhaseResult": "core.fast_phase",
    "FastPhaseSettings": "core.fast_phase",
    "run_fast_phase": "core.fast_phase",
    "ReducedOperators": "core.fastlrnr",
    "build_fastlrnr": "core.fastlrnr",
    "HyperWeights": "core.hypernet",
    "hyper_forward": "core.hypernet",
    "JetChain": "core.jet_chain",
    "exact_chain": "core.jet_chain",
    "LRNRWeights": "core.lrnr",
    "lrnr_forward": "core.lrnr",
    "lrnr_jets": "core.lrnr",
    "DOMAINS": "core.pde",
    "TEST_DOMAINS": "core.pde",
    "Domain": "core.pde",
    "ParameterError": "core.pde",
    "interior_points": "core.pde",
    "residual": "core.pde",
    "standard_grid": "core.pde",
    "uniform_grid": "core.pde",
    "solve_reference": "core.reference",
    "solve_reference_batch": "core.reference",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
