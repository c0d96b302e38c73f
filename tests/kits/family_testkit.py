"""What the end-to-end tests of a tiny trained family share: its artifact served in process, a
batch of its answers, their fields, and the relative L2 error against a reference."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fastlrnr.numerics.family import PdeFamily


def relative_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(B,) relative L2 errors of u against ref, both (B, ...)."""
    d = (u - ref).reshape(len(ref), -1)
    return np.linalg.norm(d, axis=1) / np.linalg.norm(ref.reshape(len(ref), -1), axis=1)


@contextmanager
def serve(artifact: Path, model: str) -> Iterator:
    """A test client of the service over ``artifact``'s folder, ``model`` the default."""
    from fastlrnr.server.app import create_app
    from fastlrnr.server.settings import ServiceSettings

    app = create_app(ServiceSettings(artifact_dir=artifact.parent, default_model=model, solver_threads=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test client's import warns about httpx versions
        from fastapi.testclient import TestClient
    with TestClient(app) as client:
        yield client


def solve_batch(client, family: PdeFamily, mus: np.ndarray, nx: int, nt: int, **extra) -> dict:
    """``POST /solve/batch`` of rows mus (B, p) on an nx × nt grid (200 asserted)."""
    body = {"params": [dict(zip(family.params, map(float, m))) for m in mus], "grid": {"nx": nx, "nt": nt}}
    r = client.post("/solve/batch", json={**body, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def fields(answer: dict) -> np.ndarray:
    """(B, nt, nx) float64 fields of a /solve/batch answer."""
    return np.array([item["u"] for item in answer["results"]], dtype=np.float64)
