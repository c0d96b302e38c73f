"""Shared numerics of the FastLRNR solve service (numpy only, no torch).

The public API, by topic (the math of each is in docs/method.md):

- the PDE family: ``PdeFamily`` (what a family declares), ``FAMILIES`` (by name: ``CDR_FAMILY``,
  ``ALLEN_CAHN_FAMILY``, ``BURGERS_FAMILY``), ``Domain``, ``ParameterError``; the grids
  (``fastlrnr.numerics.grid``): ``interior_points``, ``uniform_grid``, ``standard_grid``; the
  reference solver ``solve_reference``, ``solve_reference_batch``;
- the model: ``LRNRWeights``, ``lrnr_forward``, ``lrnr_jets``, ``HyperWeights``, ``hyper_forward``;
- the fast phase: ``FastPhaseModel``, ``FastPhaseSettings``, ``FastPhaseResult``,
  ``run_fast_phase`` (over ``JetChain``: ``exact_chain`` or a FastLRNR ``ReducedOperators``,
  built by ``build_fastlrnr``);
- trust: ``ErrorProxy``, ``linearised_error`` (the error a residual implies), ``ErrorModel``,
  ``fit_error_model`` (its calibration into an estimate); an answer's diagnostics and flags
  (``fastlrnr.numerics.answer``);
- artifacts: ``load_artifact``, ``write_artifact``, ``Artifact``, ``ArtifactError``.

Everything else in the package is an implementation detail that may change.

The names are loaded on first use (PEP 562): ``from fastlrnr.numerics import X`` imports X's module then,
and ``import fastlrnr.numerics.answer`` (what the client needs) loads nothing else of the numerics.
"""

from __future__ import annotations

import importlib

# public name → the module that defines it
_SOURCES = {
    "Artifact": "fastlrnr.numerics.artifact",
    "ArtifactError": "fastlrnr.numerics.artifact",
    "load_artifact": "fastlrnr.numerics.artifact",
    "write_artifact": "fastlrnr.numerics.artifact",
    "ErrorModel": "fastlrnr.numerics.error_estimate",
    "fit_error_model": "fastlrnr.numerics.error_estimate",
    "ErrorProxy": "fastlrnr.numerics.error_proxy",
    "linearised_error": "fastlrnr.numerics.error_proxy",
    "ALLEN_CAHN_FAMILY": "fastlrnr.numerics.families",
    "BURGERS_FAMILY": "fastlrnr.numerics.families",
    "CDR_FAMILY": "fastlrnr.numerics.families",
    "FAMILIES": "fastlrnr.numerics.families",
    "PdeFamily": "fastlrnr.numerics.family",
    "FastPhaseModel": "fastlrnr.numerics.fast_phase",
    "FastPhaseResult": "fastlrnr.numerics.fast_phase",
    "FastPhaseSettings": "fastlrnr.numerics.fast_phase",
    "run_fast_phase": "fastlrnr.numerics.fast_phase",
    "ReducedOperators": "fastlrnr.numerics.fastlrnr",
    "build_fastlrnr": "fastlrnr.numerics.fastlrnr",
    "HyperWeights": "fastlrnr.numerics.hypernet",
    "hyper_forward": "fastlrnr.numerics.hypernet",
    "JetChain": "fastlrnr.numerics.jet_chain",
    "exact_chain": "fastlrnr.numerics.jet_chain",
    "LRNRWeights": "fastlrnr.numerics.lrnr",
    "lrnr_forward": "fastlrnr.numerics.lrnr",
    "lrnr_jets": "fastlrnr.numerics.lrnr",
    "Domain": "fastlrnr.numerics.family",
    "ParameterError": "fastlrnr.numerics.family",
    "interior_points": "fastlrnr.numerics.grid",
    "standard_grid": "fastlrnr.numerics.grid",
    "uniform_grid": "fastlrnr.numerics.grid",
    "solve_reference": "fastlrnr.numerics.reference",
    "solve_reference_batch": "fastlrnr.numerics.reference",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'fastlrnr.numerics' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
