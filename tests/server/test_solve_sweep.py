"""POST /solve/sweep: binary parameter sweeps (fastlrnr/server/api/sweep.py) on the synthetic models."""

from __future__ import annotations

import io

import numpy as np
import pytest

import fastlrnr.server.api.sweep
import fastlrnr.server.api.sweep_plan
from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward

NPZ = {"content-type": "application/x-npz"}


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def sweep(client, body: bytes, **query):
    return client.post("/solve/sweep", content=body, headers=NPZ, params=query)


def test_a_sweep_is_the_surrogate_at_every_row(client, artifact_root):
    rng = np.random.default_rng(0)
    mu = np.c_[rng.uniform(1, 3, 50), rng.uniform(0, 2, 50), rng.uniform(0, 2, 50)]
    pts = np.c_[rng.uniform(0, 2 * np.pi, 7), rng.uniform(0, 1, 7)]
    r = sweep(client, npz(params=mu, points=pts))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npz"
    out = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert out["u"].shape == (50, 7) and out["u"].dtype == np.float32
    assert set(out["rung"]) == {"surrogate"} and np.all(out["within_tolerance"] == -1)
    assert np.all(out["error_estimate"] > 0) and not out["extrapolated"].any()
    w = load_artifact(artifact_root / "cdr")
    s = hyper_forward(w.hyper, mu)
    want = lrnr_forward(w.lrnr, s, pts[:, 0], pts[:, 1], family=CDR_FAMILY)
    np.testing.assert_allclose(out["u"], want, rtol=2e-5, atol=2e-5)
    assert w.a_priori is not None  # the sweep's estimate is the a-priori map's, not a check grid's
    np.testing.assert_allclose(out["error_estimate"], w.a_priori.predict(mu))


def test_chunks_give_the_same_answer_and_axes_work(client, monkeypatch):
    mu = np.c_[np.linspace(1, 3, 9), np.linspace(0, 2, 9), np.linspace(0, 2, 9)]
    body = npz(params=mu, x=np.linspace(0, 6, 5), t=np.array([0.0, 0.5, 1.0]))
    whole = np.load(io.BytesIO(sweep(client, body).content))
    monkeypatch.setattr(fastlrnr.server.api.sweep_plan, "SWEEP_CHUNK_ROWS", 2)
    r = sweep(client, body)
    assert r.headers["x-request-passes"] == "5"
    np.testing.assert_array_equal(np.load(io.BytesIO(r.content))["u"], whole["u"])
    assert whole["u"].shape == (9, 3, 5)


def test_a_tolerance_sends_rows_above_it_to_the_reference(client):
    mu = np.array([[2.0, 0.5, 1.0], [1.0, 1.0, 0.5]])
    pts = np.array([[0.3, 0.1], [2.0, 0.7]])
    loose = np.load(io.BytesIO(sweep(client, npz(params=mu, points=pts)).content))
    tol = float(loose["error_estimate"].min()) / 10
    out = np.load(io.BytesIO(sweep(client, npz(params=mu, points=pts), tolerance=tol).content))
    assert list(out["rung"]) == ["reference"] * 2 and np.all(out["within_tolerance"] == 1)
    assert np.all(out["error_estimate"] <= tol)


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"not a zip", 422, "invalid_npz"),
        (npz(params=np.ones((2, 3))), 422, "validation_error"),  # no sites
        (npz(params=np.ones((2, 2)), points=np.zeros((1, 2))), 422, "validation_error"),
        (npz(params=np.ones((2, 3)), points=np.array([[0.0, 2.0]])), 422, "validation_error"),
        (npz(params=np.full((2, 3), np.nan), points=np.zeros((1, 2))), 422, "validation_error"),
        (npz(params=np.ones((2, 3)), points=np.zeros((1, 2)), extra=np.ones(2)), 422, "validation_error"),
        (npz(params=np.array([[1, 2, 3]], dtype=object), points=np.zeros((1, 2))), 422, "validation_error"),
        (npz(params=np.ones((2, 3)), x=np.zeros(2)), 422, "validation_error"),
    ],
)
def test_bad_archives_are_refused_with_the_documented_codes(client, body, status, code):
    r = sweep(client, body)
    assert r.status_code == status and r.json()["error"] == code, r.text


def test_limits_and_domain(client, monkeypatch):
    monkeypatch.setattr(fastlrnr.server.api.sweep, "SWEEP_MAX_VALUES", 10)
    r = sweep(client, npz(params=np.ones((4, 3)) * [2.0, 1.0, 1.0], points=np.zeros((3, 2))))
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"
    monkeypatch.undo()
    r = sweep(client, npz(params=np.array([[9.0, 1.0, 1.0]]), points=np.zeros((1, 2))))
    assert r.status_code == 422 and r.json()["error"] == "out_of_domain"
    r = sweep(client, npz(params=np.array([[2.0, 1.0, 1.0]]), points=np.zeros((1, 2))), model="nope")
    assert r.status_code == 404
    r = sweep(client, npz(params=np.array([[2.0, 1.0, 1.0]]), points=np.zeros((1, 2))), tolerance=0)
    assert r.status_code == 422


def test_a_budget_that_runs_out_is_reported_per_row(client):
    mu = np.array([[2.0, 0.5, 1.0], [1.0, 1.0, 0.5]])
    body = npz(params=mu, points=np.array([[0.3, 0.1], [2.0, 0.7]]))
    out = np.load(io.BytesIO(sweep(client, body, tolerance=1e-12, time_budget_ms=1).content))
    assert np.all(out["within_tolerance"] == 0) and np.all(out["time_budget_exhausted"])
    # a pass this small can finish inside 1 ms: the reference may start, but never meets 1e-12
    assert set(out["rung"]) <= {"surrogate", "reference"}
