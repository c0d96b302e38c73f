"""The correction: serve u + e instead of u, with e the LRNR's error solved from its residual.

If the LRNR's field u leaves the residual r = R[u], the error e = ū − u against the true
solution ū solves *exactly* (the PDE's only nonlinearity is ρu²)

    L_u e + ρ e² = −r,    L_u e = e_t + βe_x − νe_xx − ρ(1 − 2u) e,    e(x, 0) = 0.

``fastlrnr.numerics.error_proxy.error_field`` integrates the linear part on a regular grid (Fourier ETD in
x, Strang splitting of the reaction). The first iterate is the linearised error (one Newton
step of the PDE from u); Newton's iteration on the nonlinear equation reuses the same solver,

    e_{k+1} = error_field(r − ρ e_k², u + e_k)     (L_{u+e_k} e_{k+1} = −r + ρ e_k²),

with no new LRNR pass: it converges in two or three iterations where e is large (the
low-viscosity, high-reaction corners) and changes nothing where ρe² is negligible.

``ErrorCorrection`` evaluates the LRNR's residual on a *correction grid* (nx × nt) once,
interpolates r and u cubically in time onto ``substeps`` steps per grid interval (the error
equation's time step, not the LRNR's sampling, limits the accuracy elsewhere: halving it
divides what remains by about four), iterates, and measures what the correction leaves by the
two-grid difference

    d = ‖e − I e_c‖ / ‖u‖   (over the integration times t > 0)

with e_c the same equation solved on a coarser grid and I its interpolation.
``fastlrnr.numerics.error_estimate.ErrorModel`` calibrates d into an estimate per model and substep count.

The correction reaches any requested sites by trigonometric interpolation in x
(``fastlrnr.numerics.spectral``; the problem is periodic and e is band-limited on its grid) and cubic
interpolation in t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.error_estimate import ErrorModel
from fastlrnr.numerics.error_proxy import ErrorProxy, error_field
from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.grid import uniform_grid
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.numerics.spectral import SITES_CHUNK, cubic_at_points, cubic_in_time, trig_interpolate
from fastlrnr.numerics.transport_error import has_transport, transport_shift

MAX_CHUNK_VALUES = 1 << 18  # rows × times × sites (or × grid points) interpolated at once (2 MiB of float64)
MIN_CHUNK_SITES = 64  # sites per chunk at least (rows are taken in groups to keep to MAX_CHUNK_VALUES)


def _relative_norm(e: np.ndarray, u: np.ndarray) -> np.ndarray:
    """‖e‖ / ‖u‖ (R,) over the times t > 0 (axis 1 from index 1); inf where not finite."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.sqrt(np.sum(e[:, 1:] ** 2, axis=(1, 2)) / np.sum(u[:, 1:] ** 2, axis=(1, 2)))
    return np.where(np.isfinite(out), out, np.inf)


