"""Shared fixtures of the training tests: tiny models, trained and built once a session — an
Allen–Cahn one (about 30 s) for the second-family and sweep tests, a burgers one for the
sharp-fronts family's test."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastlrnr.training.build_artifact import BuildSize, build
from fastlrnr.training.build_size import size_for
from fastlrnr.training.calibrate import CalibrationSize
from fastlrnr.training.config import TrainConfig
from fastlrnr.training.train import MetaTrainer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CONFIG = CONFIGS / "allen_cahn_tiny.json"
SMALL = BuildSize(
    grid_sets=9,
    sweep_per_axis=3,
    validation=6,
    queries=(4, 2),
    calibration=CalibrationSize(per_axis=3, random=6, validation=6, band=4, extrapolation=4),
)
# burgers: the family's build (references from a cache, rows beyond the domain only where the
# reference is affordable) at a tiny size, against a coarse reference (1e-2: the tiny model's
# errors are 10–30 %, measured to 10 %; the corner costs 0.1 s instead of 8) and served where
# its errors are ≤ 50 % (a real build serves at 2 %: ``sweep.TARGET``)
BURGERS_SMALL = BuildSize(
    grid_sets=8,
    sweep_per_axis=3,
    validation=4,
    queries=(4, 2),
    correction_per_axis=2,
    calibration=CalibrationSize(per_axis=3, random=4, validation=6, band=3, extrapolation=4, band_per_axis=2),
    served_target=0.5,
    reference_tolerance=1e-2,
    reference_cache=size_for("burgers").reference_cache,
    reference_max_points=4096,
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


@pytest.fixture(scope="session")
def tiny_burgers(tmp_path_factory) -> Path:
    """The artifact directory ``…/models/burgers`` of a tiny burgers model
    (configs/burgers_tiny.json) built through every step of the build (``BURGERS_SMALL``), its
    reference fields cached in the run directory."""
    tmp = tmp_path_factory.mktemp("burgers")
    MetaTrainer(TrainConfig.from_json(CONFIGS / "burgers_tiny.json"), tmp / "run", progress=False).fit(resume=False)
    out = tmp / "models" / "burgers"
    build(tmp / "run", "burgers", out, "0.1.0", [8], [3], 4, None, True, BURGERS_SMALL)
    return out
