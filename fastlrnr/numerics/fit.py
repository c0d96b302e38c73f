"""Parameter estimation: which μ explains observed values u(x_i, t_i), and how sure is that
(docs/method.md, "Parameter estimation").

The observations are y_i = u(x_i, t_i; μ) + e_i with e_i independent N(0, σ²), σ known or
estimated from the residual. μ is bounded to a box (by default the model's served domain); a
parameter whose bounds are equal is held there, the q others are free. Steps:

1. **Starts.** The LRNR's misfit at a tensor grid of cell centres over the box
   (``FitSettings.screen_size`` values per free parameter, one batched pass at the observation
   points); the ``starts`` best grid points start step 2.
2. **Levenberg–Marquardt on the LRNR** in the free parameters scaled to [0, 1] over the box, from
   every start at once (rows of one batched pass), with the exact Jacobian ∂u/∂μ through the
   hypernetwork and the LRNR (``fastlrnr.numerics.sensitivity``); the box is kept by
   projection with an active set (a parameter on a bound whose gradient points out of the box is
   held there). The best start's minimum is where step 3 begins.
3. **Trust-region Gauss–Newton on the served answer.** The LRNR alone has an error of its own
   that would bias μ (at 0.1 % noise it can be several times the noise). At θ_k the served
   answer u*(θ_k) at the observation points — the LRNR plus its correction, or the reference
   solver — and its Jacobian J*_k = ∂u_LRNR/∂θ (exact) + ∂δ/∂θ (forward differences of the
   defect δ = u* − u_LRNR, batched with u* in one pass) give the linear model
   u*_k + J*_k (θ − θ_k), minimised within the box and a trust region; the trial is kept when
   the served misfit there is lower, the region grows or shrinks with the ratio of actual to
   predicted decrease. It stops when a step the trust region did not cut short would move no
   free parameter by more than ``refine_tol`` standard errors, or when a rejected step had
   promised less than ``CHI2_SETTLE`` of χ². (Minimising u_LRNR(θ) + δ_k with the defect frozen, or with
   a linear defect, converged in more rounds and missed the minimum in the ν–ρ valley of
   Allen–Cahn; docs/method.md.)
4. **Uncertainty** (Laplace): C = σ_eff² (J*ᵀJ*)⁻¹ over the free parameters at the fit. The served
   answer's own error is systematic — the same smooth field at every point — so it is counted
   at its worst: an RMS error ε (the calibrated relative estimate times the field's RMS) can
   bias μ by up to √n·ε/σ standard errors, and it enters as extra noise of variance n ε²,
   σ_eff² = σ² + n ε² (σ known) or σ̂² + n ε² (σ̂² = RSS/(n − q)). The served answer is the
   reference solver's (refinement ``auto``) whenever the corrected answer's ε exceeds
   ``escalate_ratio`` (0.3) × σ/√n, so that this widening stays within 5 %. Standard errors are
   √diag C; the intervals at ``level`` are μ̂ ± z·se with z the normal quantile (σ known) or
   Student-t's with n − q degrees of freedom (σ estimated), cut to the box.
   χ² = RSS/σ_eff² with n − q degrees of freedom.
5. **Flags.** ``at_bound``: a free parameter on its bound; ``not_identifiable``: J*ᵀJ* is
   numerically rank-deficient (the parameters in its null space get no standard error and the
   whole box as their interval); ``poor_fit``: with σ known, χ² lies in either tail beyond
   ``poor_fit_alpha`` (the model does not explain the data, or σ is wrong); ``not_converged``:
   step 3 did not settle within ``refinements`` served passes.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from fastlrnr.numerics.correction import ErrorCorrection
from fastlrnr.numerics.error_estimate import ErrorModel
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.hypernet import HyperWeights, hyper_rows
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.numerics.reference_rung import points_for, solve_at_sites, solve_to_tolerance
from fastlrnr.numerics.sensitivity import ParameterSensitivity
from fastlrnr.numerics.stats import chi2_cdf, chi2_sf, normal_quantile, student_t_quantile

if TYPE_CHECKING:
    from fastlrnr.numerics.artifact import Artifact

BOUND_TOL = 1e-9  # a scaled parameter within this of 0 or 1 lies on its bound
CHI2_TOL = 1e-6  # LM stops once a step lowers χ² by less than this
CHI2_SETTLE = 0.05  # step 3 ends when a rejected step had promised to lower χ² by less than this
TRUST_INIT = 0.25  # the first Gauss–Newton step on the served answer moves at most this far (scaled parameters)
FD_STEP = 1e-3  # the step (in parameters scaled to [0, 1]) of the defect's forward differences


class FitFlagCode(StrEnum):
    """Why a fit may not be trusted as it stands."""

    AT_BOUND = "at_bound"
    NOT_IDENTIFIABLE = "not_identifiable"
    POOR_FIT = "poor_fit"
    NOT_CONVERGED = "not_converged"


class Refinement(StrEnum):
    """What the fit is refined on (step 3 of the module docstring)."""

    AUTO = "auto"  # the corrected answer, the reference solver where the corrected one's error is not small
    CORRECTED = "corrected"
    REFERENCE = "reference"
    NONE = "none"  # the LRNR alone (its bias stays: for measurements)


@dataclass(frozen=True)
class FitSettings:
    """How a fit runs (the steps of the module docstring). ``starts``: LM starts (the best points
    of the screening grid); ``screen_per_axis``: screening values per free parameter (None: 9, 5,
    4, 3 for 1, 2, 3, ≥ 4 free parameters); ``max_iterations``: LM iterations per call;
    ``refinements``: most served passes of step 3; ``refine_tol``: step 3 stops once a step would
    move no parameter by more than this many standard errors; ``level``: the intervals' coverage;
    ``rank_tol``: J*ᵀJ* (in the scaled parameters) is rank-deficient when an eigenvalue is below
    this times the largest; ``poor_fit_alpha``: the χ² tail probability that flags a poor fit;
    ``refinement``: what step 3 refines on; ``escalate_ratio``: with ``auto``, the reference
    solver serves when the corrected answer's error ε exceeds this × σ/√n (its worst-case bias in
    standard errors); ``time_budget_s``: the deadline of the reference solver's attempts; ``secant``: after the
    first pass of step 3, update the defect's Jacobian by Broyden's formula instead of differences."""

    starts: int = 1
    screen_per_axis: int | None = None
    max_iterations: int = 30
    refinements: int = 8
    refine_tol: float = 0.1
    level: float = 0.95
    rank_tol: float = 1e-10
    poor_fit_alpha: float = 1e-3
    refinement: Refinement = Refinement.AUTO
    escalate_ratio: float = 0.3
    time_budget_s: float = 2.0
    secant: bool = False

    def screen_size(self, free: int) -> int:
        if self.screen_per_axis is not None:
            return int(self.screen_per_axis)
        return {0: 1, 1: 9, 2: 5, 3: 4}.get(free, 3)


@dataclass(frozen=True)
class Observations:
    """Observed values ``u`` (n,) at the points (``x``, ``t``) (n,), radians and [0, 1]."""

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray

    def __post_init__(self) -> None:
        x, t, u = (np.ascontiguousarray(v, dtype=np.float64) for v in (self.x, self.t, self.u))
        if x.ndim != 1 or x.shape != t.shape or x.shape != u.shape or x.size == 0:
            raise ValueError(f"expected x, t, u of one shape (n,), n ≥ 1; got {x.shape}, {t.shape}, {u.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t)) and np.all(np.isfinite(u))):
            raise ValueError("observations must be finite")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "u", u)

    @property
    def n(self) -> int:
        return int(self.u.size)


@dataclass(frozen=True)
class ServedAnswer:
    """The served answer at the observation points for one μ: ``u`` (n,), ``estimate`` its
    relative L2 error (calibrated), ``scale`` the RMS of the field that estimate is relative to,
    the ``rung`` that produced it (``resolution``: the reference solver's (substeps, points)),
    and ``u_perturbed`` (k, n): the same rung at the perturbed parameter rows it was asked for."""

    u: np.ndarray
    estimate: float
    scale: float
    rung: str
    resolution: tuple[int, int] | None = None
    u_perturbed: np.ndarray | None = None

    @property
    def error(self) -> float:
        """The estimated RMS error of the values, ε = estimate × scale."""
        return float(self.estimate * self.scale)


class CorrectedRefiner:
    """A model's served answer at the observation points: its corrected answer
    (``fastlrnr.numerics.correction``, one LRNR pass on the correction grid for all rows) with the
    calibrated estimate, or the reference solver (``fastlrnr.numerics.reference_rung``) at a
    resolution chosen for a tolerance. Stateless: one instance serves concurrent fits."""

    def __init__(
        self,
        hyper: HyperWeights,
        correction: ErrorCorrection,
        error_model: ErrorModel,
        served: Domain,
        extrapolation_factor: float,
        *,
        family: PdeFamily,
    ):
        self.hyper, self.correction, self.error_model = hyper, correction, error_model
        self.served, self.extrapolation_factor, self.family = served, float(extrapolation_factor), family

    def corrected(self, mu: np.ndarray, obs: Observations, u_lrnr: np.ndarray):
        """Rows mu (k, p) with the LRNR's values u_lrnr (k, n) → corrected values (k, n), their
        estimates (k,) and the RMS of the field on the correction grid (k,)."""
        S = hyper_rows(self.hyper, mu)
        cp = self.correction.evaluate(S, mu)
        cr = self.correction.solve(cp)
        e = cr.field.at_points(obs.x, obs.t)
        est = self.error_model.predict(cr.d, mu) * np.where(self.served.contains(mu), 1.0, self.extrapolation_factor)
        scale = np.sqrt(np.mean(cp.u[:, 1:] ** 2, axis=(1, 2)))  # ‖u‖ over the grid's times t > 0, as d's
        return u_lrnr + e, est, scale

    def reference(self, mu: np.ndarray, obs: Observations, tolerance: float, deadline: float | None):
        """One row mu (1, p) by the reference solver to ``tolerance`` → values (n,), estimate,
        scale, (substeps, points)."""
        ref = solve_to_tolerance(
            mu, obs.x, obs.t, True, tolerance, deadline, points_for(tolerance, self.family, mu), family=self.family
        )
        u = ref.u[0]
        return u, float(ref.estimate[0]), float(np.sqrt(np.mean(u * u))), (int(ref.substeps[0]), int(ref.points[0]))

    def answer(
        self,
        mu: np.ndarray,
        obs: Observations,
        u_lrnr: np.ndarray,
        *,
        mode: Refinement,
        noise: float,
        ratio: float,
        deadline: float | None,
        perturbed: np.ndarray | None = None,
        u_lrnr_perturbed: np.ndarray | None = None,
    ) -> ServedAnswer:
        """The served answer at μ (p,) (the LRNR's values there: u_lrnr (n,)): corrected, or the
        reference when ``mode`` says so or (auto) when the corrected answer's error ε could bias the
        fit by more than ``ratio`` standard errors (√n ε > ratio × noise). With ``perturbed`` rows
        (k, p) (and their LRNR values), the same rung at the same resolution there too."""
        k = 0 if perturbed is None else len(perturbed)
        rows = mu[None] if k == 0 else np.concatenate([mu[None], perturbed])
        lrnr = u_lrnr[None] if k == 0 else np.concatenate([u_lrnr[None], u_lrnr_perturbed])
        limit = ratio * noise / np.sqrt(obs.n)  # the largest ε that biases the fit by < ratio standard errors
        if mode != Refinement.REFERENCE:
            u, est, scale = self.corrected(rows, obs, lrnr)
            if mode == Refinement.CORRECTED or est[0] * scale[0] <= limit:
                return ServedAnswer(u[0], float(est[0]), float(scale[0]), "corrected", None, u[1:] if k else None)
            scale0 = float(scale[0])
        else:
            scale0 = float(np.sqrt(np.mean(u_lrnr * u_lrnr)))
        tolerance = float(min(1e-2, max(1e-7, limit / max(scale0, 1e-300))))
        u0, est0, sc, resolution = self.reference(mu[None], obs, tolerance, deadline)
        pert = None
        if k:
            pert = solve_at_sites(perturbed, obs.x, obs.t, True, resolution[0], resolution[1], family=self.family)
        return ServedAnswer(u0, est0, sc, "reference", resolution, pert)


@dataclass(frozen=True)
class FitModel:
    """What a fit needs of a model: the LRNR and hypernetwork of ``family``, and the refiner that
    gives its served answer (None: fit the LRNR alone)."""

    weights: LRNRWeights
    hyper: HyperWeights
    family: PdeFamily
    refiner: CorrectedRefiner | None = None

    @property
    def params(self) -> tuple[str, ...]:
        return self.family.params

    @classmethod
    def from_artifact(cls, artifact: Artifact, correction: ErrorCorrection | None = None) -> FitModel:
        """The fit model of a loaded artifact: its LRNR and hypernetwork, and its served answer
        (the default corrected rung, with ``correction`` if given, else built in float32 as the
        service builds it; its calibrated estimate and extrapolation factor)."""
        corr = artifact.correction_model(np.float32) if correction is None else correction
        refiner = CorrectedRefiner(
            artifact.hyper,
            corr,
            artifact.correction.rungs[0].error_model,
            artifact.served_domain,
            float(artifact.manifest["correction"].get("extrapolation_factor", 10.0)),
            family=artifact.family,
        )
        return cls(artifact.lrnr, artifact.hyper, artifact.family, refiner)


@dataclass
class FitResult:
    """A fit. Arrays are over all the family's parameters (``names``); ``free`` marks those fitted.

    ``params`` (p,); ``std_errors`` (p,) (0 for held parameters, NaN where not identifiable);
    ``covariance`` (p, p) (0 rows for held parameters, NaN where not identifiable);
    ``intervals`` (p, 2) at ``level``, cut to the bounds; ``sigma``: the noise level used
    (given, or estimated: ``sigma_estimated``); ``surrogate_error``: ε, the served answer's
    estimated RMS error at the fit, ``surrogate_estimate`` its relative form and
    ``widening`` = σ_eff/σ, how much it widens the intervals; ``chi2``, ``dof``, ``chi2_p``
    (P(χ²_dof ≥ χ²)); ``flags`` (code, message, params); ``rung``: what the fit was refined on;
    ``iterations``: LM iterations summed over rounds (of the best start), ``starts``,
    ``refinements``; ``timings`` in seconds; ``start_params`` where step 2 started."""

    names: tuple[str, ...]
    free: np.ndarray
    params: np.ndarray
    std_errors: np.ndarray
    covariance: np.ndarray
    intervals: np.ndarray
    level: float
    sigma: float
    sigma_estimated: bool
    sigma_eff: float
    surrogate_error: float
    surrogate_estimate: float
    widening: float
    chi2: float
    dof: int
    chi2_p: float
    residual_rms: float
    rung: str
    iterations: int
    starts: int
    refinements: int
    converged: bool
    identifiable: np.ndarray
    condition: float
    flags: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    start_params: np.ndarray | None = None  # (starts, p): where step 2 started

    def by_name(self, values: np.ndarray) -> dict[str, float]:
        return {k: float(v) for k, v in zip(self.names, values)}


class FitError(ValueError):
    """A fit that cannot be posed (too few observations, empty box); ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------- LM


@dataclass
class _LMState:
    theta: np.ndarray  # (R, q) in the box
    u: np.ndarray  # (R, n) model values (LRNR + defect)
    J: np.ndarray  # (R, n, q) ∂u/∂θ
    cost: np.ndarray  # (R,) ½‖y − u‖²
    iterations: np.ndarray  # (R,) int
    done: np.ndarray  # (R,) bool: converged


class _Problem:
    """The fit in the free parameters scaled to [0, 1]: θ ↦ μ, and the model's values and
    Jacobians: the LRNR's (step 2), or, once ``linear`` = (θ_k, u_k, J_k) is set (step 3), the
    served answer linearised at θ_k, u_k + J_k (θ − θ_k)."""

    def __init__(self, sens: ParameterSensitivity, obs: Observations, low, high, free: np.ndarray):
        self.sens, self.obs = sens, obs
        self.low, self.high, self.free = low, high, free
        self.span = (high - low)[free]
        self.base = low.copy()  # the held parameters' values (low == high for them)
        self.linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def mu(self, theta: np.ndarray) -> np.ndarray:
        mu = np.repeat(self.base[None], len(theta), axis=0)
        mu[:, self.free] = self.low[self.free] + theta * self.span
        return mu

    def lrnr(self, theta: np.ndarray) -> np.ndarray:
        """The LRNR's values (R, n)."""
        return self.sens.values(self.mu(theta))

    def lrnr_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The LRNR's values (R, n) and exact Jacobian ∂u/∂θ (R, n, q)."""
        u, J = self.sens.values_and_jacobian(self.mu(theta))
        return u, J[:, :, self.free] * self.span

    def values(self, theta: np.ndarray) -> np.ndarray:
        if self.linear is None:
            return self.lrnr(theta)
        t0, u0, J0 = self.linear
        return u0 + (theta - t0) @ J0.T

    def values_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.linear is None:
            return self.lrnr_and_jacobian(theta)
        t0, u0, J0 = self.linear
        return u0 + (theta - t0) @ J0.T, np.repeat(J0[None], len(theta), axis=0)

    def cost(self, u: np.ndarray) -> np.ndarray:
        r = self.obs.u - u
        with np.errstate(over="ignore", invalid="ignore"):
            c = 0.5 * np.sum(r * r, axis=-1)
        return np.where(np.isfinite(c), c, np.inf)


def _levenberg_marquardt(
    problem: _Problem, theta0: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_iterations: int
) -> _LMState:
    """Projected Levenberg–Marquardt from every row of theta0 (R, q) at once, within the box
    [lo, hi] (each (R, q) or (q,)) (module docstring, step 2)."""
    R, q = theta0.shape
    lo, hi = np.broadcast_to(lo, (R, q)), np.broadcast_to(hi, (R, q))
    u, J = problem.values_and_jacobian(theta0)
    st = _LMState(theta0.copy(), u, J, problem.cost(u), np.zeros(R, dtype=int), np.zeros(R, dtype=bool))
    lam, grow = np.full(R, 1e-3), np.full(R, 2.0)
    eye = np.eye(q)
    for _ in range(max_iterations):
        rows = np.flatnonzero(~st.done)
        if rows.size == 0:
            break
        th, Jr = st.theta[rows], st.J[rows]
        r = problem.obs.u - st.u[rows]
        g = -np.einsum("rnq,rn->rq", Jr, r)  # ∂cost/∂θ
        A = np.einsum("rnq,rnk->rqk", Jr, Jr)
        held = ((th <= lo[rows] + BOUND_TOL) & (g > 0)) | ((th >= hi[rows] - BOUND_TOL) & (g < 0))
        keep = (~held).astype(float)
        A_f = A * keep[:, :, None] * keep[:, None, :]
        g_f = g * keep
        diag = np.einsum("rqq->rq", A_f)
        D = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
        M = A_f + lam[rows, None, None] * D[:, :, None] * eye + (1.0 - keep)[:, :, None] * eye
        step = np.linalg.solve(M, -g_f[..., None])[..., 0]
        trial = np.clip(th + step, lo[rows], hi[rows])
        delta = trial - th
        pred = -(np.einsum("rq,rq->r", g, delta) + 0.5 * np.einsum("rq,rqk,rk->r", delta, A, delta))
        u_t, J_t = problem.values_and_jacobian(trial)
        c_t = problem.cost(u_t)
        c0 = st.cost[rows]
        better = c_t < c0
        st.iterations[rows] += 1
        acc = rows[better]
        st.theta[acc], st.u[acc], st.J[acc], st.cost[acc] = trial[better], u_t[better], J_t[better], c_t[better]
        # Nielsen's damping: after a taken step scale by max(1/3, 1 − (2κ − 1)³), else grow
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = np.clip((c0 - c_t) / pred, 0.0, 1.0)
        kappa = np.where(np.isfinite(kappa), kappa, 0.0)
        lam[acc] *= np.maximum(1.0 / 3.0, 1.0 - (2.0 * kappa[better] - 1.0) ** 3)
        grow[acc] = 2.0
        rej = rows[~better]
        lam[rej] *= grow[rej]
        grow[rej] *= 2.0
        # converged: the step no longer moves θ or lowers χ² measurably (by 1e-6 with the noise
        # level the cost implies: 2 (c0 − c_t) / σ̂² with σ̂² = 2 c0 / n), or the gradient vanishes
        small_step = np.max(np.abs(delta), axis=1) < 1e-9
        tiny_gain = better & ((c0 - c_t) * problem.obs.n <= CHI2_TOL * np.maximum(c0, 1e-300))
        stalled = ~better & (lam[rows] > 1e12)
        flat = np.max(np.abs(g_f), axis=1) <= 1e-14 * np.maximum(c0, 1e-300) ** 0.5
        st.done[rows] = small_step | tiny_gain | stalled | flat
    return st


# ---------------------------------------------------------------------- the fit


def _screen(problem: _Problem, q: int, per_axis: int, starts: int) -> np.ndarray:
    """The ``starts`` best points (θ, (starts, q)) of a tensor grid with ``per_axis`` values per
    free parameter (cell centres: no start on a bound), by the LRNR's misfit."""
    if q == 0:
        return np.zeros((1, 0))
    axis = (np.arange(per_axis) + 0.5) / per_axis
    grid = np.array(list(itertools.product(axis, repeat=q)))
    cost = problem.cost(problem.values(grid))
    order = np.argsort(cost, kind="stable")
    return grid[order[: max(1, min(starts, len(grid)))]]


def fit_parameters(
    model: FitModel,
    obs: Observations,
    low: np.ndarray,
    high: np.ndarray,
    *,
    sigma: float | None = None,
    settings: FitSettings | None = None,
    starts: np.ndarray | None = None,
) -> FitResult:
    """Fit the model's parameters to ``obs`` within the box [low, high] (p,) (a parameter with
    low == high is held at that value); ``sigma``: the noise level (None: estimated);
    ``starts``: LM starts (k, p) instead of the screening's. See the module docstring."""
    t_start = time.perf_counter()
    settings = settings or FitSettings()
    names = model.params
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if low.shape != (len(names),) or high.shape != low.shape or np.any(low > high):
        raise FitError(f"expected bounds low ≤ high of shape ({len(names)},), got {low} and {high}", "bounds")
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise FitError(f"sigma must be a finite number > 0, got {sigma}", "noise")
    free = high > low
    q = int(free.sum())
    n = obs.n
    if n < q or (sigma is None and n <= q):
        need = q if sigma is not None else q + 1
        raise FitError(
            f"{n} observations cannot determine {q} free parameters"
            + ("" if sigma is not None else " and the noise level")
            + f": at least {need} are needed",
            "observations",
        )
    sens = ParameterSensitivity(model.weights, model.hyper, obs.x, obs.t, family=model.family)
    problem = _Problem(sens, obs, low, high, free)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if starts is None:
        theta0 = _screen(problem, q, settings.screen_size(q), settings.starts)
    else:
        starts = np.atleast_2d(np.asarray(starts, dtype=np.float64))
        span = np.where(free, high - low, 1.0)
        theta0 = np.clip(((starts - low) / span)[:, free], 0.0, 1.0)
    timings["screen"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    zeros, ones = np.zeros(q), np.ones(q)
    st = _levenberg_marquardt(problem, theta0, zeros, ones, settings.max_iterations if q else 0)
    best = int(np.argmin(st.cost))
    theta, u_fit, J, iterations = st.theta[best], st.u[best], st.J[best], int(st.iterations[best])
    converged = bool(st.done[best]) or q == 0
    timings["lm"] = time.perf_counter() - t0

    # step 3: trust-region Gauss–Newton on the served answer
    t0 = time.perf_counter()
    refiner = model.refiner if settings.refinement != Refinement.NONE else None
    answer: ServedAnswer | None = None
    rounds = 0
    if refiner is not None:
        deadline = time.perf_counter() + settings.time_budget_s
        noise = sigma if sigma is not None else _sigma_hat(obs.u - u_fit, n, q)
        answer, last = _refine_round(problem, refiner, theta, noise, deadline, settings)
        rounds = 1
        u_fit, J = answer.u, problem.linear[2]
        cost = float(problem.cost(answer.u))
        radius = TRUST_INIT
        settled = q == 0
        while not settled:
            se = _std_errors_scaled(J, sigma if sigma is not None else _sigma_hat(obs.u - u_fit, n, q))
            lo, hi = np.maximum(theta - radius, 0.0), np.minimum(theta + radius, 1.0)
            st = _levenberg_marquardt(problem, theta[None], lo, hi, settings.max_iterations)
            iterations += int(st.iterations[0])
            step = st.theta[0] - theta
            at_edge = ((st.theta[0] <= lo + BOUND_TOL) & (lo > 0)) | ((st.theta[0] >= hi - BOUND_TOL) & (hi < 1))
            small = np.all(np.abs(step) <= settings.refine_tol * np.where(np.isfinite(se), se, np.inf))
            if small and not at_edge.any():  # a negligible move, not one the trust region cut short
                theta, u_fit = st.theta[0], st.u[0]  # the linear model's answer
                settled = True
                break
            if rounds >= settings.refinements:
                break
            here = problem.linear
            predicted = float(st.cost[0])
            noise = sigma if sigma is not None else _sigma_hat(obs.u - st.u[0], n, q)
            trial, trial_last = _refine_round(problem, refiner, st.theta[0], noise, deadline, settings, last)
            rounds += 1
            actual = float(problem.cost(trial.u))
            gain = (cost - actual) / max(cost - predicted, 1e-300)
            if actual < cost:
                theta, cost, answer, last = st.theta[0], actual, trial, trial_last
                u_fit, J = trial.u, problem.linear[2]
                if gain > 0.75 and np.max(np.abs(step)) >= 0.9 * radius:
                    radius = min(1.0, 2.0 * radius)
                elif gain < 0.25:
                    radius = 0.25 * float(np.max(np.abs(step)))
            else:  # keep θ and its linear model, its defect's Jacobian updated by what the trial showed
                problem.linear = here
                if settings.secant and trial_last[3] == last[3]:
                    d_theta, D = trial_last[0] - last[0], last[2]
                    step_d = trial_last[1] - last[1] - D @ d_theta
                    D = D + np.outer(step_d, d_theta) / max(float(d_theta @ d_theta), 1e-300)
                    problem.linear = (here[0], here[1], here[2] - last[2] + D)
                    last = (last[0], last[1], D, last[3])
                    J = problem.linear[2]
                radius = 0.25 * float(np.max(np.abs(step)))
                if 2.0 * (cost - predicted) <= CHI2_SETTLE * noise**2:
                    settled = True  # the model promised less than CHI2_SETTLE of χ² and even that failed
        converged = settled
    timings["refine"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = _uncertainty(model, problem, obs, theta, u_fit, J, sigma, answer, settings)
    result.iterations, result.starts, result.refinements = iterations, len(theta0), rounds
    result.start_params = problem.mu(theta0)
    result.converged = converged
    if not converged:
        result.flags.append(
            (
                FitFlagCode.NOT_CONVERGED,
                f"the fit did not settle within {settings.max_iterations} iterations per round and "
                f"{settings.refinements} rounds of refinement; the answer is where it stopped",
                tuple(n for n, f in zip(names, free) if f),
            )
        )
    timings["uncertainty"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    result.timings = timings
    return result


def _refine_round(
    problem: _Problem,
    refiner: CorrectedRefiner,
    theta: np.ndarray,
    noise: float,
    deadline: float,
    settings: FitSettings,
    last: tuple[np.ndarray, np.ndarray, np.ndarray, str] | None = None,
) -> tuple[ServedAnswer, tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """The served answer u* at θ and its Jacobian, the LRNR's exact one plus that of the defect
    δ = u* − u_LRNR (smaller and smoother than u*): by forward differences, their rows batched
    with θ's, or — given the ``last`` round's (θ, δ, ∂δ/∂θ, rung) and ``settings.secant`` — by
    Broyden's update of the last one from the change of δ (one row instead of 1 + q). Sets the
    problem's linear model; returns the answer and this round's (θ, δ, ∂δ/∂θ, rung)."""
    mu = problem.mu(theta[None])[0]
    u_l, J_l = problem.lrnr_and_jacobian(theta[None])
    options = {"mode": settings.refinement, "noise": noise, "ratio": settings.escalate_ratio, "deadline": deadline}
    if last is not None and settings.secant and theta.size:
        answer = refiner.answer(mu, problem.obs, u_l[0], **options)
        if answer.rung == last[3]:
            defect = answer.u - u_l[0]
            d_theta, D = theta - last[0], last[2]
            D = D + np.outer(defect - last[1] - D @ d_theta, d_theta) / max(float(d_theta @ d_theta), 1e-300)
            problem.linear = (theta.copy(), answer.u, J_l[0] + D)
            return answer, (theta.copy(), defect, D, answer.rung)
    steps = np.where(theta + FD_STEP <= 1.0, FD_STEP, -FD_STEP)
    pert = theta[None] + np.diag(steps)
    lrnr = np.concatenate([u_l, problem.lrnr(pert)]) if theta.size else u_l
    answer = refiner.answer(mu, problem.obs, lrnr[0], perturbed=problem.mu(pert), u_lrnr_perturbed=lrnr[1:], **options)
    defect = answer.u - lrnr[0]
    D = ((answer.u_perturbed - lrnr[1:]) - defect).T / steps if theta.size else np.zeros((problem.obs.n, 0))
    problem.linear = (theta.copy(), answer.u, J_l[0] + D)
    return answer, (theta.copy(), defect, D, answer.rung)


def _sigma_hat(r: np.ndarray, n: int, q: int) -> float:
    return float(np.sqrt(np.sum(r * r) / max(1, n - q)))


def _std_errors_scaled(J: np.ndarray, sigma: float) -> np.ndarray:
    """Standard errors of θ (the scaled parameters) from J (n, q); inf where singular."""
    A = J.T @ J
    try:
        cov = np.linalg.pinv(A, hermitian=True)
    except np.linalg.LinAlgError:
        return np.full(J.shape[1], np.inf)
    d = np.diag(cov)
    return sigma * np.sqrt(np.where(d > 0, d, np.inf))


def _uncertainty(
    model: FitModel,
    problem: _Problem,
    obs: Observations,
    theta: np.ndarray,
    u_fit: np.ndarray,
    J: np.ndarray,
    sigma: float | None,
    answer: ServedAnswer | None,
    settings: FitSettings,
) -> FitResult:
    """Step 4 and 5 of the module docstring at the fit θ."""
    names, free = model.params, problem.free
    p, q, n = len(names), int(free.sum()), obs.n
    dof = n - q
    mu = problem.mu(theta[None])[0]
    r = obs.u - u_fit
    rss = float(r @ r)
    eps = answer.error if answer is not None else 0.0
    estimate = answer.estimate if answer is not None else float("nan")
    sigma_used = float(np.sqrt(rss / max(dof, 1))) if sigma is None else float(sigma)
    sigma_eff = float(np.sqrt(sigma_used**2 + n * eps**2))  # the served answer's error at its worst
    widening = sigma_eff / sigma_used if sigma_used > 0 else float("inf")
    chi2 = rss / sigma_eff**2 if sigma_eff > 0 else float("inf")

    # covariance of the scaled parameters, with the null space of JᵀJ removed
    cov = np.zeros((p, p))
    se = np.zeros(p)
    identifiable = np.ones(p, dtype=bool)
    condition = 1.0
    flags: list[tuple[str, str, tuple[str, ...]]] = []
    if q:
        A = J.T @ J
        evals, evecs = np.linalg.eigh(A)
        top = max(float(evals[-1]), 0.0)
        good = evals > settings.rank_tol * top if top > 0 else np.zeros(q, dtype=bool)
        condition = float(top / evals[0]) if evals[0] > 0 else float("inf")
        inv = (evecs[:, good] / evals[good]) @ evecs[:, good].T
        cov_theta = sigma_eff**2 * inv
        scale = problem.span
        cov_free = cov_theta * scale[:, None] * scale[None, :]
        weak = np.zeros(q, dtype=bool)
        if not np.all(good):
            weak = np.any(np.abs(evecs[:, ~good]) > 0.1, axis=1)
        idx = np.flatnonzero(free)
        cov[np.ix_(idx, idx)] = cov_free
        se[idx] = np.sqrt(np.maximum(np.diag(cov_free), 0.0))
        for k in np.flatnonzero(weak):
            i = idx[k]
            identifiable[i] = False
            se[i] = np.nan
            cov[i, :] = cov[:, i] = np.nan
        if np.any(weak):
            bad = tuple(names[idx[k]] for k in np.flatnonzero(weak))
            flags.append(
                (
                    FitFlagCode.NOT_IDENTIFIABLE,
                    f"the observations do not determine {', '.join(bad)}: the Jacobian ∂u/∂μ is rank-deficient "
                    f"(rank {int(good.sum())} of {q}); their intervals are the bounds",
                    bad,
                )
            )
    if sigma is None:
        z = student_t_quantile(0.5 + 0.5 * settings.level, dof)
    else:
        z = normal_quantile(0.5 + 0.5 * settings.level)
    lo_b, hi_b = problem.low, problem.high
    intervals = np.stack([np.maximum(mu - z * se, lo_b), np.minimum(mu + z * se, hi_b)], axis=1)
    intervals[~identifiable] = np.stack([lo_b, hi_b], axis=1)[~identifiable]
    intervals[~free] = mu[~free, None]
    idx = np.flatnonzero(free)
    on_bound = [
        (i, "low" if theta[k] <= 0.5 else "high") for k, i in enumerate(idx) if min(theta[k], 1 - theta[k]) <= BOUND_TOL
    ]
    if on_bound:
        words = ", ".join(f"{names[i]} = {mu[i]:g} ({side})" for i, side in on_bound)
        flags.append(
            (
                FitFlagCode.AT_BOUND,
                f"the best fit lies on the bounds: {words}; the minimum may lie beyond them",
                tuple(names[i] for i, _ in on_bound),
            )
        )
    chi2_p = chi2_sf(chi2, dof) if dof > 0 and np.isfinite(chi2) else float("nan")
    if sigma is not None and dof > 0:
        low_p = chi2_cdf(chi2, dof)
        if chi2_p < settings.poor_fit_alpha or low_p < settings.poor_fit_alpha:
            side = "larger" if chi2_p < settings.poor_fit_alpha else "smaller"
            flags.append(
                (
                    FitFlagCode.POOR_FIT,
                    f"χ² = {chi2:.4g} with {dof} degrees of freedom is much {side} than the noise explains "
                    f"(P = {min(chi2_p, low_p):.2g}): the model does not explain the data, or sigma is wrong",
                    (),
                )
            )
    return FitResult(
        names=names,
        free=free.copy(),
        params=mu,
        std_errors=se,
        covariance=cov,
        intervals=intervals,
        level=settings.level,
        sigma=sigma_used,
        sigma_estimated=sigma is None,
        sigma_eff=sigma_eff,
        surrogate_error=eps,
        surrogate_estimate=estimate,
        widening=widening,
        chi2=chi2,
        dof=dof,
        chi2_p=chi2_p,
        residual_rms=float(np.sqrt(rss / n)),
        rung=answer.rung if answer is not None else "surrogate",
        iterations=0,
        starts=0,
        refinements=0,
        converged=True,
        identifiable=identifiable,
        condition=condition,
        flags=flags,
    )
