"""``POST /solve/sweep``: many parameter sets at the same sites, binary in and out.

The request body is an ``.npz`` archive (``numpy.savez``, compressed or not, no pickles) with

- ``params``: (B, p) parameter sets in the columns of the model's family (CDR: β, ν, ρ), float;
- the sites: ``points`` (P, 2) as [x, t], or the axes ``x`` (nx,) and ``t`` (nt,);

and the options as query parameters (``model``, ``tolerance``, ``time_budget_ms``,
``correction``, ``allow_extrapolation``). The answer is an ``.npz`` archive with ``u``
(B, P) or (B, nt, nx) float32, ``error_estimate`` (B,), ``within_tolerance`` (B,) int8 (1, 0,
or −1 without a tolerance), ``rung`` (B,) str, ``extrapolated`` (B,) bool and
``time_budget_exhausted`` (B,) bool; the model's name, version and sha256 in headers.

This is the surrogate's regime: no fast phase, no correction unless asked (``correction=true``),
and an a-priori error estimate per row from the parameters alone (``fastlrnr.numerics.error_estimate``); a
row whose estimate is above ``tolerance`` is answered by the reference solver instead
(``fastlrnr.server.engine.ladder``). Rows are solved in chunks of at most ``SWEEP_CHUNK_ROWS`` rows and
``max_batch_values`` values, so the solver's memory stays that of one batch; the body's size
cap (``FASTLRNR_MAX_BODY_BYTES``) bounds the request, ``SWEEP_MAX_VALUES`` the answer.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.grid import T_END
from fastlrnr.server.http.errors import ApiError

NPZ_MEDIA_TYPE = "application/x-npz"
SWEEP_MAX_ROWS = 200_000  # parameter sets in one sweep
SWEEP_MAX_VALUES = 1 << 24  # values in one answer: 64 MiB of float32
SWEEP_CHUNK_ROWS = 2048  # rows solved in one pass
MAX_UNPACKED_BYTES = 256 << 20  # the archive's members, uncompressed (a zip bomb is refused unread)
ALLOWED = {"params", "points", "x", "t"}


@dataclass(frozen=True)
class SweepInput:
    """mu (B, 3) float64; kind ``points`` (x, t the points' coordinates) or ``axes``."""

    mu: np.ndarray
    kind: str
    x: np.ndarray
    t: np.ndarray

    @property
    def sites(self) -> int:
        return self.x.size if self.kind == "points" else self.x.size * self.t.size


def _bad(msg: str, loc: str, kind: str = "value_error") -> ApiError:
    return ApiError(422, "validation_error", msg, [{"loc": ["body", loc], "msg": msg, "type": kind}])


def _array(archive, name: str, ndim: int, width: int | None = None) -> np.ndarray:
    try:
        a = archive[name]
    except ValueError as exc:  # object arrays need pickles, which are refused
        raise _bad(f"{name}: {exc}", name) from None
    if a.dtype.kind not in "fiu" or a.ndim != ndim or (width is not None and a.shape[-1] != width) or a.size == 0:
        shape = "(n,)" if ndim == 1 else f"(n, {width or 'p'})"
        raise _bad(f"{name} must be a non-empty numeric array of shape {shape}, got {a.dtype} {a.shape}", name)
    a = np.ascontiguousarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise _bad(f"{name} must be finite", name)
    return a


def parse_sweep(raw: bytes) -> SweepInput:
    """The archive → SweepInput, or ApiError 422 (400-class problems are all 422 here: the
    body arrived, its content is wrong)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
    except zipfile.BadZipFile:
        raise ApiError(422, "invalid_npz", "the body is not an .npz archive (numpy.savez)") from None
    names = {i.filename.removesuffix(".npy") for i in infos}
    unknown = names - ALLOWED
    if unknown:
        raise _bad(f"unknown arrays {sorted(unknown)}; allowed: {sorted(ALLOWED)}", "archive")
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise ApiError(413, "body_too_large", f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    try:
        archive = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ApiError(422, "invalid_npz", f"the archive cannot be read: {exc}") from None
    with archive:
        if "params" not in names:
            raise _bad("params (B, p) is required", "params", "missing")
        mu = _array(archive, "params", 2)  # its width is the model's family's (fastlrnr.server.api.checks)
        if "points" in names and not names & {"x", "t"}:
            pts = _array(archive, "points", 2, 2)
            kind, x, t = "points", np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1])
        elif {"x", "t"} <= names and "points" not in names:
            kind, x, t = "axes", _array(archive, "x", 1), _array(archive, "t", 1)
        else:
            raise _bad("give the sites as points (P, 2), or as the axes x and t", "points", "missing")
    if np.any((t < 0) | (t > T_END)):
        raise _bad(f"times must lie in [0, {T_END:g}]", "t" if kind == "axes" else "points")
    return SweepInput(mu, kind, x, t)


def check_size(sweep: SweepInput) -> None:
    """413 when the sweep has too many rows or its answer too many values."""
    rows = len(sweep.mu)
    if rows > SWEEP_MAX_ROWS:
        raise ApiError(413, "batch_too_large", f"{rows} parameter sets; the limit is {SWEEP_MAX_ROWS}")
    if rows * sweep.sites > SWEEP_MAX_VALUES:
        raise ApiError(413, "batch_too_large", f"{rows} × {sweep.sites} values; the limit is {SWEEP_MAX_VALUES}")


def chunks(rows: int, sites: int, max_values: int) -> list[slice]:
    """Row slices of at most SWEEP_CHUNK_ROWS rows and ``max_values`` values each."""
    size = max(1, min(SWEEP_CHUNK_ROWS, max_values // max(1, sites)))
    return [slice(lo, min(rows, lo + size)) for lo in range(0, rows, size)]


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz archive of ``arrays``."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
