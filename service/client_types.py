"""The client's answer types: the response contract of ``service.schemas`` typed for Python.

:class:`SolveResult`, :class:`BatchResult` of :class:`BatchItem`, :class:`Diagnostics`,
:class:`FastPhaseDiagnostics`, :class:`Flag`, :class:`ModelRef`, and :class:`SolveError` for
a refusal. Plain dataclasses over numpy arrays: no I/O, no server packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


class SolveError(Exception):
    """The service refused or failed a request (``status`` is the HTTP status; 0 for an
    inconsistency the client found itself, such as a split batch answered by two models)."""

    def __init__(self, status: int, code: str, message: str, errors: list | None = None, request_id: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status, self.code, self.message = status, code, message
        self.errors, self.request_id = errors or [], request_id


def opt_float(v) -> float | None:
    """``float(v)``, or None for None."""
    return None if v is None else float(v)


@dataclass(frozen=True)
class ModelRef:
    """The model that answered: name, version and the sha256 of its manifest."""

    name: str
    version: str
    sha256: str

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelRef:
        return cls(str(d["name"]), str(d["version"]), str(d["sha256"]))


@dataclass(frozen=True)
class Flag:
    """Why an answer may not be trusted: ``code`` is ``estimate_above_tolerance`` or
    ``outside_served_domain`` (or a code a newer server adds)."""

    code: str
    message: str


def flags(items) -> list[Flag]:
    """The answer's ``flags`` list as :class:`Flag` values (None: none)."""
    return [Flag(str(f["code"]), str(f["message"])) for f in items or ()]


@dataclass(frozen=True)
class FastPhaseDiagnostics:
    """What the per-query fast phase did (``service.schemas.FastPhaseDiagnostics``).

    ``accepted``: the update was kept (else the hypernetwork's coefficients were returned);
    objectives are the optimiser's, residuals the RMS PDE residual of the full LRNR on the
    check grid; error proxies the linearised error that residual implies (``error_proxy_after``
    is what acceptance compares and the error estimate calibrates)."""

    enabled: bool
    backend: str | None
    optimizer: str | None
    steps_requested: int
    steps_run: int
    locality: float | None
    accepted: bool
    objective_before: float | None
    objective_after: float | None
    residual_before: float | None
    residual_after: float | None
    error_proxy_before: float | None = None
    error_proxy_after: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> FastPhaseDiagnostics:
        return cls(
            enabled=bool(d["enabled"]),
            backend=d.get("backend"),
            optimizer=d.get("optimizer"),
            steps_requested=int(d["steps_requested"]),
            steps_run=int(d["steps_run"]),
            locality=opt_float(d.get("locality")),
            accepted=bool(d["accepted"]),
            objective_before=opt_float(d.get("objective_before")),
            objective_after=opt_float(d.get("objective_after")),
            residual_before=opt_float(d.get("residual_before")),
            residual_after=opt_float(d.get("residual_after")),
            error_proxy_before=opt_float(d.get("error_proxy_before")),
            error_proxy_after=opt_float(d.get("error_proxy_after")),
        )


@dataclass
class Diagnostics:
    """Timings in ms (queue, hypernet, fast_phase, field, correction, encode, total), the fast
    phase, ``batch_size``: the rows solved in the same server pass, and ``correction``:
    whether the correction was added (``correction_applied``) and the two-grid difference its
    estimate calibrates (``two_grid_difference``); ``answer``: the rung that produced u, which
    stage produced the coefficients, and the escalation when a tolerance asked for it."""

    timings_ms: dict[str, float]
    fast_phase: FastPhaseDiagnostics
    extrapolated: bool
    batch_size: int
    correction_applied: bool = False
    two_grid_difference: float | None = None
    answer: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping) -> Diagnostics:
        corr = d.get("correction") or {}
        return cls(
            timings_ms={str(k): float(v) for k, v in d["timings_ms"].items()},
            fast_phase=FastPhaseDiagnostics.from_dict(d["fast_phase"]),
            extrapolated=bool(d["extrapolated"]),
            batch_size=int(d["batch_size"]),
            correction_applied=bool(corr.get("applied", False)),
            two_grid_difference=opt_float(corr.get("two_grid_difference")),
            answer=dict(d.get("answer") or {}),
        )


@dataclass
class SolveResult:
    """One solution. ``u``: (nt, nx) on a tensor grid, (P,) at points; ``coefficients``: s_l per layer.

    ``error_estimate``: estimated relative L2 error against the true solution;
    ``within_tolerance``: whether it is at most the requested ``tolerance`` (None when none was
    given); ``flags``: reasons not to trust the answer (empty: none known)."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    params: dict[str, float]
    coefficients: list[np.ndarray]
    model: ModelRef
    error_estimate: float
    within_tolerance: bool | None
    flags: list[Flag]
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str | None = None
    grid: str = "uniform"
    rung: str = "corrected"


@dataclass
class BatchItem:
    """One row of a batch (its field is ``BatchResult.u[i]``). ``coefficients`` is None when the
    batch came as npy (the server does not send them then); ``request_id``: the request that
    solved this row (a split batch takes several)."""

    params: dict[str, float]
    coefficients: list[np.ndarray] | None
    error_estimate: float
    within_tolerance: bool | None
    flags: list[Flag]
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str | None = None
    rung: str = "corrected"


@dataclass
class BatchResult:
    """Solutions of a batch: ``u`` (B, nt, nx) or (B, P), rows in the order given; ``results[i]``
    describes row i. ``request_ids`` and ``timings_ms`` have one entry per request sent (more
    than one when the batch was split)."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    results: list[BatchItem]
    model: ModelRef
    grid: str = "uniform"
    request_ids: list[str | None] = field(default_factory=list)
    timings_ms: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def coefficients(self) -> list[list[np.ndarray] | None]:
        return [r.coefficients for r in self.results]
