"""The whole-domain sweep (fastlrnr/training/sweep.py, its report fastlrnr/training/sweep_report.py), the served
domain and the backend choice: on the committed convection artifact, on a tiny synthetic cdr
model, and on the parameters of a two-parameter family (Allen–Cahn)."""

import json
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.families import ALLEN_CAHN_FAMILY, FAMILIES
from fastlrnr.numerics.families.allen_cahn import ALLEN_CAHN
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY, CONVECTION
from fastlrnr.numerics.family import Domain
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.training import backend_choice
from fastlrnr.training.row_answers import RowAnswers, reference_fields, relative_l2
from fastlrnr.training.sweep import (
    TARGET,
    ArtifactSweep,
    ErrorSummary,
    EstimateQuality,
    ExtrapolationBand,
    SweepQuality,
    band_parameters,
    regions,
    served_box,
    sweep_artifact,
    sweep_parameters,
)
from fastlrnr.training.sweep_report import heat_map, markdown, report_json, sweep_heat_map
from fastlrnr.training.synthetic_artifact import write_synthetic

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


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


def test_the_grids_regions_and_served_box_of_a_two_parameter_family():
    mus = sweep_parameters(ALLEN_CAHN, 5)  # (ν, ρ) columns
    assert mus.shape == (25, 2)
    hard_nu = ALLEN_CAHN_FAMILY.hard_band.sweep_values
    band = band_parameters(ALLEN_CAHN, ALLEN_CAHN_FAMILY, 3)  # ν ∈ [0, 0.1]: the low-ν band is inside the domain
    assert band.shape == (len(hard_nu) * 3, 2) and set(band[:, 0]) == set(hard_nu)
    assert np.all(ALLEN_CAHN.contains(band))
    r = regions(ALLEN_CAHN, ALLEN_CAHN_FAMILY, mus)
    assert set(r.named()) == {"faces_and_corners", "interior", "hard_band"}
    assert r.interior.sum() == 9 and np.array_equal(r.hard_band, mus[:, 0] <= 0.1)
    err = np.where(mus[:, 1] == 5.0, 0.05, 0.01)  # the ρ = 5 face fails
    box = served_box(ALLEN_CAHN, mus, err)
    assert box.params == ("nu", "rho") and box.bounds == {"nu": (0.0, 0.1), "rho": (0.0, 3.75)}
    # no band where ν is fixed or starts above 0
    assert band_parameters(CONVECTION, CDR_FAMILY).shape == (0, 3)
    assert regions(CONVECTION, CDR_FAMILY, sweep_parameters(CONVECTION, 3)).hard_band is None
    high_nu = Domain("n", {"nu": (0.5, 1.0), "rho": (0.0, 1.0)}, params=("nu", "rho"))
    assert band_parameters(high_nu, ALLEN_CAHN_FAMILY).shape == (0, 2)


def test_each_family_declares_its_hard_band_inside_its_trained_domain():
    """The band the sweeps and the calibration sample more densely is the family's, not a name
    the training code assumes: every family that declares one has it inside a training domain."""
    for family in FAMILIES.values():
        band = family.hard_band
        assert band is not None and band.param in family.params
        domain = next(iter(family.domains.values())) if family.name != "cdr" else family.domains["cdr"]
        assert family.hard_band_of(domain) is band
        lo, hi = domain.bounds[band.param]
        assert lo <= band.low < band.upto <= hi
        assert all(lo <= v <= hi for v in band.sweep_values)
    burgers = FAMILIES["burgers"]
    rows = band_parameters(burgers.domains["burgers"], burgers, 2)
    assert rows.shape == (3 * 2 * 2, 3) and set(rows[:, 1]) == set(burgers.hard_band.sweep_values)


def test_summaries_and_the_former_dict_keys():
    s = ErrorSummary.of(np.array([0.01, 0.03, 0.02, 0.001]))
    assert (s.median, s.worst, s.n, s.frac_above_target) == (0.015, 0.03, 4, 0.25)
    assert s.to_dict() == {"median": 0.015, "worst": 0.03, "mean": 0.01525, "frac_above_2pct": 0.25, "n": 4}
    q = EstimateQuality.of(np.array([2.0, 1.0, 30.0]), np.array([1.0, 2.0, 3.0]))
    assert (q.n, q.covered, q.within_1_to_5x, q.median_ratio) == (3, pytest.approx(2 / 3), pytest.approx(1 / 3), 2.0)
    rows = RowAnswers(np.zeros((2, 3)), np.array([0.1, 0.2]))
    assert rows.err_fast is None and rows.d_hyper is None  # neither the fast phase nor a correction ran


@pytest.fixture(scope="module")
def convection() -> ArtifactSweep:
    """The committed convection model on 4 grid points, 4 extrapolation points."""
    return sweep_artifact("convection", per_axis=4, extrapolation_points=4)


