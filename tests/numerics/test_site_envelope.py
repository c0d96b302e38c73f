"""fastlrnr/numerics/site_envelope.py: a pointwise bound of the surrogate's error that holds at any
sites, and the relative estimate built on it."""

from __future__ import annotations

import numpy as np
import pytest

from fastlrnr.numerics.families.allen_cahn import ALLEN_CAHN
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.site_envelope import SiteEnvelope, fit_site_envelope, patch_sup

X, T = np.meshgrid(*standard_grid())  # (100, 256)


def error_field(mu: np.ndarray) -> np.ndarray:
    """A smooth-in-μ error with a sharp, moving front (as a shock leaves): (G, 100, 256)."""
    nu, rho = mu[:, 0, None, None], mu[:, 1, None, None]
    front = np.pi + 0.3 * rho * T
    width = 0.05 + nu
    return 1e-3 * (1 + rho) * T * np.exp(-(((X - front + np.pi) % (2 * np.pi) - np.pi) ** 2) / width**2)


def fitted(coverage=0.999):
    rng = np.random.default_rng(0)
    held = ALLEN_CAHN.sample(60, rng)
    return fit_site_envelope(ALLEN_CAHN, 5, error_field(ALLEN_CAHN.grid(5)), held, error_field(held), coverage)


def test_patch_sup_covers_every_grid_point_of_its_patch():
    err = np.random.default_rng(1).normal(size=(2, 100, 256))
    sup = patch_sup(err, 32, 17)
    assert sup.shape == (2, 17, 32) and np.all(sup >= 0)
    # every grid point lies in the patch of the nodes around it: the four surrounding nodes' max ≥ |e|
    env = SiteEnvelope((np.array([0.0, 1.0]),), 32, 17, np.log(sup), 0.0, 1.0, 1.0)
    b = env.bound(np.array([[0.0], [1.0]]), X.ravel(), T.ravel())
    assert np.all(b >= np.abs(err.reshape(2, -1)) * (1 - 1e-12))


def test_the_bound_holds_at_every_point_of_held_out_and_fresh_rows():
    env = fitted()
    fresh = ALLEN_CAHN.sample(200, np.random.default_rng(7))
    b = env.bound(fresh, X.ravel(), T.ravel())
    e = np.abs(error_field(fresh)).reshape(len(fresh), -1)
    held_share = np.mean(np.all(b >= e, axis=1))
    assert held_share >= 0.99, held_share
    tightness = np.linalg.norm(b, axis=1) / np.linalg.norm(e, axis=1)
    assert np.median(tightness) < 10, np.median(tightness)  # a bound, not a vacuous one
    again = SiteEnvelope.from_parts(env.to_dict(), env.to_arrays())  # as an artifact stores it
    b_again = again.bound(fresh, X.ravel(), T.ravel())
    assert env.offset >= 0 and np.all(b_again >= b) and np.allclose(b_again, b, rtol=1e-6)


def test_the_relative_estimate_covers_the_error_at_any_few_sites():
    env = fitted()
    rng = np.random.default_rng(3)
    mu = ALLEN_CAHN.sample(300, rng)
    e_all = error_field(mu)
    u_ref = 0.5 + 0.4 * np.sin(X)[None] + 0.0 * e_all  # any reference field; the answer is u_ref + e
    broken = 0
    for P in (1, 4, 16, 64):
        ix, it = rng.integers(0, 256, (len(mu), P)), rng.integers(0, 100, (len(mu), P))
        rows = np.arange(len(mu))[:, None]
        e = e_all[rows, it, ix]
        u = u_ref[rows, it, ix] + e
        est = env.estimate(mu, X[it, ix], T[it, ix], u)
        true = np.linalg.norm(e, axis=1) / np.linalg.norm(u_ref[rows, it, ix], axis=1)
        broken += int(np.sum(true > est))
    assert broken == 0


def test_an_answer_no_larger_than_its_bound_has_an_infinite_estimate_and_outside_is_widened():
    env = fitted()
    mu = np.array([[0.05, 2.0]])
    tiny = env.estimate(mu, [np.pi], [1.0], np.array([[1e-9]]))
    assert tiny[0] == np.inf
    inside = env.bound(mu, [np.pi], [1.0])
    outside = env.bound(np.array([[0.05, 9.0]]), [np.pi], [1.0])
    assert outside[0, 0] >= 10.0 * env.bound(np.array([[0.05, 5.0]]), [np.pi], [1.0])[0, 0] * (1 - 1e-12)
    assert inside[0, 0] > 0


def test_shapes_are_checked():
    env = fitted()
    with pytest.raises(ValueError, match=r"expected shape \(B, 2\)"):
        env.bound(np.ones((2, 3)), [0.0], [0.0])
    with pytest.raises(ValueError, match="log_sup of shape"):
        SiteEnvelope(env.axes, env.nx, env.nt, env.log_sup[..., :-1], 0.0, 0.99, 10.0)
