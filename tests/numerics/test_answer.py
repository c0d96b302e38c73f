"""fastlrnr/numerics/answer.py: an answer's flags and diagnostics, their JSON, and that importing them loads
nothing else of core (the client imports them alone)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from fastlrnr.numerics.answer import (
    A_PRIORI,
    AnswerDiagnostics,
    CoefficientSource,
    CorrectionDiagnostics,
    Diagnostics,
    Escalation,
    FastPhaseDiagnostics,
    Flag,
    FlagCode,
    GridSize,
    Rung,
    answer_flags,
    finite_or_none,
    outside_served_domain,
)

REPO = Path(__file__).resolve().parents[2]


def test_flags_of_an_answer():
    outside = [outside_served_domain("beta", 3.5, "∈ [1, 3]")]
    assert outside[0].code == FlagCode.OUTSIDE_SERVED_DOMAIN == "outside_served_domain"
    assert outside[0].message == (
        "beta = 3.5 is outside the served domain (beta ∈ [1, 3]): the error estimate is not calibrated there"
    )
    assert answer_flags(0.02, None, outside, None) == (None, outside)  # no tolerance: no verdict
    assert answer_flags(0.02, 0.05, (), None) == (True, [])
    within, flags = answer_flags(0.02, 0.01, outside, Escalation(Rung.CORRECTED, ["reference"]))
    assert within is False and [f.code for f in flags] == ["outside_served_domain", "estimate_above_tolerance"]
    assert flags[1].message == "the estimated relative L2 error 0.02 exceeds the requested tolerance 0.01"
    stopped = Escalation(Rung.CORRECTED, [], time_budget_exhausted=True)
    assert [f.code for f in answer_flags(0.02, 0.01, (), stopped)[1]] == [
        "estimate_above_tolerance",
        "time_budget_exhausted",
    ]
    assert answer_flags(0.005, 0.01, (), stopped) == (True, [])  # met in the end: no flag


def test_flag_json_keeps_codes_it_does_not_know():
    f = Flag.from_json({"code": "estimate_above_tolerance", "message": "m"})
    assert f.code is FlagCode.ESTIMATE_ABOVE_TOLERANCE and f.to_json() == {
        "code": "estimate_above_tolerance",
        "message": "m",
    }
    newer = Flag.from_json({"code": "something_new", "message": "m"})
    assert newer.code == "something_new" and newer == Flag("something_new", "m")


def test_finite_or_none():
    assert (
        finite_or_none(None) is None and finite_or_none(float("nan")) is None and finite_or_none(float("inf")) is None
    )
    assert finite_or_none(2) == 2.0 and isinstance(finite_or_none(2), float)


def test_diagnostics_json_round_trip_and_shape():
    fp = FastPhaseDiagnostics(True, "exact", "lm", 3, 1e-5, True, 2.0, 1.0, 0.5, 0.25, 0.04, 0.02, steps_requested=4)
    corrected = Diagnostics(
        fast_phase=fp,
        correction=CorrectionDiagnostics(True, 1e-4, 2, 3, None, GridSize(32, 33)),
        answer=AnswerDiagnostics(Rung.CORRECTED, CoefficientSource.FAST_PHASE, substeps=2),
        timings_ms={"total": 1.5},
        extrapolated=False,
        batch_size=2,
    )
    d = corrected.to_json()
    assert list(d) == ["timings_ms", "fast_phase", "correction", "answer", "extrapolated", "batch_size"]
    assert list(d["fast_phase"])[-1] == "steps_requested" and d["fast_phase"]["error_proxy_after"] == 0.02
    assert d["correction"] == {
        "applied": True,
        "two_grid_difference": 1e-4,
        "substeps": 2,
        "newton_steps": 3,
        "newton_increment": None,
        "grid": {"nx": 32, "nt": 33},
    }
    assert d["answer"] == {"rung": "corrected", "coefficients": "fast_phase", "substeps": 2}
    assert Diagnostics.from_json(json.loads(json.dumps(d))) == corrected
    assert corrected.correction_applied and corrected.two_grid_difference == 1e-4

    plain = Diagnostics(answer=AnswerDiagnostics(Rung.SURROGATE, CoefficientSource.HYPERNETWORK, estimate=A_PRIORI))
    d = plain.to_json()
    assert d["correction"] == {"applied": False, "two_grid_difference": None}
    assert d["fast_phase"]["enabled"] is False and d["fast_phase"]["steps_run"] == 0
    assert Diagnostics.from_json(json.loads(json.dumps(d))) == plain


def test_answer_json_leaves_out_what_did_not_happen():
    esc = Escalation(Rung.CORRECTED, [Escalation.corrected(8), "reference"])
    up = AnswerDiagnostics(Rung.REFERENCE, CoefficientSource.HYPERNETWORK, 64, None, 128, esc)
    assert up.to_json() == {
        "rung": "reference",
        "coefficients": "hypernetwork",
        "substeps": 64,
        "reference_points": 128,
        "escalation": {"from": "corrected", "tried": ["corrected:8", "reference"], "time_budget_exhausted": False},
    }
    assert AnswerDiagnostics.from_json(up.to_json()) == up
    esc = Escalation(Rung.SURROGATE, ["reference"])
    up = AnswerDiagnostics(Rung.REFERENCE, CoefficientSource.HYPERNETWORK, 32, A_PRIORI, 64, esc)
    assert set(up.to_json()) == {"rung", "coefficients", "substeps", "estimate", "reference_points", "escalation"}
    assert AnswerDiagnostics.from_json(up.to_json()) == up
    plain = AnswerDiagnostics(Rung.SURROGATE, CoefficientSource.HYPERNETWORK)
    assert plain.to_json() == {"rung": "surrogate", "coefficients": "hypernetwork"}


def test_npy_batch_diagnostics_have_no_correction_or_answer():
    fp = replace(FastPhaseDiagnostics(), steps_requested=3).to_json()
    d = Diagnostics.from_json({"timings_ms": {}, "fast_phase": fp, "extrapolated": True, "batch_size": 4})
    assert d.correction is None and d.answer is None and not d.correction_applied and d.two_grid_difference is None


def test_importing_the_answer_loads_nothing_else():
    code = "import json, sys; import fastlrnr.numerics.answer; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert sorted(m for m in loaded if m.split(".")[0] == "fastlrnr") == [
        "fastlrnr",
        "fastlrnr.numerics",
        "fastlrnr.numerics.answer",
    ]
    assert "numpy" not in loaded  # the answer's definition is pure Python


def test_the_package_still_gives_its_public_names():
    import fastlrnr.numerics
    from fastlrnr.numerics import LRNRWeights, solve_reference
    from fastlrnr.numerics.lrnr import LRNRWeights as direct

    assert LRNRWeights is direct and callable(solve_reference)
    names = fastlrnr.numerics.__all__
    assert set(names) <= set(dir(fastlrnr.numerics)) and "FastPhaseResult" in names
    assert all(getattr(fastlrnr.numerics, name) is not None for name in fastlrnr.numerics.__all__)
