"""Shared fixtures of the training tests: one tiny Allen–Cahn model, trained and built once a
session (about 30 s), for the second-family and sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastlrnr.training.build_artifact import BuildSize, build
from fastlrnr.training.calibrate import CalibrationSize
from fastlrnr.training.config import TrainConfig
from fastlrnr.training.train import MetaTrainer

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "allen_cahn_tiny.json"
SMALL = BuildSize(
    grid_sets=9,
    sweep_per_axis=3,
    validation=6,
    queries=(4, 2),
    calibration=CalibrationSize(per_axis=3, random=6, validation=6, band=4, extrapolation=4),
)


@pytest.fixture(scope="session")
def tiny_allen_cahn(tmp_path_factory) -> Path:
    """The artifact directory ``…/models/ac`` of a tiny Allen–Cahn model built through every
    step of ``fastlrnr.training.build_artifact`` (at the ``SMALL`` size)."""
    tmp = tmp_path_factory.mktemp("allen_cahn")
    MetaTrainer(TrainConfig.from_json(CONFIG), tmp / "run", progress=False).fit(resume=False)
    out = tmp / "models" / "ac"
    build(tmp / "run", "ac", out, "0.1.0", [8], [3], 4, None, True, SMALL)
    return out
