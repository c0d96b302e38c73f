"""Artifacts name their PDE family: manifest key ``family``, absent → "cdr" (fastlrnr/numerics/artifact.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastlrnr.numerics.artifact import ArtifactError, load_artifact, verify_artifact, write_artifact
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.random_model import random_hyper, random_lrnr
from fastlrnr.training.synthetic_artifact import synthetic_parts

RANKS = (4, 3)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def art(tmp_path) -> Path:
    lrnr, hyper = random_lrnr(24, RANKS, seed=5), random_hyper(RANKS, CDR, width=6, seed=5)
    return write_artifact(
        tmp_path / "cdr",
        name="cdr",
        version="0.1.0",
        domain=CDR,
        test_domain=CDR,
        lrnr=lrnr,
        hyper=hyper,
        onnx_files={},
        training={},
        eim={},
        quality={},
        **synthetic_parts(lrnr, hyper, CDR, points=12, rank=3, family=CDR_FAMILY),
    )


def _set_family(directory: Path, family) -> None:
    m = json.loads((directory / "manifest.json").read_text())
    if family is None:
        m.pop("family")
    else:
        m["family"] = family
    (directory / "manifest.json").write_text(json.dumps(m))


def test_written_artifacts_name_their_family(art):
    assert json.loads((art / "manifest.json").read_text())["family"] == "cdr"
    assert load_artifact(art).manifest["family"] == "cdr"


def test_an_artifact_must_name_its_family(art):
    _set_family(art, None)
    for check in (verify_artifact, load_artifact):
        with pytest.raises(ArtifactError, match=r"missing keys \['family'\]"):
            check(art)


@pytest.mark.parametrize("family", ["heat", 3, ["cdr"]])
def test_an_unknown_family_is_refused(art, family):
    _set_family(art, family)
    for check in (verify_artifact, load_artifact):
        with pytest.raises(ArtifactError, match="family"):
            check(art)


@pytest.mark.parametrize("name", ["cdr", "convection", "allen_cahn"])
def test_the_committed_artifacts_stay_valid(name):
    if not (ROOT / "artifacts" / name / "manifest.json").exists():
        pytest.skip("no committed artifact")
    verify_artifact(ROOT / "artifacts" / name)
