"""The correction (fastlrnr/numerics/correction.py): interpolation to any sites, Newton's iteration on the
error equation, substeps, the two-grid difference, and what it does to the shipped models'
errors against the reference solver."""

from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.correction import ErrorCorrection, ErrorField, newton_error_field, on_substeps
from fastlrnr.numerics.error_estimate import spearman
from fastlrnr.numerics.error_proxy import ErrorProxy
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.grid import uniform_grid
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.numerics.random_model import random_model
from fastlrnr.numerics.spectral import cubic_in_time, trig_interpolate
from fastlrnr.training.row_answers import corrected_errors, fields, reference_fields, relative_l2

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("nx", [15, 16])
def test_trigonometric_interpolation_is_exact_for_resolved_modes(nx, monkeypatch):
    import fastlrnr.numerics.spectral

    f = lambda x: 0.5 + np.sin(2 * x) - 0.3 * np.cos(7 * x) + 0.2 * np.sin(5 * x - 1)  # degree 7 < nx / 2
    xj, _ = uniform_grid(nx, 2)
    x = np.random.default_rng(0).uniform(-3, 10, 50)
    values = np.stack([f(xj), 2 * f(xj)])
    np.testing.assert_allclose(trig_interpolate(values, x), np.stack([f(x), 2 * f(x)]), atol=1e-12)
    np.testing.assert_allclose(trig_interpolate(f(xj), xj), f(xj), atol=1e-12)  # nodes reproduced
    monkeypatch.setattr(fastlrnr.numerics.spectral, "SITES_CHUNK", 7)  # chunked: the same values
    np.testing.assert_allclose(trig_interpolate(f(xj), x), f(x), atol=1e-12)


def test_time_interpolation_is_cubic_exact_and_clamped():
    """Catmull–Rom with quadratic end ghosts: exact for quadratics everywhere (ends included),
    third order for smooth data, the nodes reproduced, t clamped to the grid."""
    tg = np.linspace(0, 1, 6)
    t = np.array([0.0, 0.05, 0.1, 0.5, 0.97, 1.0, 1.5, -0.2])
    q = lambda s: 2 * s * s - 3 * s + 0.5
    values = np.stack([q(tg), -q(tg)])[:, :, None]
    out = cubic_in_time(values, tg, t)[:, :, 0]
    np.testing.assert_allclose(out, np.stack([q(np.clip(t, 0, 1)), -q(np.clip(t, 0, 1))]), atol=1e-13)
    errs = []
    for n in (9, 17, 33):
        grid = np.linspace(0, 1, n)
        fine = np.linspace(0, 1, 301)
        errs.append(
            np.abs(cubic_in_time(np.sin(5 * grid)[None, :, None], grid, fine)[0, :, 0] - np.sin(5 * fine)).max()
        )
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 2.7), orders  # third order (fourth inside, third at the ghost-point ends)
    np.testing.assert_allclose(on_substeps(values, 3)[:, ::3], values, atol=1e-14)


def test_axes_and_points_agree():
    e = np.random.default_rng(1).normal(size=(2, 9, 16))
    field = ErrorField(e, 1.0)
    x, t = np.linspace(0, 6, 7), np.linspace(0, 1, 4)
    X, T = np.meshgrid(x, t)
    on_axes = field.on_axes(x, t)
    at_points = field.at_points(X.ravel(), T.ravel())
    np.testing.assert_allclose(at_points, on_axes.reshape(2, -1), atol=1e-12)
    xg, tg = uniform_grid(16, 9)
    np.testing.assert_allclose(field.on_axes(xg, tg), e, atol=1e-12)  # its own grid: itself


