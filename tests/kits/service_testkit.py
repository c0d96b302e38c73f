"""Helpers for the service tests: small synthetic artifacts, settings and test clients.

Synthetic artifacts come from ``fastlrnr.training.synthetic_artifact`` (a random LRNR with N = 32,
ranks (4, 3), its FastLRNR, ONNX graphs, a placeholder error model). The numbers mean
nothing physically; the tests check the service contract, not accuracy.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from fastlrnr.server.settings import ServiceSettings
from fastlrnr.training.synthetic_artifact import write_synthetic  # noqa: F401 - re-exported for the fixtures

N, RANKS = 32, (4, 3)
TEST_STEPS = 3  # fast-phase steps the tests ask for (keeps the suite quick on a shared CPU)


def make_settings(root: Path, **overrides) -> ServiceSettings:
    base = dict(artifact_dir=root, log_json=True, solver_threads=2, queue_capacity=8)
    base.update(overrides)
    return ServiceSettings(**base)


def make_client(app, **kwargs):
    """``fastapi.testclient.TestClient`` (its import warns that httpx2 is preferred; harmless here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, **kwargs)