def test_the_sweep_of_the_shipped_convection_model_is_the_services_answer(convection):
    from fastlrnr.server.api.grids import grid_arrays
    from fastlrnr.server.api.schemas import Grid
    from fastlrnr.server.engine.solver import ModelRuntime

    s = convection
    assert s.mus.shape == (4, 3) and s.n_grid == 4 and s.band_points == 0
    assert np.array_equal(s.mus[:, 0], [1.0, 7.333333333333333, 13.666666666666666, 20.0])
    assert s.domain == CONVECTION and s.served_domain.params == CONVECTION.params and s.family.name == "cdr"
    # the served answer is what the service answers by default, with the same estimate
    runtime = ModelRuntime.load(ARTIFACTS / "convection")
    try:
        x, t = standard_grid()
        answer = runtime.solve(s.mus, grid_arrays(Grid(x=x.tolist(), t=t.tolist())), None)
    finally:
        runtime.close()
    assert s.corrected == runtime.correction_default
    np.testing.assert_allclose(
        s.served_err, relative_l2(answer.u.astype(float), reference_fields(s.mus, family=CDR_FAMILY)), rtol=1e-2
    )
    np.testing.assert_allclose(s.estimate, answer.estimate, rtol=1e-6)
    assert np.all(s.served_err < TARGET) and np.all(s.served_err < s.rows.err_hyper)
    # the extrapolation band lies beyond the served domain
    assert s.extrapolation.mus.shape == (4, 3) and not np.any(s.served_domain.contains(s.extrapolation.mus))
    q = s.quality
    assert q.served == ErrorSummary.of(s.served_err) and q.hyper.worst == s.rows.err_hyper.max()
    assert list(q.estimate_by_region) == ["faces_and_corners", "interior", "extrapolation_band"]
    assert q.estimate_by_region["faces_and_corners"].n == 2 and q.estimate_by_region["extrapolation_band"].n == 4


