"""POD / DEIM / EIM error (fastlrnr/numerics/eim.py)."""

import numpy as np
import pytest

from fastlrnr.numerics.eim import deim_indices, eim_interpolation_error, pod_basis


def low_rank_snapshots(N=40, S=30, r=4, seed=0, mix_seed=None):
    """(N, S) snapshots spanning one fixed r-dimensional subspace (fixed by seed)."""
    left = np.random.default_rng(seed).normal(size=(N, r))
    return left @ np.random.default_rng(mix_seed).normal(size=(r, S))


@pytest.mark.parametrize("n", [4, 6])
def test_pod_spans_snapshots_of_rank_at_most_n(n):
    H = low_rank_snapshots(r=4, mix_seed=1)
    Phi, sing = pod_basis(H, n)
    assert Phi.shape == (40, n) and sing.shape == (30,)
    np.testing.assert_allclose(Phi.T @ Phi, np.eye(n), atol=1e-12)
    assert np.all(np.diff(sing) <= 1e-12)
    assert sing[4] < 1e-12 * sing[0]
    np.testing.assert_allclose(Phi @ (Phi.T @ H), H, atol=1e-11 * np.abs(H).max())


def test_pod_truncation_error_is_the_discarded_singular_values():
    H = np.random.default_rng(1).normal(size=(20, 15))
    Phi, sing = pod_basis(H, 5)
    err = np.linalg.norm(H - Phi @ (Phi.T @ H))
    assert err == pytest.approx(np.sqrt(np.sum(sing[5:] ** 2)), rel=1e-10)


@pytest.mark.parametrize("n", [4, 5])
def test_eim_is_exact_on_snapshots_of_rank_at_most_n(n):
    H = low_rank_snapshots(r=4, mix_seed=1)
    Phi, _ = pod_basis(H, n)
    p = deim_indices(Phi)
    assert eim_interpolation_error(Phi, p, H) < 1e-10
    # and on new data from the same subspace
    H_new = low_rank_snapshots(r=4, S=7, mix_seed=99)
    assert eim_interpolation_error(Phi, p, H_new) < 1e-10


def test_deim_picks_the_dominant_rows():
    rng = np.random.default_rng(2)
    rows = [7, 2, 11, 0, 5]
    Phi = 1e-2 * rng.normal(size=(13, len(rows)))
    for j, r in enumerate(rows):
        Phi[r, j] = 10.0 - j  # column j peaks at row rows[j]
    p = deim_indices(Phi)
    assert p.dtype.kind == "i" and p.tolist() == rows


def test_deim_on_a_full_orthonormal_basis_is_a_permutation():
    Phi, _ = pod_basis(np.random.default_rng(3).normal(size=(9, 20)), 9)
    p = deim_indices(Phi)
    assert sorted(p.tolist()) == list(range(9))
    assert eim_interpolation_error(Phi, p, np.random.default_rng(4).normal(size=(9, 6))) < 1e-12


def test_eim_error_is_relative_and_zero_for_zero_data():
    Phi, _ = pod_basis(np.random.default_rng(5).normal(size=(10, 10)), 3)
    p = deim_indices(Phi)
    H = np.random.default_rng(6).normal(size=(10, 4))
    assert eim_interpolation_error(Phi, p, 3.0 * H) == pytest.approx(eim_interpolation_error(Phi, p, H))
    assert eim_interpolation_error(Phi, p, np.zeros((10, 2))) == 0.0


def test_shapes_are_validated():
    H = low_rank_snapshots(mix_seed=1)
    with pytest.raises(ValueError, match="rank n"):
        pod_basis(H, 31)
    with pytest.raises(ValueError, match="rank n"):
        pod_basis(H, 0)
    with pytest.raises(ValueError, match="expected shape"):
        pod_basis(H[0], 2)
    with pytest.raises(ValueError, match="NaN"):
        pod_basis(np.full((3, 3), np.nan), 1)
    Phi, _ = pod_basis(H, 3)
    with pytest.raises(ValueError, match=r"expected shape \(40, S\)"):
        eim_interpolation_error(Phi, deim_indices(Phi), H[:20])
    with pytest.raises(ValueError, match="distinct"):
        eim_interpolation_error(Phi, np.array([1, 1, 2]), H)
    with pytest.raises(ValueError, match="integer indices"):
        eim_interpolation_error(Phi, np.array([1.0, 2.0, 3.0]), H)
    with pytest.raises(ValueError, match="span"):
        deim_indices(np.ones((5, 2)))
