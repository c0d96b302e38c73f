"""fastlrnr/numerics/error_estimate.py: the log-linear error model, its calibration and quality measures."""

import numpy as np
import pytest

from fastlrnr.numerics.error_estimate import ErrorModel, estimate_quality, fit_error_model, spearman
from fastlrnr.numerics.families.cdr import CDR


def synthetic(n=400, seed=0, noise=0.2):
    """Errors that follow e = 0.3 · res^0.9 · exp(0.5 ν̃) with log-normal noise."""
    rng = np.random.default_rng(seed)
    mu = CDR.sample(n, rng)
    res = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), n))
    nu_scaled = 2 * (mu[:, 1] - 0.0) / 2.0 - 1
    err = 0.3 * res**0.9 * np.exp(0.5 * nu_scaled + noise * rng.normal(size=n))
    return res, mu, err


def test_fit_recovers_the_law_and_covers_at_the_requested_quantile():
    res, mu, err = synthetic()
    model = fit_error_model(res, mu, err, CDR, coverage=0.9)
    assert model.coef[1] == pytest.approx(0.9, abs=0.05)
    assert model.coef[3] == pytest.approx(0.5, abs=0.07)
    assert abs(model.coef[2]) < 0.07 and abs(model.coef[4]) < 0.07
    est = model.predict(res, mu)
    assert np.mean(est >= err) == pytest.approx(0.9, abs=0.01)
    # fresh data from the same law: coverage close to the target, estimate tight
    res2, mu2, err2 = synthetic(seed=1)
    q = estimate_quality(model.predict(res2, mu2), err2)
    assert 0.85 <= q["covered"] <= 0.95 and q["within_1_to_5x"] >= 0.85 and q["spearman"] > 0.9


def test_round_trip_and_validation():
    res, mu, err = synthetic(50)
    model = fit_error_model(res, mu, err, CDR)
    back = ErrorModel.from_dict(model.to_dict())
    np.testing.assert_array_equal(back.predict(res, mu), model.predict(res, mu))
    with pytest.raises(ValueError, match="coefficients"):
        ErrorModel.from_dict({**model.to_dict(), "coef": [1.0, 2.0]})
    with pytest.raises(ValueError, match="one proxy value per parameter row"):
        model.predict(res[:3], mu[:4])
    with pytest.raises(ValueError, match="coverage"):
        fit_error_model(res, mu, err, CDR, coverage=1.0)


def test_spearman_and_quality_measures():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, rel=1e-6)  # ties at average rank
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    q = estimate_quality(np.array([1.0, 4.0, 30.0, 2.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert q["covered"] == 0.75 and q["within_1_to_5x"] == 0.5 and q["median_ratio"] == 1.5
