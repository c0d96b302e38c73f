"""``POST /solve/sweep``: many parameter sets at the same sites, binary in and out — the body.

The request body is an ``.npz`` archive (``numpy.savez``, compressed or not, no pickles) with

- ``params``: (B, p) parameter sets in the columns of the model's family (CDR: β, ν, ρ), numeric;
- the sites: ``points`` (P, 2) as [x, t], or the axes ``x`` (nx,) and ``t`` (nt,);

and the options as query parameters (``model``, ``tolerance``, ``time_budget_ms``,
``correction``, ``allow_extrapolation``). The answer (``fastlrnr.server.api.sweep_answer``) is an
``.npz`` archive; the passes are planned in ``fastlrnr.server.api.sweep_plan``.

The archive is read in two steps. :func:`inspect_archive` reads only the members' ``.npy``
headers (``fastlrnr.numerics.npz_members``: each member's declared size checked against what it
unpacks to) and weighs the request before any array is read: the rows and sites against the
limits (413 ``batch_too_large``) and every byte it will hold — each array as stored and widened
to float64, the sites' copies, the answer and its ``.npz``, one pass — against the request's
memory budget (413 ``over_memory_budget``). Only then :func:`read_archive` reads and widens them.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.grid import T_END
from fastlrnr.numerics.npz_members import ContentError, Member, NpzError, members, read
from fastlrnr.server.engine.costs import PASS_FIXED_BYTES
from fastlrnr.server.errors import ApiError

NPZ_MEDIA_TYPE = "application/x-npz"
SWEEP_MAX_ROWS = 200_000  # parameter sets in one sweep
SWEEP_MAX_VALUES = 1 << 24  # values in one answer: 64 MiB of float32
ALLOWED = {"params", "points", "x", "t"}
ANSWER_VALUE_BYTES = 8  # per answer value: the float32 answer and its .npz copy
ROW_BYTES = 128  # per row: estimate, within, rung, flags in the answer and its .npz
WIDE = 8  # bytes of a float64: what every array is widened to


@dataclass(frozen=True)
class SweepInput:
    """mu (B, p) float64; kind ``points`` (x, t the points' coordinates) or ``axes``."""

    mu: np.ndarray
    kind: str
    x: np.ndarray
    t: np.ndarray

    @property
    def sites(self) -> int:
        return self.x.size if self.kind == "points" else self.x.size * self.t.size

    @property
    def shape(self) -> tuple[int, ...]:
        """An answer row's shape: (P,) or (nt, nx)."""
        return (self.x.size,) if self.kind == "points" else (self.t.size, self.x.size)


@dataclass(frozen=True)
class Archive:
    """An archive whose headers were read and weighed: its members by name, the site form,
    its rows and sites, and the bytes it is predicted to hold outside the passes."""

    raw: bytes
    members: dict[str, Member]
    kind: str
    rows: int
    sites: int
    held_bytes: int

    @property
    def stored_bytes(self) -> int:
        return sum(m.nbytes for m in self.members.values())


def _bad(msg: str, loc: str, kind: str = "value_error") -> ApiError:
    return ApiError(422, "validation_error", msg, [{"loc": ["body", loc], "msg": msg, "type": kind}])


def _shape_ok(m: Member, ndim: int, width: int | None = None) -> None:
    """422 unless member ``m`` declares a non-empty numeric array of ``ndim`` axes (``width`` columns)."""
    wrong_width = width is not None and m.shape[-1:] != (width,)
    if m.dtype.kind not in "fiu" or len(m.shape) != ndim or wrong_width or m.count == 0:
        shape = "(n,)" if ndim == 1 else f"(n, {width or 'p'})"
        raise _bad(f"{m.name} must be a non-empty numeric array of shape {shape}, got {m.dtype} {m.shape}", m.name)


def held_bytes(rows: int, sites: int, found: dict[str, Member]) -> int:
    """Bytes a sweep holds besides its passes: every array as stored and widened to float64,
    the points' x and t copies, the answer (float32) with its .npz copy, per-row answers."""
    inputs = sum(m.nbytes + m.widened_bytes(WIDE) for m in found.values())
    if "points" in found:
        inputs += found["points"].count * WIDE  # x and t taken out as contiguous columns
    return inputs + rows * sites * ANSWER_VALUE_BYTES + rows * ROW_BYTES


def inspect_archive(raw: bytes, memory_bytes: int) -> Archive:
    """Worker thread: the archive's headers read and checked (422 ``invalid_npz`` when it is not
    a readable archive or a member's header lies about its size; 422 ``validation_error`` for
    unknown, missing, ill-shaped, pickled or twice-given arrays), its size against the limits
    (413 ``batch_too_large``) and its bytes against ``memory_bytes`` (413 ``over_memory_budget``),
    all before any array's data is read."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            found_list = members(z)
    except ContentError as exc:
        raise _bad(str(exc), exc.member or "archive") from None
    except NpzError as exc:
        raise ApiError(422, "invalid_npz", f"the archive cannot be read: {exc}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise ApiError(422, "invalid_npz", "the body is not an .npz archive (numpy.savez)") from None
    found = {m.name: m for m in found_list}
    unknown = set(found) - ALLOWED
    if unknown:
        raise _bad(f"unknown arrays {sorted(unknown)[:8]}; allowed: {sorted(ALLOWED)}", "archive")
    if "params" not in found:
        raise _bad("params (B, p) is required", "params", "missing")
    _shape_ok(found["params"], 2)  # its width is the model's family's (fastlrnr.server.api.checks)
    if "points" in found and not found.keys() & {"x", "t"}:
        _shape_ok(found["points"], 2, 2)
        kind, sites = "points", found["points"].shape[0]
    elif {"x", "t"} <= found.keys() and "points" not in found:
        _shape_ok(found["x"], 1)
        _shape_ok(found["t"], 1)
        kind, sites = "axes", found["x"].count * found["t"].count
    else:
        raise _bad("give the sites as points (P, 2), or as the axes x and t", "points", "missing")
    rows = found["params"].shape[0]
    check_size(rows, sites)
    held = held_bytes(rows, sites, found)
    if held + PASS_FIXED_BYTES > memory_bytes:
        msg = (
            f"the sweep ({rows} rows × {sites} sites; its arrays declare {sum(m.nbytes for m in found.values())} "
            f"bytes, {sum(m.widened_bytes(WIDE) for m in found.values())} as float64) would take about "
            f"{(held + PASS_FIXED_BYTES) / 2**20:.1f} MiB, more than this server's {memory_bytes / 2**20:.0f} MiB "
            "per request (request_memory_bytes)"
        )
        raise ApiError(413, "over_memory_budget", msg, [{"loc": ["body"], "msg": msg, "type": "too_large"}])
    return Archive(raw, found, kind, rows, sites, held)


def read_archive(archive: Archive) -> SweepInput:
    """Worker thread: the inspected archive's arrays read, widened to float64 and checked (422:
    not finite, t outside [0, 1], a damaged member)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive.raw)) as z:
            arrays = {name: _widened(read(z, m), name) for name, m in archive.members.items()}
    except NpzError as exc:
        raise ApiError(422, "invalid_npz", f"the archive cannot be read: {exc}") from None
    mu = arrays["params"]
    if archive.kind == "points":
        pts = arrays.pop("points")
        x, t = np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1])
        del pts
    else:
        x, t = arrays["x"], arrays["t"]
    if np.any((t < 0) | (t > T_END)):
        raise _bad(f"times must lie in [0, {T_END:g}]", "t" if archive.kind == "axes" else "points")
    return SweepInput(mu, archive.kind, x, t)


def _widened(a: np.ndarray, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise _bad(f"{name} must be finite", name)
    return a


def check_size(rows: int, sites: int) -> None:
    """413 when the sweep has too many rows or its answer too many values."""
    if rows > SWEEP_MAX_ROWS:
        raise ApiError(413, "batch_too_large", f"{rows} parameter sets; the limit is {SWEEP_MAX_ROWS}")
    if rows * sites > SWEEP_MAX_VALUES:
        raise ApiError(413, "batch_too_large", f"{rows} × {sites} values; the limit is {SWEEP_MAX_VALUES}")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz archive of ``arrays`` (numpy writes each in 16 MiB chunks; the
    buffer grows in place and is returned without a copy)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
