"""The linearised correction (core/correction.py): interpolation to any sites, the two-grid
difference, and what it does to the shipped models' errors against the reference solver."""

from pathlib import Path

import numpy as np
import pytest

from core.artifact import load_artifact
from core.correction import ErrorField, LinearisedCorrection, _time_matrix
from core.error_estimate import spearman
from core.error_proxy import ErrorProxy
from core.pde import CDR, uniform_grid
from core.random_model import random_model
from core.spectral import trig_interpolate
from training.sweep import corrected_errors, fields, hyper_rows, reference_fields, relative_l2

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("nx", [15, 16])
def test_trigonometric_interpolation_is_exact_for_resolved_modes(nx, monkeypatch):
    import core.spectral

    f = lambda x: 0.5 + np.sin(2 * x) - 0.3 * np.cos(7 * x) + 0.2 * np.sin(5 * x - 1)  # degree 7 < nx / 2
    xj, _ = uniform_grid(nx, 2)
    x = np.random.default_rng(0).uniform(-3, 10, 50)
    values = np.stack([f(xj), 2 * f(xj)])
    np.testing.assert_allclose(trig_interpolate(values, x), np.stack([f(x), 2 * f(x)]), atol=1e-12)
    np.testing.assert_allclose(trig_interpolate(f(xj), xj), f(xj), atol=1e-12)  # nodes reproduced
    monkeypatch.setattr(core.spectral, "SITES_CHUNK", 7)  # chunked: the same values
    np.testing.assert_allclose(trig_interpolate(f(xj), x), f(x), atol=1e-12)


def test_time_interpolation_is_linear_and_clamped():
    tg = np.linspace(0, 1, 5)
    t = np.array([0.0, 0.1, 0.5, 0.97, 1.0, 1.5, -0.2])
    B = _time_matrix(tg, t)
    np.testing.assert_allclose(B.sum(axis=1), 1.0)
    np.testing.assert_allclose(B @ (3 * tg - 1), 3 * np.clip(t, 0, 1) - 1, atol=1e-14)


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
    corr = LinearisedCorrection(w, (16, 9), (8, 5), dtype=np.float64)
    S = np.abs(np.random.default_rng(2).normal(size=(3, 7)))
    mu = np.array([[1.0, 0.5, 1.0], [2.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    field, d = corr(S, mu)
    e, _ = ErrorProxy(w, 16, 9, dtype=np.float64).error_field(S, mu)
    np.testing.assert_allclose(field.e, e, rtol=1e-12)
    assert np.all(np.isfinite(d) & (d > 0))
    # the two-grid difference measures discretisation: it shrinks as both grids are refined
    _, d_finer = LinearisedCorrection(w, (32, 17), (16, 9), dtype=np.float64)(S, mu)
    _, d_finest = LinearisedCorrection(w, (64, 33), (32, 17), dtype=np.float64)(S, mu)
    assert np.all(d_finer < 0.6 * d) and np.all(d_finest < 0.6 * d_finer), (d, d_finer, d_finest)
    assert corr.to_dict() == {"nx": 16, "nt": 9, "coarse": {"nx": 8, "nt": 5}}
    with pytest.raises(ValueError, match="finer"):
        LinearisedCorrection(w, (16, 9), (16, 5))


@pytest.mark.parametrize("name", ["cdr", "convection"])
def test_correction_cuts_the_shipped_models_errors_on_faces_and_corners(name):
    """Against the reference solver over the corners, edges, faces and centre of the trained
    domain (27 sets for cdr, 9 β for convection), for the hypernetwork's coefficients: every
    corrected error is below the uncorrected one, the median at least 5× lower, and the
    two-grid difference ranks the corrected errors."""
    art = load_artifact(ROOT / "artifacts" / name)
    mus = art.domain.grid(3 if name == "cdr" else 9)
    S = hyper_rows(art.hyper, mus)
    refs = reference_fields(mus)
    u = fields(art.lrnr, S)
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
    nested = LinearisedCorrection(w, (32, 33), (16, 17), dtype=np.float64)
    assert nested.coarse_proxy is None
    separate = LinearisedCorrection(w, (32, 33), (16, 17), dtype=np.float64)
    separate._stride, separate.coarse_proxy = None, ErrorProxy(w, 16, 17, dtype=np.float64)
    (e1, d1), (e2, d2) = nested(S, mu), separate(S, mu)
    np.testing.assert_allclose(e1.e, e2.e, rtol=1e-12)
    np.testing.assert_allclose(d1, d2, rtol=1e-9)
    assert LinearisedCorrection(w, (32, 33), (12, 17)).coarse_proxy is not None


def test_long_axes_and_many_points_are_interpolated_in_chunks(monkeypatch):
    import core.correction as correction
    import core.spectral

    e = np.random.default_rng(4).normal(size=(2, 5, 8))
    field = ErrorField(e, 1.0)
    x = np.linspace(0, 7, 23)
    t = np.linspace(0, 1, 23)
    whole_axes, whole_points = field.on_axes(x, t[:3]), field.at_points(x, t)
    monkeypatch.setattr(correction, "SITES_CHUNK", 5)
    monkeypatch.setattr(core.spectral, "SITES_CHUNK", 5)
    np.testing.assert_allclose(field.on_axes(x, t[:3]), whole_axes, atol=1e-13)
    np.testing.assert_allclose(field.at_points(x, t), whole_points, atol=1e-13)
