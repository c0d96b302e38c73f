"""Fixtures for the service tests: synthetic artifacts written once per session (see service_testkit)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.pde import CDR, CONVECTION, CONVECTION_TEST
from service_testkit import make_client, make_settings, write_synthetic


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory) -> Path:
    """A directory with two good models, ``cdr`` (default) and ``convection``."""
    root = tmp_path_factory.mktemp("artifacts")
    write_synthetic(root / "cdr", "cdr", CDR, CDR, seed=3)
    write_synthetic(root / "convection", "convection", CONVECTION, CONVECTION_TEST, seed=4)
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
    from service.app import create_app

    with make_client(create_app(make_settings(artifact_root))) as c:
        yield c