def test_the_report_of_a_sweep(convection, tmp_path):
    report = report_json(convection)
    json.dumps(report, allow_nan=False)
    assert report["served_answer"]["n"] == 4 and report["band_points"] == 0 and "above_0.1pct_covered" in report
    assert report["served_domain"] == convection.served_domain.to_dict()
    text = markdown(convection, "map.png")
    assert "| β | ν | ρ | hypernetwork | fast phase | served | estimate (served answer) |" in text
    assert f"| 20.00 | 0.000 | 0.00 | {100 * convection.rows.err_hyper[3]:.2f}% |" in text
    assert "| extrapolation band | 4 |" in text and "Served domain: beta ∈ [1, 20]" in text
    sweep_heat_map(convection, tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 1000


def test_tiny_sweep_of_a_synthetic_model(tmp_path):
    write_synthetic(tmp_path / "cdr", "cdr", CDR, seed=1, steps=2, family=CDR_FAMILY)
    s = sweep_artifact("cdr", per_axis=2, root=tmp_path, band_per_axis=3, extrapolation_points=4)
    assert s.mus.shape == (8 + 36, 3) and s.n_grid == 8 and s.band_points == 36  # the tensor grid, then the band
    assert np.all(s.mus[8:, 1] <= 0.1) and s.quality.hyper.n == 44
    assert set(s.quality.estimate_by_region) == {"faces_and_corners", "interior", "hard_band", "extrapolation_band"}
    r = s.rows
    for name in ("err_hyper", "err_fast", "proxy_hyper", "proxy_fast", "err_corrected", "d_fast", "d_hyper"):
        value = getattr(r, name)
        assert value.shape == (44,) and np.all(np.isfinite(value)) and np.all(value > 0), name
    assert r.coefficients_fast.shape == (44, 4 + 3) and r.accepted.dtype == bool
    assert np.all(r.proxy_fast <= r.proxy_hyper)  # acceptance never worsens the check
    assert s.corrected is True and s.served_err is r.err_hyper_corrected  # the synthetic manifest corrects by default
    assert heat_map(s.mus[:8], [("served", s.served_err[:8])], CDR, tmp_path / "map.png", "tiny") == (1, 2)
    text = markdown(s, "map.png")
    assert (
        "| hypernetwork only |" in text and "hypernetwork + correction" in text and "| hard band | 40 |" in text
    )  # ν = 0 on the grid too


def _made_up_sweep(domain: Domain, mus: np.ndarray) -> ArtifactSweep:
    """A sweep of ``domain`` with made-up errors (nothing solved): for the report's layout."""
    from fastlrnr.numerics.families import ALLEN_CAHN_FAMILY
    from fastlrnr.numerics.fast_phase import FastPhaseSettings

    err = 0.001 + 0.01 * np.linspace(0.0, 1.0, len(mus))
    rows = RowAnswers(
        mus,
        err,
        err_hyper_corrected=err / 100,
        d_hyper=err / 100,
        err_fast=err / 2,
        proxy_hyper=err,
        proxy_fast=err / 2,
        rms_fast=err,
        accepted=np.ones(len(mus), bool),
    )
    summary, quality = ErrorSummary.of(err), EstimateQuality.of(err, err)
    return ArtifactSweep(
        "ac",
        ALLEN_CAHN_FAMILY,
        domain,
        domain,
        FastPhaseSettings(),
        True,
        3,
        len(mus),
        rows,
        err / 100,
        err / 50,
        ExtrapolationBand(mus[:2], err[:2], err[:2]),
        SweepQuality(*[summary] * 7, 1.0, 5.0, quality, quality, {"interior": quality}, True, 1.0, 1.0),
    )


def test_the_report_of_a_two_parameter_family(tmp_path):
    mus = sweep_parameters(ALLEN_CAHN, 3)
    shape = heat_map(
        mus, [("hypernetwork", mus[:, 0] + 0.01), ("served", mus[:, 1] + 0.01)], ALLEN_CAHN, tmp_path / "a.png", "ac"
    )
    assert shape == (2, 1) and (tmp_path / "a.png").stat().st_size > 1000  # one heat map (ν × ρ) per row
    text = markdown(_made_up_sweep(ALLEN_CAHN, mus), "a.png")
    assert (
        "| ν | ρ | hypernetwork | fast phase | served | estimate (served answer) |\n|---|---|---|---|---|---|\n" in text
    )
    assert "| 0.100 | 5.00 | 1.10% |" in text and "β" not in text
    assert "Served domain: nu ∈ [0, 0.1], rho ∈ [0, 5]." in text
    assert report_json(_made_up_sweep(ALLEN_CAHN, mus))["served_domain"]["params"] == ["nu", "rho"]


@pytest.mark.slow
def test_the_sweep_of_a_two_parameter_family_end_to_end(tiny_allen_cahn, tmp_path):
    """The tiny Allen–Cahn model (conftest.py) swept and reported: its own reference solver,
    its own parameter columns."""
    from fastlrnr.numerics.artifact import load_artifact
    from fastlrnr.numerics.families import FAMILIES
    from fastlrnr.numerics.hypernet import hyper_forward
    from fastlrnr.numerics.lrnr import lrnr_forward
    from fastlrnr.numerics.reference import solve_reference_batch

    s = sweep_artifact("ac", per_axis=3, root=tiny_allen_cahn.parent, band_per_axis=3, extrapolation_points=2)
    family = FAMILIES["allen_cahn"]
    assert s.family is family and s.domain.params == ("nu", "rho")
    assert s.mus.shape == (9 + 4 * 3, 2) and s.extrapolation.mus.shape == (2, 2)
    art = load_artifact(tiny_allen_cahn)
    x, t = standard_grid()
    X, T = np.meshgrid(x, t)
    u = lrnr_forward(art.lrnr, hyper_forward(art.hyper, s.mus), X.ravel(), T.ravel(), family)
    ref = solve_reference_batch(s.mus, x, t, family=family)
    np.testing.assert_allclose(s.rows.err_hyper, relative_l2(u.reshape(ref.shape), ref), rtol=1e-9)
    assert sweep_heat_map(s, tmp_path / "ac.png") == (3, 1)
    assert "| ν | ρ | hypernetwork |" in markdown(s, "ac.png")


def test_backend_choice_prefers_the_fastest_candidate_meeting_the_targets():
    rows = [
        {"median_ratio": 0.5, "improved": 0.9, "worst_ratio": 1.0, "ms_median": 20.0, "meets_targets": True},
        {"median_ratio": 0.6, "improved": 0.85, "worst_ratio": 1.02, "ms_median": 8.0, "meets_targets": True},
        {"median_ratio": 0.4, "improved": 0.5, "worst_ratio": 1.3, "ms_median": 2.0, "meets_targets": False},
    ]
    assert backend_choice.choose(rows)[0] == 1
    assert backend_choice.choose([dict(r, meets_targets=False) for r in rows])[0] == 2


def test_heldout_queries_cover_the_hard_part():
    q = backend_choice.heldout_queries(CDR, CDR_FAMILY, n_uniform=10, n_hard=6)
    assert q.shape == (16, 3) and np.all(CDR.contains(q))
    assert np.all(q[10:, 1] <= 0.3)
    hard, label = backend_choice.hard_part(CONVECTION, CDR_FAMILY)
    assert hard.bounds["beta"] == (pytest.approx(12.4), 20.0) and "β" not in label and "beta" in label
