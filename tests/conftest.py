"""Fixtures shared by the server and client tests: synthetic artifacts written once per session
(see tests/kits/service_testkit.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from service_testkit import make_client, make_settings, write_synthetic

from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY, CONVECTION, CONVECTION_TEST, PARAM_NAMES
from fastlrnr.numerics.family import Domain

# convection is served on part of its trained range, as a model that misses its target at high β
CONVECTION_SERVED = Domain("convection", {"beta": (1.0, 12.0), "nu": (0.0, 0.0), "rho": (0.0, 0.0)}, PARAM_NAMES)


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory) -> Path:
    """A directory with two good models, ``cdr`` (default) and ``convection`` (served for β ≤ 12)."""
    root = tmp_path_factory.mktemp("artifacts")
    write_synthetic(root / "cdr", "cdr", CDR, CDR, seed=3, family=CDR_FAMILY)
    write_synthetic(
        root / "convection",
        "convection",
        CONVECTION,
        CONVECTION_TEST,
        seed=4,
        served_domain=CONVECTION_SERVED,
        family=CDR_FAMILY,
    )
    return root


@pytest.fixture
def fresh_root(tmp_path, artifact_root) -> Path:
    """A private copy of the artifacts, safe to damage."""
    dst = tmp_path / "artifacts"
    shutil.copytree(artifact_root, dst)
    return dst


@pytest.fixture(scope="module")
def client(artifact_root):
    """A running app (lifespan entered) on the synthetic artifacts, default settings."""
    from fastlrnr.server.app import create_app

    with make_client(create_app(make_settings(artifact_root))) as c:
        yield c
