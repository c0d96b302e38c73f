"""The distribution functions a fit reports (fastlrnr/numerics/stats.py), against scipy."""

import math

import pytest

from fastlrnr.numerics.stats import (
    beta_inc,
    chi2_cdf,
    chi2_sf,
    gamma_p,
    gamma_q,
    normal_quantile,
    student_t_cdf,
    student_t_quantile,
)

scipy_stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

DOFS = [1, 2, 3, 5, 13, 61, 253, 1000, 100_000]


@pytest.mark.parametrize("dof", DOFS)
def test_chi2_tails(dof):
    for x in (1e-3, 0.5, 1.0, 0.5 * dof, dof, 1.5 * dof, 3.0 * dof, dof + 8 * math.sqrt(2 * dof)):
        assert chi2_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)
        assert chi2_cdf(x, dof) == pytest.approx(scipy_stats.chi2.cdf(x, dof), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("dof", DOFS)
def test_student_t(dof):
    for p in (0.6, 0.9, 0.975, 0.995, 0.9995):
        assert student_t_quantile(p, dof) == pytest.approx(scipy_stats.t.ppf(p, dof), rel=1e-9)
        assert student_t_quantile(1 - p, dof) == pytest.approx(scipy_stats.t.ppf(1 - p, dof), rel=1e-9)
    for t in (-3.0, -0.5, 0.0, 0.7, 2.5):
        assert student_t_cdf(t, dof) == pytest.approx(scipy_stats.t.cdf(t, dof), rel=1e-10, abs=1e-15)


def test_incomplete_functions_and_the_normal_quantile():
    for a, x in ((0.5, 0.1), (3.0, 2.0), (10.0, 30.0), (100.0, 90.0)):
        assert gamma_p(a, x) == pytest.approx(special.gammainc(a, x), rel=1e-11)
        assert gamma_q(a, x) == pytest.approx(special.gammaincc(a, x), rel=1e-11)
    for a, b, x in ((0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (50.0, 0.5, 0.99)):
        assert beta_inc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-11)
    assert normal_quantile(0.975) == pytest.approx(1.959963984540054, rel=1e-12)
    assert student_t_quantile(0.975, 13) > normal_quantile(0.975)


def test_bad_arguments():
    with pytest.raises(ValueError):
        student_t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        student_t_quantile(0.5, 0)
