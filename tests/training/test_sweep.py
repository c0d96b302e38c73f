"""The whole-domain sweep (training/sweep.py), the served domain and the backend choice, on
tiny synthetic models."""

import json

import numpy as np
import pytest

from core.pde import CDR, CONVECTION
from training import backend_choice
from training.sweep import heat_map, markdown, served_box, sweep_artifact, sweep_parameters
from training.synthetic_artifact import write_synthetic


def test_served_box_keeps_everything_when_all_points_meet_the_target():
    mus = sweep_parameters(CDR, 3)
    assert served_box(CDR, mus, np.full(len(mus), 0.01)).bounds == CDR.bounds


def test_served_box_drops_the_failing_face_only():
    mus = sweep_parameters(CDR, 4)
    err = np.where(mus[:, 1] == 0.0, 0.05, 0.01)  # the ν = 0 face fails
    box = served_box(CDR, mus, err)
    assert box.bounds["beta"] == (1.0, 3.0) and box.bounds["rho"] == (0.0, 2.0)
    assert box.bounds["nu"] == (pytest.approx(2 / 3), 2.0)
    assert np.all(err[box.contains(mus)] <= 0.02)


def test_served_box_on_one_axis_and_when_nothing_meets_the_target():
    mus = sweep_parameters(CONVECTION, 20)
    err = 0.001 * mus[:, 0] ** 2  # grows with β, 2% at β ≈ 4.5
    box = served_box(CONVECTION, mus, err)
    assert box.bounds["beta"] == (1.0, 4.0)  # the grid points are β = 1, 2, …, 20
    with pytest.raises(ValueError, match="no point"):
        served_box(CONVECTION, mus, np.full(len(mus), 0.5))


def test_tiny_sweep_of_a_synthetic_model(tmp_path):
    write_synthetic(tmp_path / "cdr", "cdr", CDR, seed=1, steps=2)
    result, report = sweep_artifact("cdr", per_axis=2, root=tmp_path)
    n = 8 + report["band_points"]  # the tensor grid, then the low-ν band
    assert result["mu"].shape == (n, 3) and report["hyper"]["n"] == n and result["n_grid"] == 8
    assert np.all(result["mu"][8:, 1] <= 0.1)
    assert set(report["estimate_by_region"]) == {"faces_and_corners", "interior", "hard_band", "extrapolation_band"}
    keys = ("err_hyper", "err_fast", "proxy_hyper", "proxy_fast", "err_corrected", "d_fast", "estimate", "served_err")
    for key in keys:
        assert np.all(np.isfinite(result[key])) and np.all(result[key] > 0), key
    assert np.all(result["proxy_fast"] <= result["proxy_hyper"])  # acceptance never worsens the check
    assert report["corrected"] is True  # the synthetic manifest corrects by default
    json.dumps(report, allow_nan=False)
    heat_map(result, CDR, tmp_path / "map.png", "tiny", result["estimate"])
    assert (tmp_path / "map.png").stat().st_size > 1000
    text = markdown(result, report, "map.png")
    assert "| hypernetwork only |" in text and "Served domain:" in text and "hypernetwork + correction" in text
    assert "| extrapolation band |" in text


def test_backend_choice_prefers_the_fastest_candidate_meeting_the_targets():
    rows = [
        {"median_ratio": 0.5, "improved": 0.9, "worst_ratio": 1.0, "ms_median": 20.0, "meets_targets": True},
        {"median_ratio": 0.6, "improved": 0.85, "worst_ratio": 1.02, "ms_median": 8.0, "meets_targets": True},
        {"median_ratio": 0.4, "improved": 0.5, "worst_ratio": 1.3, "ms_median": 2.0, "meets_targets": False},
    ]
    assert backend_choice.choose(rows)[0] == 1
    assert backend_choice.choose([dict(r, meets_targets=False) for r in rows])[0] == 2


def test_heldout_queries_cover_the_hard_part():
    q = backend_choice.heldout_queries(CDR, n_uniform=10, n_hard=6)
    assert q.shape == (16, 3) and np.all(CDR.contains(q))
    assert np.all(q[10:, 1] <= 0.3)
    hard, label = backend_choice.hard_part(CONVECTION)
    assert hard.bounds["beta"] == (pytest.approx(12.4), 20.0) and "β" not in label and "beta" in label
