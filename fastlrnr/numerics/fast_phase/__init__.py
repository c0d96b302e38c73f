"""The SPInProp fast phase: adapt an LRNR's coefficients to one query, cheaply, and keep
the update only when the full LRNR confirms it.

- ``run``: settings, the per-model state (``FastPhaseModel``) and ``run_fast_phase``;
- ``objective``: the least-squares and ℓ1 objectives from residuals and their Jacobian;
- ``lm``: projected Levenberg–Marquardt (the default optimiser);
- ``adam``: projected Adam (the paper's optimiser, for its experiment);
- ``acceptance``: the check on a held-out grid (the error proxy) that decides what is served.

The backends are ``fastlrnr.numerics.jet_chain.exact_chain`` (full LRNR) and the FastLRNR of
``fastlrnr.numerics.fastlrnr`` — one ``JetChain`` class with two sets of operators.
"""

from fastlrnr.numerics.fast_phase.acceptance import choose
from fastlrnr.numerics.fast_phase.objective import OBJECTIVES, objective_gradient, objective_value
from fastlrnr.numerics.fast_phase.run import (
    BACKENDS,
    OPTIMIZERS,
    FastPhaseModel,
    FastPhaseResult,
    FastPhaseSettings,
    run_fast_phase,
)

__all__ = [
    "BACKENDS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "FastPhaseModel",
    "FastPhaseResult",
    "FastPhaseSettings",
    "choose",
    "objective_gradient",
    "objective_value",
    "run_fast_phase",
]