def newton_error_field(
    r: np.ndarray,
    u: np.ndarray,
    mu: np.ndarray,
    t_end: float,
    iterations: int,
    tol: float,
    family: PdeFamily,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The error e (R, nt, nx) of fields u with residuals r (R, nt, nx) on ``uniform_grid``
    scaled to [0, t_end], parameters mu (R, p): the linearised error, then up to
    ``iterations`` Newton steps per row, a row stopping once its increment ‖Δe‖/‖u‖ ≤ tol.

    For another ``family`` (mu (R, p) in its columns) each step subtracts its Newton shift
    (ρe² for CDR) from r.

    With a transport term (``has_transport``: burgers) the increments must shrink: a step
    whose increment is not below the last one (the linearised error's own size for the
    first) is not taken, and its row stops with the iterate before it. There the iteration
    diverges where the grid cannot resolve a front (a shock of a poorly trained model), and the
    explicit solver's steps grow with max|u + e| (``transport_error``), so a diverging row
    would not just be wrong but cost without bound. (Families without transport iterate as
    they always did.)

    Returns (e, e_linearised, steps (R,) int: Newton steps taken after the linearised solve,
    increment (R,): the last ‖Δe‖/‖u‖ (of the step refused, where one was), NaN when no
    Newton step ran)."""
    mu = np.asarray(mu, dtype=np.float64)
    e_lin = error_field(r, u, mu, t_end, family)
    e = e_lin.copy()
    R = len(e)
    steps = np.zeros(R, dtype=int)
    increment = np.full(R, np.nan)
    params = family.columns(mu, 3)  # (R, 1, 1) each
    reacting = family.reacting(mu)
    transport = has_transport(mu, family)
    active = np.flatnonzero(reacting) if iterations > 0 else np.array([], dtype=int)
    increment[~reacting] = 0.0  # the equation is linear: the first solve is exact
    last = _relative_norm(e_lin, u) if transport else None  # the size of the step from e = 0
    for _ in range(iterations):
        if active.size == 0:
            break
        ea = e[active]
        with np.errstate(over="ignore", invalid="ignore"):
            shift = family.newton_shift(u[active], ea, *(p[active] for p in params))
            if transport:
                shift = shift + transport_shift(ea, mu[active], family)
            new = error_field(r[active] - shift, u[active] + ea, mu[active], t_end, family)
        inc = _relative_norm(new - ea, u[active])
        increment[active] = inc
        if transport:
            taken = inc < last[active]
            last[active] = inc
            e[active[taken]] = new[taken]
            steps[active[taken]] += 1
            active = active[taken & ~(inc <= tol)]
            continue
        e[active] = new
        steps[active] += 1
        active = active[~(inc <= tol)]
    return e, e_lin, steps, increment


def on_substeps(values: np.ndarray, substeps: int) -> np.ndarray:
    """values (R, nt, ...) on nt uniform times → (R, substeps·(nt − 1) + 1, ...) on the
    refined times, by cubic interpolation (the input itself when substeps is 1)."""
    if substeps == 1:
        return np.asarray(values, dtype=np.float64)
    nt = values.shape[1]
    grid = np.linspace(0.0, 1.0, nt)
    return cubic_in_time(values, grid, np.linspace(0.0, 1.0, substeps * (nt - 1) + 1))


@dataclass(frozen=True)
class ErrorField:
    """e (R, nt, nx) on ``uniform_grid(nx, nt)`` (t in [0, t_end]); interpolates to any sites
    (trigonometric in x, cubic in t)."""

    e: np.ndarray
    t_end: float

    @property
    def t_grid(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, self.e.shape[1])

    def on_axes(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(R, len(t), len(x)) on the tensor grid of axes x, t; in time first, then in x, a block
        of times at a time (rows × times × max(grid points, len(x)) ≤ MAX_CHUNK_VALUES)."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        R, _, nx = self.e.shape
        out = np.empty((R, t.size, x.size))
        step = max(1, MAX_CHUNK_VALUES // max(1, R * max(nx, x.size)))
        for lo in range(0, t.size, step):
            out[:, lo : lo + step] = trig_interpolate(cubic_in_time(self.e, self.t_grid, t[lo : lo + step]), x)
        return out

    def at_points(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(R, P) at the points (x_p, t_p): in x first, then in time, a block of rows and points
        at a time (rows × grid times × points ≤ MAX_CHUNK_VALUES, at least MIN_CHUNK_SITES points)."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        R, n = self.e.shape[:2]
        out = np.empty((R, x.size))
        group = max(1, MAX_CHUNK_VALUES // (n * MIN_CHUNK_SITES))
        for r0 in range(0, R, group):
            e = self.e[r0 : r0 + group]
            chunk = max(MIN_CHUNK_SITES, min(SITES_CHUNK, MAX_CHUNK_VALUES // max(1, len(e) * n)))
            for lo in range(0, x.size, chunk):
                M = trig_interpolate(e, x[lo : lo + chunk])  # (r, nt, p): in x first
                out[r0 : r0 + group, lo : lo + chunk] = cubic_at_points(M, self.t_grid, t[lo : lo + chunk])
        return out


@dataclass(frozen=True)
class CorrectionPass:
    """The LRNR's residual r and field u (R, nt, nx) on the correction grid, and on the
    coarse grid (None when the coarse grid is nested in it), for parameters mu (R, p)."""

    r: np.ndarray
    u: np.ndarray
    mu: np.ndarray
    coarse: tuple[np.ndarray, np.ndarray] | None

    def take(self, rows: np.ndarray) -> CorrectionPass:
        """The pass restricted to ``rows`` (indices)."""
        coarse = None if self.coarse is None else (self.coarse[0][rows], self.coarse[1][rows])
        return CorrectionPass(self.r[rows], self.u[rows], self.mu[rows], coarse)


@dataclass(frozen=True)
class CorrectionResult:
    """What one correction solve gives, per row: ``field`` the error e to add; ``d`` the
    two-grid difference (what the estimate calibrates); ``proxy`` the linearised error
    ‖e_lin‖/‖u‖ of the uncorrected field (what the fast phase's acceptance compares);
    ``rms`` the RMS residual on the grid; ``newton_steps`` and ``increment`` the iteration's
    steps and last ‖Δe‖/‖u‖; ``substeps`` the integration steps per grid interval."""

    field: ErrorField
    d: np.ndarray
    proxy: np.ndarray
    rms: np.ndarray
    newton_steps: np.ndarray
    increment: np.ndarray
    substeps: int


class ErrorCorrection:
    """The LRNR's error on an nx × nt correction grid (``substeps`` integration steps per grid
    interval, up to ``iterations`` Newton steps to ``tol``), with the two-grid difference
    against a coarse (nx_c × nt_c) grid as the measure of what the correction leaves.

    ``evaluate(S, mu)`` is the one LRNR pass; ``solve(pass, substeps)`` the error equation on
    it (cheap: FFTs of length nx), so several substep counts share one pass.
    ``__call__(S, mu)`` → (ErrorField, d (R,)) at the default substeps."""

    def __init__(
        self,
        weights: LRNRWeights,
        grid: tuple[int, int],
        coarse: tuple[int, int],
        dtype=np.float32,
        substeps: int = 1,
        iterations: int = 0,
        tol: float = 1e-9,
        *,
        family: PdeFamily,
    ):
        if not _finer(grid, coarse):
            raise ValueError(f"the correction grid {grid} must be finer than the coarse one {coarse}")
        if substeps < 1 or iterations < 0 or not tol >= 0:
            raise ValueError(f"need substeps ≥ 1, iterations ≥ 0, tol ≥ 0; got {substeps}, {iterations}, {tol}")
        if substeps > 1 and coarse[1] < 3:
            raise ValueError(f"substeps > 1 interpolate cubically in time: the coarse grid needs nt ≥ 3, got {coarse}")
        self.grid, self.coarse = (int(grid[0]), int(grid[1])), (int(coarse[0]), int(coarse[1]))
        self.substeps, self.iterations, self.tol = int(substeps), int(iterations), float(tol)
        self.family = family
        self.fine_proxy = ErrorProxy(weights, *self.grid, dtype=dtype, family=family)
        # a coarse grid whose points are fine-grid points reuses the fine residual (no second LRNR pass)
        sx, rx = divmod(self.grid[0], self.coarse[0])
        st, rt = divmod(self.grid[1] - 1, self.coarse[1] - 1)
        self._stride = (st, sx) if rx == 0 and rt == 0 else None
        self.coarse_proxy = None if self._stride else ErrorProxy(weights, *self.coarse, dtype=dtype, family=family)
        self.t_end = self.fine_proxy.t_end

    def evaluate(self, S: np.ndarray, mu: np.ndarray) -> CorrectionPass:
        """The LRNR pass: residual and field on the grid(s) for rows S (R, P), mu (R, p)."""
        mu = np.asarray(mu, dtype=np.float64)
        r, u = self.fine_proxy.residual_and_field(S, mu)
        coarse = None if self._stride else self.coarse_proxy.residual_and_field(S, mu)
        return CorrectionPass(r, u, mu, coarse)

    def solve(self, p: CorrectionPass, substeps: int | None = None) -> CorrectionResult:
        """The error equation on pass ``p`` with ``substeps`` steps per grid interval (None:
        the default)."""
        m = self.substeps if substeps is None else int(substeps)
        if m < 1:
            raise ValueError(f"substeps must be ≥ 1, got {m}")
        r, u = on_substeps(p.r, m), on_substeps(p.u, m)
        e, e_lin, steps, increment = newton_error_field(r, u, p.mu, self.t_end, self.iterations, self.tol, self.family)
        if self._stride is not None:
            st, sx = self._stride
            rc, uc = p.r[:, ::st, ::sx], p.u[:, ::st, ::sx]
        else:
            rc, uc = p.coarse
        e_c, *_ = newton_error_field(
            on_substeps(rc, m), on_substeps(uc, m), p.mu, self.t_end, self.iterations, self.tol, self.family
        )
        times = np.linspace(0.0, self.t_end, e.shape[1])
        if e_c.shape[2] == e.shape[2]:  # the same x points: interpolate in time only
            coarse_here = cubic_in_time(e_c, np.linspace(0.0, self.t_end, e_c.shape[1]), times)
        else:
            coarse_here = ErrorField(e_c, self.t_end).on_axes(uniform_grid(self.grid[0], 2)[0], times)
        rms = np.sqrt(np.mean(p.r.reshape(len(p.r), -1) ** 2, axis=1))
        return CorrectionResult(
            field=ErrorField(e, self.t_end),
            d=_relative_norm(e - coarse_here, u),
            proxy=_relative_norm(e_lin, u),
            rms=np.where(np.isfinite(rms), rms, np.inf),
            newton_steps=steps,
            increment=increment,
            substeps=m,
        )

    def __call__(self, S: np.ndarray, mu: np.ndarray, substeps: int | None = None) -> tuple[ErrorField, np.ndarray]:
        res = self.solve(self.evaluate(S, mu), substeps)
        return res.field, res.d

    def to_dict(self) -> dict:
        return {
            "nx": self.grid[0],
            "nt": self.grid[1],
            "coarse": {"nx": self.coarse[0], "nt": self.coarse[1]},
            "substeps": self.substeps,
            "newton": {"iterations": self.iterations, "tol": self.tol},
        }


@dataclass(frozen=True)
class Rung:
    """One corrected rung of the escalation ladder: ``substeps`` on the correction grid and
    the ErrorModel that turns its two-grid difference into an estimate."""

    substeps: int
    error_model: ErrorModel

    def to_dict(self) -> dict:
        return {"substeps": self.substeps, "error_model": self.error_model.to_dict()}


@dataclass(frozen=True)
class CorrectionSpec:
    """A model's correction as its manifest states it: the correction and coarse grids
    (nx, nt), whether answers are corrected by default, Newton's iterations and tolerance,
    and the corrected rungs (substeps, ErrorModel), cheapest first — the first is the default
    answer's. A manifest without ``rungs`` (schema 3) has one: its ``error_model`` at 1 substep."""

    grid: tuple[int, int]
    coarse: tuple[int, int]
    default: bool
    rungs: tuple[Rung, ...]
    iterations: int = 0
    tol: float = 1e-9

    @property
    def error_model(self) -> ErrorModel:
        """The default rung's error model."""
        return self.rungs[0].error_model

    @classmethod
    def from_dict(cls, d: dict) -> CorrectionSpec:
        grid, coarse = _grid(d, "correction"), _grid(d["coarse"], "correction.coarse")
        if not _finer(grid, coarse):
            raise ValueError(f"the correction grid {grid} must be finer than the coarse one {coarse}")
        if not isinstance(d["default"], bool):
            raise ValueError(f"correction.default must be true or false, got {d['default']!r}")
        newton = d.get("newton", {"iterations": 0, "tol": 1e-9})
        iterations, tol = newton["iterations"], float(newton["tol"])
        if not (isinstance(iterations, int) and not isinstance(iterations, bool) and 0 <= iterations <= 20):
            raise ValueError(f"correction.newton.iterations must be an integer in [0, 20], got {iterations!r}")
        if not (np.isfinite(tol) and tol >= 0):
            raise ValueError(f"correction.newton.tol must be finite and ≥ 0, got {tol!r}")
        first = ErrorModel.from_dict(d["error_model"])  # the default answer's (schema 3 readers use it)
        if "rungs" in d:
            rungs = tuple(Rung(_substeps(r["substeps"]), ErrorModel.from_dict(r["error_model"])) for r in d["rungs"])
        else:  # one rung: the manifest's substeps (schema 3 manifests have none: 1)
            rungs = (Rung(_substeps(d.get("substeps", 1)), first),)
        if not rungs or any(b.substeps <= a.substeps for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"correction.rungs must be non-empty with increasing substeps, got {d.get('rungs')!r}")
        if "substeps" in d and d["substeps"] != rungs[0].substeps:
            raise ValueError(f"correction.substeps {d['substeps']!r} differs from the first rung's {rungs[0].substeps}")
        return cls(grid, coarse, d["default"], rungs, iterations, tol)

    def model(self, weights: LRNRWeights, dtype=np.float32, *, family: PdeFamily) -> ErrorCorrection:
        """The correction of ``weights`` (an LRNR of ``family``) at these grids."""
        return ErrorCorrection(
            weights, self.grid, self.coarse, dtype, self.rungs[0].substeps, self.iterations, self.tol, family=family
        )


def _finer(grid: tuple[int, int], coarse: tuple[int, int]) -> bool:
    """At least as fine on both axes and finer on one: the two-grid difference needs a coarser grid."""
    return grid[0] >= coarse[0] and grid[1] >= coarse[1] and grid != tuple(coarse)


def _substeps(v) -> int:
    if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64):
        raise ValueError(f"substeps must be an integer in [1, 64], got {v!r}")
    return v


def _grid(d: dict, what: str) -> tuple[int, int]:
    nx, nt = d["nx"], d["nt"]
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (nx, nt))
    if not (ok and 4 <= nx <= 1024 and 2 <= nt <= 1024):
        raise ValueError(f"{what} needs an integer grid 4 ≤ nx ≤ 1024, 2 ≤ nt ≤ 1024, got {d!r}")
    return nx, nt
