"""What the ladder (``fastlrnr.numerics.ladder``) reads of a served model: its family and served
domain, its correction and the calibrated estimates of each rung, and the reference rung's
measured rates. The server's ``ModelRuntime`` is one (it holds these beside its evaluators and
pools); a structural type, so the numerics import nothing of the server."""

from __future__ import annotations

from typing import Protocol

from fastlrnr.numerics.correction import CorrectionSpec, ErrorCorrection
from fastlrnr.numerics.error_estimate import AprioriMap, ErrorModel
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseModel
from fastlrnr.numerics.reference_cost import ReferenceRates
from fastlrnr.numerics.site_envelope import SiteEnvelope


class ServedModel(Protocol):
    """A model as the ladder climbs it: ``served`` the domain its estimates are calibrated on;
    ``correction`` the correction at its grids and ``correction_spec`` its rungs (each with its
    error model); ``error_model`` the estimate of fast-phase answers; the extrapolation factors
    that widen the estimates outside ``served``; ``a_priori`` the field-wide a-priori map and
    ``envelope`` the pointwise error bound of uncorrected answers (either may be None); ``fast``
    the fast phase's check grid; ``reference_rates()`` the reference rung's rates, as measured;
    ``corrected_priors`` per corrected rung the estimate it is predicted to give (what the route
    choice reads, ``fastlrnr.numerics.routes``)."""

    name: str
    family: PdeFamily
    served: Domain
    correction: ErrorCorrection
    correction_spec: CorrectionSpec
    corrected_extrapolation_factor: float
    error_model: ErrorModel
    extrapolation_factor: float
    a_priori: AprioriMap | None
    envelope: SiteEnvelope | None
    fast: FastPhaseModel
    corrected_priors: tuple[float, ...]

    def reference_rates(self) -> ReferenceRates: ...
