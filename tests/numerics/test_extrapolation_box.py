"""The extrapolation box, defined once (fastlrnr/numerics/extrapolation_box.py): what the calibration
samples is the box the manifest stores and the service accepts; a manifest without it is served
with the rule it was served with before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.artifact import ArtifactError, load_artifact
from fastlrnr.numerics.extrapolation_box import KEY, legacy_box, measured_box, sample_box
from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.family import Domain
from fastlrnr.training.calibrate import extrapolation_set
from fastlrnr.training.synthetic_artifact import write_synthetic

ROOT = Path(__file__).resolve().parents[2]
SERVED_AC = Domain("ac", {"nu": (0.01, 0.1), "rho": (0.0, 5.0)}, ("nu", "rho"))


def test_the_box_is_the_served_range_widened_by_its_width_and_never_negative():
    box = measured_box(SERVED_AC)
    assert box.bounds == {"nu": (0.0, pytest.approx(0.19)), "rho": (0.0, 10.0)}
    cdr = Domain("c", {"beta": (1.0, 3.0), "nu": (0.0, 0.0), "rho": (0.0, 2.0)}, CDR_FAMILY.params)
    assert measured_box(cdr).bounds == {"beta": (0.0, 5.0), "nu": (0.0, 0.0), "rho": (0.0, 4.0)}  # ν stays fixed
    # the rule of manifests without a box: the training domain widened by max(width, 1) — Allen–Cahn's
    # ν to 1.1, where nothing was measured (issue #28)
    assert legacy_box(Domain("ac", {"nu": (0.0, 0.1), "rho": (0.0, 5.0)}, ("nu", "rho"))).bounds["nu"][1] == 1.1


def test_the_calibration_samples_the_box_it_stores():
    for served in (SERVED_AC, CDR_FAMILY.domains["cdr"], CDR_FAMILY.domains["convection"]):
        pts = extrapolation_set(served, 200, seed=5)
        np.testing.assert_array_equal(pts, sample_box(served, 200, 5))
        box = measured_box(served)
        assert np.all(box.contains(pts)) and not np.any(served.contains(pts))
        assert np.all(pts >= 0)


@pytest.mark.parametrize("name", ["cdr", "convection", "allen_cahn"])
def test_every_committed_model_stores_the_box_its_widening_was_measured_on(name):
    art = load_artifact(ROOT / "artifacts" / name)
    assert art.extrapolation_stored and art.extrapolation_domain.bounds == measured_box(art.served_domain).bounds


def test_a_manifest_without_the_box_gets_the_old_rule_and_a_bad_box_is_refused(tmp_path):
    domain = CDR_FAMILY.domains["cdr"]
    served = Domain("cdr", {"beta": (1.5, 3.0), "nu": (0.2, 2.0), "rho": (0.0, 2.0)}, CDR_FAMILY.params)
    path = write_synthetic(tmp_path / "m", "m", domain, served_domain=served, family=CDR_FAMILY)
    art = load_artifact(path)
    assert not art.extrapolation_stored and art.extrapolation_domain.bounds == legacy_box(domain).bounds
    manifest = json.loads((path / "manifest.json").read_text())
    for bad in (
        {**measured_box(served).to_dict(), "bounds": {"beta": [2.0, 4.5], "nu": [0.0, 3.8], "rho": [0.0, 4.0]}},
        {"name": "x", "bounds": {"beta": [0.0, 5.0]}, "params": ["beta"]},  # a parameter missing
    ):
        manifest["error_estimate"][KEY] = bad
        (path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match=KEY):
            load_artifact(path)