def test_correction_of_a_random_model_is_its_fine_error_field():
    w, _ = random_model(24, (4, 3), CDR, seed=5)
    corr = ErrorCorrection(w, (16, 9), (8, 5), dtype=np.float64, family=CDR_FAMILY)
    S = np.abs(np.random.default_rng(2).normal(size=(3, 7)))
    mu = np.array([[1.0, 0.5, 1.0], [2.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    field, d = corr(S, mu)
    e, _ = ErrorProxy(w, 16, 9, dtype=np.float64, family=CDR_FAMILY).error_field(S, mu)
    np.testing.assert_allclose(field.e, e, rtol=1e-12)
    assert np.all(np.isfinite(d) & (d > 0))
    # the two-grid difference measures discretisation: it shrinks as both grids are refined
    _, d_finer = ErrorCorrection(w, (32, 17), (16, 9), dtype=np.float64, family=CDR_FAMILY)(S, mu)
    _, d_finest = ErrorCorrection(w, (64, 33), (32, 17), dtype=np.float64, family=CDR_FAMILY)(S, mu)
    assert np.all(d_finer < 0.6 * d) and np.all(d_finest < 0.6 * d_finer), (d, d_finer, d_finest)
    assert corr.to_dict() == {
        "nx": 16,
        "nt": 9,
        "coarse": {"nx": 8, "nt": 5},
        "substeps": 1,
        "newton": {"iterations": 0, "tol": 1e-9},
    }
    for coarse in ((16, 9), (32, 5), (8, 17)):  # the same grid, or coarser on neither axis
        with pytest.raises(ValueError, match="finer"):
            ErrorCorrection(w, (16, 9), coarse, family=CDR_FAMILY)
    ErrorCorrection(w, (16, 9), (16, 5), family=CDR_FAMILY)  # finer in t only: a valid check of the time step


@pytest.mark.parametrize("name", ["cdr", "convection", "allen_cahn"])
def test_correction_cuts_the_shipped_models_errors_on_faces_and_corners(name):
    """Against the reference solver over the corners, edges, faces and centre of the served
    domain (27 sets for cdr, 9 β for convection, 9 (ν, ρ) for Allen–Cahn; cdr's and
    convection's are their trained domains), for the hypernetwork's coefficients: every
    corrected error is below the uncorrected one, the median at least 5× lower, and the
    two-grid difference ranks the corrected errors."""
    art = load_artifact(ROOT / "artifacts" / name)
    mus = art.served_domain.grid(9 if len(art.served_domain.active) == 1 else 3)  # cdr, convection: the domain
    S = hyper_rows(art.hyper, mus)
    refs = reference_fields(mus, art.family)
    u = fields(art.lrnr, S, family=art.family)
    err = relative_l2(u, refs)
    corrected, d = corrected_errors(art.correction_model(), S, mus, u, refs)
    assert np.all(corrected < err), np.c_[mus, err, corrected]
    assert np.median(corrected) < np.median(err) / 5
    assert spearman(d, corrected) > 0.8
    assert corrected.max() < 0.02  # the 2% target everywhere on the sweep of faces and corners


def test_a_nested_coarse_grid_reuses_the_fine_residual():
    """16×17 inside 32×33: the coarse error comes from the fine residual's every other point,
    and equals a separate coarse pass; a non-nested coarse grid takes its own pass."""
    w, _ = random_model(24, (4, 3), CDR, seed=6)
    S = np.abs(np.random.default_rng(3).normal(size=(2, 7)))
    mu = np.array([[1.5, 0.3, 1.0], [2.5, 1.0, 0.0]])
    nested = ErrorCorrection(w, (32, 33), (16, 17), dtype=np.float64, family=CDR_FAMILY)
    assert nested.coarse_proxy is None
    separate = ErrorCorrection(w, (32, 33), (16, 17), dtype=np.float64, family=CDR_FAMILY)
    separate._stride, separate.coarse_proxy = None, ErrorProxy(w, 16, 17, dtype=np.float64, family=CDR_FAMILY)
    (e1, d1), (e2, d2) = nested(S, mu), separate(S, mu)
    np.testing.assert_allclose(e1.e, e2.e, rtol=1e-12)
    np.testing.assert_allclose(d1, d2, rtol=1e-9)
    assert ErrorCorrection(w, (32, 33), (12, 17), family=CDR_FAMILY).coarse_proxy is not None


def test_long_axes_and_many_points_are_interpolated_in_chunks(monkeypatch):
    import fastlrnr.numerics.correction as correction
    import fastlrnr.numerics.spectral

    e = np.random.default_rng(4).normal(size=(2, 5, 8))
    field = ErrorField(e, 1.0)
    x = np.linspace(0, 7, 23)
    t = np.linspace(0, 1, 23)
    whole_axes, whole_points = field.on_axes(x, t[:3]), field.at_points(x, t)
    monkeypatch.setattr(correction, "SITES_CHUNK", 5)
    monkeypatch.setattr(fastlrnr.numerics.spectral, "SITES_CHUNK", 5)
    np.testing.assert_allclose(field.on_axes(x, t[:3]), whole_axes, atol=1e-13)
    np.testing.assert_allclose(field.at_points(x, t), whole_points, atol=1e-13)


def _manufactured(mu: np.ndarray, nx: int = 32, nt: int = 33):
    """An exact solution ū and a field u = ū − e* with a known error e*: returns (r, u, e*) on
    uniform_grid(nx, nt), r = R[u] computed from the closed forms."""
    x, t = uniform_grid(nx, nt)
    X, T = np.meshgrid(x, t)
    beta, nu, rho = mu
    # e* = a t (1 + cos(x − t)) vanishes at t = 0; ū = u + e*; the residual of u = ū − e* is
    # R[u] = R[ū] − L_ū-ish terms: compute it exactly from the PDE with analytic derivatives
    a = 0.3
    ub = 1.0 + 0.5 * np.sin(X) * np.exp(-T)  # not a solution: its own residual is part of r
    ub_t, ub_x, ub_xx = -0.5 * np.sin(X) * np.exp(-T), 0.5 * np.cos(X) * np.exp(-T), -0.5 * np.sin(X) * np.exp(-T)
    es = a * T * (1 + np.cos(X - T))
    es_t = a * (1 + np.cos(X - T)) + a * T * np.sin(X - T)
    es_x, es_xx = -a * T * np.sin(X - T), -a * T * np.cos(X - T)
    u, u_t, u_x, u_xx = ub - es, ub_t - es_t, ub_x - es_x, ub_xx - es_xx
    r = u_t + beta * u_x - nu * u_xx - rho * u * (1 - u)
    rb = ub_t + beta * ub_x - nu * ub_xx - rho * ub * (1 - ub)  # ū's residual: the true error solves
    return r - rb, u, es  # R[u] − R[ū] = −(L_u e* + ρ e*²): the error equation with source r − r̄


def test_newton_finds_the_exact_error_of_a_manufactured_case_and_never_makes_it_worse():
    """u = ū − e* with e* known: the linearised solve misses e* by O(ρ e*²); Newton's steps
    reach the discretisation error, every step at least as close as the one before, and the
    increments fall quadratically until they reach roundoff."""
    mu = np.array([[2.0, 0.1, 2.0], [1.0, 0.5, 1.0], [3.0, 0.0, 0.0]])
    r, u, es = zip(*(_manufactured(m, 32, 129) for m in mu))
    r, u, es = np.stack(r), np.stack(u), np.stack(es)
    errs = []
    for k in range(4):
        e, e_lin, steps, inc = newton_error_field(r, u, mu, 1.0, k, 0.0, family=CDR_FAMILY)
        errs.append(np.sqrt(np.sum((e - es) ** 2, axis=(1, 2)) / np.sum(es**2, axis=(1, 2)) + 1e-300))
        if k == 0:
            assert np.all(steps == 0) and np.isnan(inc[:2]).all() and inc[2] == 0.0  # ρ = 0: linear, exact at once
            np.testing.assert_allclose(e, e_lin)
    errs = np.array(errs)
    assert errs[0, 0] > 0.05  # the linearised error misses the nonlinear part at ρ = 2
    # never worse (up to a few per cent once only the grid's discretisation error is left)
    assert np.all(errs[1:] <= errs[:-1] * 1.05), errs
    assert errs[-1, 0] < errs[0, 0] / 10, errs[:, 0]  # Newton removes the nonlinear part
    np.testing.assert_allclose(errs[:, 2], errs[0, 2])  # ρ = 0: nothing to iterate
    _, _, steps, inc = newton_error_field(r, u, mu, 1.0, 10, 1e-12, family=CDR_FAMILY)
    assert np.all(steps[:2] <= 5) and np.all(inc[:2] <= 1e-12), (steps, inc)
    # the remaining error is the grid's: it falls with the time step (second order)
    coarse, _, _, _ = newton_error_field(r[:, ::2], u[:, ::2], mu, 1.0, 6, 0.0, family=CDR_FAMILY)
    err_coarse = np.sqrt(np.sum((coarse - es[:, ::2]) ** 2, axis=(1, 2)) / np.sum(es[:, ::2] ** 2, axis=(1, 2)))
    assert np.all(errs[-1, :2] < err_coarse[:2] / 3), (errs[-1], err_coarse)


def test_substeps_cut_the_error_of_a_manufactured_case():
    """The same manufactured error on a 32 × 17 grid: integrating on 4 substeps per interval
    (r and u interpolated cubically) gets closer to e* than on the grid itself."""
    mu = np.array([[2.0, 0.1, 2.0], [1.0, 1.0, 1.0]])
    r, u, es = zip(*(_manufactured(m, 32, 17) for m in mu))
    r, u, es = np.stack(r), np.stack(u), np.stack(es)
    e1, *_ = newton_error_field(r, u, mu, 1.0, 6, 0.0, family=CDR_FAMILY)
    e4, *_ = newton_error_field(on_substeps(r, 4), on_substeps(u, 4), mu, 1.0, 6, 0.0, family=CDR_FAMILY)
    err1 = np.sqrt(np.sum((e1 - es) ** 2, axis=(1, 2)) / np.sum(es**2, axis=(1, 2)))
    err4 = np.sqrt(np.sum((e4[:, ::4] - es) ** 2, axis=(1, 2)) / np.sum(es**2, axis=(1, 2)))
    assert np.all(err4 < err1 / 4), (err1, err4)


def test_newton_with_a_transport_term_takes_only_shrinking_steps():
    """Burgers: where the grid cannot follow the front, Newton's iteration on the error equation
    diverges, and the explicit transport solver's steps grow with max|u + e|. A step whose
    increment does not shrink is refused: that row keeps the iterate before it (here the
    linearised error of the row with the sharpest front), while a mild row converges as before."""
    from fastlrnr.numerics.families import BURGERS_FAMILY

    x, t = uniform_grid(32, 33)
    X, _ = np.meshgrid(x, t)
    mu = np.array([[3.0, 1e-3, 0.0], [2.0, 5e-3, 0.5], [1.0, 1e-2, 1.0]])
    u = np.repeat((1.0 + np.sin(X))[None], 3, axis=0)  # the initial condition held still: wrong once it moves
    beta, nu, rho = (mu[:, i, None, None] for i in range(3))
    r = beta * u * np.cos(X) + nu * np.sin(X) - rho * u * (1.0 - u)  # its residual
    e, e_lin, steps, increment = newton_error_field(r, u, mu, 1.0, 4, 3e-5, BURGERS_FAMILY)
    assert steps[0] == 0 and np.array_equal(e[0], e_lin[0])  # the first step was refused
    assert increment[0] > np.sqrt(np.sum(e_lin[0, 1:] ** 2) / np.sum(u[0, 1:] ** 2))  # ... for growing
    assert 0 < steps[1] < 4 and np.all(np.isfinite(e))
    mild = newton_error_field(0.1 * r, u, mu, 1.0, 4, 3e-5, BURGERS_FAMILY)
    assert mild[2][2] < 4 and mild[3][2] <= 3e-5  # converged to the tolerance, not stopped
