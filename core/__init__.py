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
  ``fit_error_model`` (its calibration into an estimate);
- artifacts: ``load_artifact``, ``write_artifact``, ``Artifact``, ``ArtifactError``.

Everything else in the package is an implementation detail that may change.
"""

from core.artifact import Artifact, ArtifactError, load_artifact, write_artifact
from core.error_estimate import ErrorModel, fit_error_model
from core.error_proxy import ErrorProxy, linearised_error
from core.families import ALLEN_CAHN_FAMILY, CDR_FAMILY, FAMILIES
from core.family import PdeFamily
from core.fast_phase import FastPhaseModel, FastPhaseResult, FastPhaseSettings, run_fast_phase
from core.fastlrnr import ReducedOperators, build_fastlrnr
from core.hypernet import HyperWeights, hyper_forward
from core.jet_chain import JetChain, exact_chain
from core.lrnr import LRNRWeights, lrnr_forward, lrnr_jets
from core.pde import (
    DOMAINS,
    TEST_DOMAINS,
    Domain,
    ParameterError,
    interior_points,
    residual,
    standard_grid,
    uniform_grid,
)
from core.reference import solve_reference, solve_reference_batch

__all__ = [
    "ALLEN_CAHN_FAMILY",
    "CDR_FAMILY",
    "DOMAINS",
    "FAMILIES",
    "TEST_DOMAINS",
    "Artifact",
    "ArtifactError",
    "Domain",
    "ErrorModel",
    "ErrorProxy",
    "FastPhaseModel",
    "FastPhaseResult",
    "FastPhaseSettings",
    "HyperWeights",
    "JetChain",
    "LRNRWeights",
    "ParameterError",
    "PdeFamily",
    "ReducedOperators",
    "build_fastlrnr",
    "exact_chain",
    "fit_error_model",
    "hyper_forward",
    "interior_points",
    "linearised_error",
    "load_artifact",
    "lrnr_forward",
    "lrnr_jets",
    "residual",
    "run_fast_phase",
    "solve_reference",
    "solve_reference_batch",
    "standard_grid",
    "uniform_grid",
    "write_artifact",
]
