"""The linearised correction: serve u + e instead of u, with e the linearised error.

``core.error_proxy`` solves the error equation e_t + βe_x − νe_xx − ρ(1 − 2u)e = −r on a
coarse regular grid to *measure* how far the LRNR's field u is from the true solution. The
same e, added to u, removes that first-order error — one Newton step of the PDE, taken with
a coarse spectral solver from the LRNR's own residual. What remains is second order in e
plus the coarse grid's discretisation error.

``LinearisedCorrection`` computes e on a *correction grid* (nx × nt) and, for the estimate of
what remains, the two-grid difference

    d = ‖e − I e_c‖ / ‖u‖   (over the correction grid's times t_1..t_{nt−1})

with e_c the same equation solved on a coarser grid and I its interpolation (trigonometric in
x, linear in t). ``core.error_estimate.ErrorModel`` calibrates d into an estimate per model.

The correction is interpolated to any requested sites: trigonometric interpolation in x
(``core.spectral``, as the reference solver does; the problem is periodic and e is
band-limited on its grid), linear in t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.error_estimate import ErrorModel
from core.error_proxy import ErrorProxy, error_field
from core.lrnr import LRNRWeights
from core.pde import uniform_grid
from core.spectral import SITES_CHUNK, trig_interpolate


def _time_weights(t_grid: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(j, w): t lies between t_grid[j] and t_grid[j + 1] with weight w on the latter
    (t clamped to the grid's range)."""
    t = np.clip(np.asarray(t, dtype=np.float64), t_grid[0], t_grid[-1])
    j = np.clip(np.searchsorted(t_grid, t, side="right") - 1, 0, len(t_grid) - 2)
    return j, (t - t_grid[j]) / (t_grid[j + 1] - t_grid[j])


def _time_matrix(t_grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(len(t), len(t_grid)) linear-interpolation weights (t clamped to the grid's range)."""
    j, w = _time_weights(t_grid, t)
    out = np.zeros((j.size, t_grid.size))
    out[np.arange(j.size), j] = 1.0 - w
    out[np.arange(j.size), j + 1] = w
    return out


@dataclass(frozen=True)
class ErrorField:
    """e (R, nt, nx) on ``uniform_grid(nx, nt)`` (t in [0, t_end]); interpolates to any sites."""

    e: np.ndarray
    t_end: float

    @property
    def t_grid(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, self.e.shape[1])

    def on_axes(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(R, len(t), len(x)) on the tensor grid of axes x, t."""
        B = _time_matrix(self.t_grid, t)
        return trig_interpolate(np.einsum("sn,rnj->rsj", B, self.e), x)  # in time first, then in x

    def at_points(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(R, P) at the points (x_p, t_p)."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        out = np.empty((self.e.shape[0], x.size))
        for lo in range(0, x.size, SITES_CHUNK):  # bounded memory for many points
            M = trig_interpolate(self.e, x[lo : lo + SITES_CHUNK])  # (R, nt, p): in x first
            j, w = _time_weights(self.t_grid, t[lo : lo + SITES_CHUNK])
            p = np.arange(j.size)
            out[:, lo : lo + SITES_CHUNK] = (1.0 - w) * M[:, j, p] + w * M[:, j + 1, p]
        return out


class LinearisedCorrection:
    """The linearised error of the full LRNR on an nx × nt correction grid, with the two-grid
    difference against a coarse (nx_c × nt_c) grid as the measure of what the correction
    leaves. ``__call__(S, mu)`` → (ErrorField (R, nt, nx), d (R,)) for rows S (R, P)."""

    def __init__(self, weights: LRNRWeights, grid: tuple[int, int], coarse: tuple[int, int], dtype=np.float32):
        if not (grid[0] > coarse[0] and grid[1] > coarse[1]):
            raise ValueError(f"the correction grid {grid} must be finer than the coarse one {coarse} on both axes")
        self.grid, self.coarse = (int(grid[0]), int(grid[1])), (int(coarse[0]), int(coarse[1]))
        self.fine_proxy = ErrorProxy(weights, *self.grid, dtype=dtype)
        # a coarse grid whose points are fine-grid points reuses the fine residual (no second LRNR pass)
        sx, rx = divmod(self.grid[0], self.coarse[0])
        st, rt = divmod(self.grid[1] - 1, self.coarse[1] - 1)
        self._stride = (st, sx) if rx == 0 and rt == 0 else None
        self.coarse_proxy = None if self._stride else ErrorProxy(weights, *self.coarse, dtype=dtype)
        self._x, self._t = uniform_grid(*self.grid)

    def __call__(self, S: np.ndarray, mu: np.ndarray) -> tuple[ErrorField, np.ndarray]:
        mu = np.asarray(mu, dtype=np.float64)
        r, u = self.fine_proxy.residual_and_field(S, mu)
        t_end = self.fine_proxy.t_end
        e = error_field(r, u, mu, t_end)
        if self._stride is not None:
            st, sx = self._stride
            e_c = error_field(r[:, ::st, ::sx], u[:, ::st, ::sx], mu, t_end)
        else:
            e_c, _ = self.coarse_proxy.error_field(S, mu)
        coarse_here = ErrorField(e_c, t_end).on_axes(self._x, self._t)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            d = np.sqrt(np.sum((e - coarse_here)[:, 1:] ** 2, axis=(1, 2)) / np.sum(u[:, 1:] ** 2, axis=(1, 2)))
        return ErrorField(e, t_end), np.where(np.isfinite(d), d, np.inf)

    def to_dict(self) -> dict:
        return {"nx": self.grid[0], "nt": self.grid[1], "coarse": {"nx": self.coarse[0], "nt": self.coarse[1]}}


@dataclass(frozen=True)
class CorrectionSpec:
    """A model's correction as its manifest states it: the correction and coarse grids
    (nx, nt), whether answers are corrected by default, and the ErrorModel that turns the
    two-grid difference d into an estimate of a corrected answer's relative L2 error."""

    grid: tuple[int, int]
    coarse: tuple[int, int]
    default: bool
    error_model: ErrorModel

    @classmethod
    def from_dict(cls, d: dict) -> CorrectionSpec:
        grid, coarse = _grid(d, "correction"), _grid(d["coarse"], "correction.coarse")
        if not (grid[0] > coarse[0] and grid[1] > coarse[1]):
            raise ValueError(f"the correction grid {grid} must be finer than the coarse one {coarse}")
        if not isinstance(d["default"], bool):
            raise ValueError(f"correction.default must be true or false, got {d['default']!r}")
        return cls(grid, coarse, d["default"], ErrorModel.from_dict(d["error_model"]))

    def model(self, weights: LRNRWeights, dtype=np.float32) -> LinearisedCorrection:
        return LinearisedCorrection(weights, self.grid, self.coarse, dtype)


def _grid(d: dict, what: str) -> tuple[int, int]:
    nx, nt = d["nx"], d["nt"]
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (nx, nt))
    if not (ok and 4 <= nx <= 1024 and 2 <= nt <= 1024):
        raise ValueError(f"{what} needs an integer grid 4 ≤ nx ≤ 1024, 2 ≤ nt ≤ 1024, got {d!r}")
    return nx, nt
