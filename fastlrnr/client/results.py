"""The client's answer types: the response contract of ``fastlrnr.server.api.schemas`` typed for Python.

:class:`SolveResult`, :class:`BatchResult` of :class:`BatchItem`, :class:`ModelRef`, and
:class:`SolveError` for a refusal. A row's diagnostics and flags are the server's own
definitions (``fastlrnr.numerics.answer``: ``Diagnostics`` with ``FastPhaseDiagnostics``,
``CorrectionDiagnostics``, ``AnswerDiagnostics`` and ``Escalation``; ``Flag`` with its
``FlagCode``; ``fastlrnr.client.clients`` exports them all), read back by their ``from_json``. Plain dataclasses
over numpy arrays: no I/O, no server packages (``fastlrnr.numerics.answer`` is pure Python and loads nothing
else of the numerics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fastlrnr.numerics.answer import Diagnostics, Trust


class SolveError(Exception):
    """The service refused or failed a request (``status`` is the HTTP status; 0 for an
    inconsistency the client found itself, such as a split batch answered by two models)."""

    def __init__(self, status: int, code: str, message: str, errors: list | None = None, request_id: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status, self.code, self.message = status, code, message
        self.errors, self.request_id = errors or [], request_id


@dataclass(frozen=True)
class ModelRef:
    """The model that answered: name, version and the sha256 of its manifest."""

    name: str
    version: str
    sha256: str

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelRef:
        return cls(str(d["name"]), str(d["version"]), str(d["sha256"]))


@dataclass
class SolveResult(Trust):
    """One solution: its trust (``Trust``, the server's own definition: ``rung``,
    ``error_estimate`` — the estimated relative L2 error against the true solution —,
    ``within_tolerance`` — None when no tolerance was given — and ``flags``, the reasons not to
    trust it), ``u`` (nt, nx) on a tensor grid or (P,) at points, and ``coefficients``: s_l per layer."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    params: dict[str, float]
    coefficients: list[np.ndarray]
    model: ModelRef
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str | None = None
    grid: str = "uniform"


@dataclass
class BatchItem(Trust):
    """One row of a batch (its field is ``BatchResult.u[i]``): its trust (``Trust``) and
    parameters. ``coefficients`` is None when the batch came as npy (the server does not send
    them then); ``request_id``: the request that solved this row (a split batch takes several)."""

    params: dict[str, float]
    coefficients: list[np.ndarray] | None
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str | None = None


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
