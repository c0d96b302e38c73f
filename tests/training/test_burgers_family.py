"""The sharp-fronts family end to end: a tiny burgers model (configs/burgers_tiny.json) is
trained and built by the family's build (tests/training/conftest.py: references at a coarse
tolerance from a cache, at a tiny size), served, and its answers are checked against the
burgers reference solver (Fourier/ETDRK4, ``fastlrnr.numerics.shock_reference``).

The tiny model is poor (errors of 10–30 %: it cannot form a shock) and served where its
errors are ≤ 50 %; the assertions are the ones such a model must still meet: its estimates
cover its errors, the correction (where the build turned it on) does not make answers worse,
and a tolerance is met through the reference rung.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from family_testkit import fields, relative_l2, serve, solve_batch

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.error_estimate import spearman
from fastlrnr.numerics.families import BURGERS_FAMILY as FAMILY
from fastlrnr.numerics.grid import uniform_grid
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward
from fastlrnr.numerics.reference import solve_reference_batch

NX, NT = 64, 21
CHECK_TOLERANCE = 1e-2  # the test's reference: the build's (the tiny model's errors are ≥ 5 %)


@pytest.fixture(scope="module")
def served(tiny_burgers):
    """(artifact directory, test client): the tiny model (conftest.py), served for the module."""
    with serve(tiny_burgers, "burgers") as client:
        yield tiny_burgers, client


def _solve_batch(client, mus: np.ndarray, **extra) -> dict:
    return solve_batch(client, FAMILY, mus, NX, NT, **extra)


def _reference(mus: np.ndarray, tolerance: float = CHECK_TOLERANCE) -> np.ndarray:
    x, t = uniform_grid(NX, NT)
    return solve_reference_batch(mus, x, t, family=FAMILY, tolerance=tolerance)


def test_the_artifact_names_the_family_and_what_it_was_measured_against(served):
    out, _ = served
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "burgers"
    assert manifest["pde"] == FAMILY.equation and manifest["ansatz"] == FAMILY.ansatz
    art = load_artifact(out)
    assert art.family is FAMILY
    assert art.domain.params == art.served_domain.params == ("beta", "nu", "rho")
    assert art.hyper.W[0].shape[1] == 3
    assert np.all(art.served_domain.low >= art.domain.low) and np.all(art.served_domain.high <= art.domain.high)
    # the build measured against the family's reference at the size's tolerance, and says so
    assert manifest["quality"]["reference"]["tolerance"] == CHECK_TOLERANCE
    assert manifest["quality"]["sweep"]["target"] == 0.5
    # the band beyond the served domain was kept to rows whose reference is affordable
    assert "extrapolation_band" in manifest["correction"]
    # the two ONNX graphs of u0 = 1 + sin x, and the site envelope
    assert {"lrnr.onnx", "lrnr_jets.onnx", "envelope.npz"} <= set(manifest["files"])
    # the cache of reference fields lies in the run directory, where a rebuild finds it
    assert any((out.parents[1] / "run" / "reference_cache").glob("*.npy"))


def test_models_describes_the_family_and_refuses_a_foreign_parameter(served):
    _, client = served
    info = client.get("/models").json()["models"][0]
    assert info["family"]["name"] == "burgers"
    assert info["family"]["params"] == ["beta", "nu", "rho"]
    assert info["family"]["equation"] == FAMILY.equation
    r = client.post("/solve", json={"params": {"beta": 2.0, "nu": 5e-3, "kappa": 1.0}})
    assert r.status_code == 422
    err = r.json()
    assert err["errors"][0]["loc"] == ["body", "params", "kappa"]
    assert "beta, nu, rho" in err["message"]


def test_the_uncorrected_field_is_the_lrnr_of_the_family(served):
    """The served graph (ONNX, u0 = 1 + sin x built from the family) against the numpy LRNR."""
    out, client = served
    art = load_artifact(out)
    mus = art.served_domain.grid(2)
    answer = _solve_batch(client, mus, correction=False, fast_phase={"enabled": False})
    x, t = uniform_grid(NX, NT)
    X, T = np.meshgrid(x, t)
    want = lrnr_forward(art.lrnr, hyper_forward(art.hyper, mus), X.ravel(), T.ravel(), FAMILY)
    assert {item["diagnostics"]["answer"]["rung"] for item in answer["results"]} == {"surrogate"}
    u = fields(answer).reshape(len(mus), -1)
    np.testing.assert_allclose(u, want, rtol=0, atol=2e-5 * np.abs(want).max())


def test_served_answers_against_the_reference_over_the_served_domain(served):
    """Corners, faces and the centre of the served domain and two random sets: the estimate
    covers the tiny model's error and ranks it; where the build corrects by default the
    corrected answer is not worse than the hypernetwork's (the build's rule: the median falls),
    else the served (fast phase) answer is not worse than the hypernetwork's."""
    out, client = served
    art = load_artifact(out)
    mus = np.concatenate([art.served_domain.grid(3), art.served_domain.sample(2, np.random.default_rng(3))])
    ref = _reference(mus)
    answer = _solve_batch(client, mus)
    raw = _solve_batch(client, mus, correction=False, fast_phase={"enabled": False})
    err, err_raw = relative_l2(fields(answer), ref), relative_l2(fields(raw), ref)
    estimate = np.array([item["error_estimate"] for item in answer["results"]])
    assert np.all(err_raw > 5 * CHECK_TOLERANCE)  # what makes a 1e-2 reference enough here
    assert np.mean(estimate >= err) >= 0.9 and np.all(estimate >= 0.5 * err), (estimate, err)
    assert spearman(estimate, err) >= 0.7, (estimate, err)
    assert np.median(err) <= np.median(err_raw), (err, err_raw)
    if art.correction.default:
        assert np.mean(err > 1.05 * err_raw) <= 0.1, (err, err_raw)
    else:
        assert np.all(err <= 1.05 * err_raw), (err, err_raw)
        corrected = _solve_batch(client, mus, correction=True)  # asked for, the correction still answers
        assert np.all(np.isfinite(fields(corrected)))


def test_a_tolerance_is_met_with_the_family_reference_rung(served):
    """A mild parameter set (the shock forms late or not at all) on a small grid: the ladder
    climbs to the burgers reference rung and keeps the promise, checked against a far more
    accurate reference."""
    _, client = served
    mus = np.array([[1.0, 1e-2, 0.5], [1.5, 8e-3, 0.0]])
    answer = _solve_batch(client, mus, tolerance=1e-3, time_budget_ms=20000)
    err = relative_l2(fields(answer), _reference(mus, tolerance=1e-6))
    assert all(item["within_tolerance"] for item in answer["results"])
    assert {item["diagnostics"]["answer"]["rung"] for item in answer["results"]} == {"reference"}
    assert np.all(err <= 1e-3), err


def test_the_tensor_and_sweep_endpoints_take_the_familys_columns(served):
    """/v2 infer takes params [B, 3] for this model (its metadata says so) and /solve/sweep an
    archive of (B, 3) rows; two columns are refused with the family's names."""
    out, client = served
    art = load_artifact(out)
    mus = art.served_domain.grid(2)
    meta = client.get("/v2/models/burgers").json()
    assert {"name": "params", "datatype": "FP64", "shape": [-1, 3]} in meta["inputs"]
    assert meta["parameters"]["params"] == ["beta", "nu", "rho"]

    def infer(rows: np.ndarray):
        tensor = {"name": "params", "datatype": "FP64", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        return client.post("/v2/models/burgers/infer", json={"inputs": [tensor], "parameters": {"nx": NX, "nt": NT}})

    r = infer(mus)
    assert r.status_code == 200, r.text
    u = np.array(next(o for o in r.json()["outputs"] if o["name"] == "u")["data"]).reshape(len(mus), NT, NX)
    np.testing.assert_allclose(u, fields(_solve_batch(client, mus)), rtol=1e-6, atol=1e-7)
    refused = infer(mus[:, :2])
    assert refused.status_code == 422 and "beta, nu, rho" in refused.text

    def sweep(rows: np.ndarray):
        buf = io.BytesIO()
        np.savez(buf, params=rows, points=np.array([[0.5, 0.25], [3.0, 1.0]]))
        return client.post("/solve/sweep", content=buf.getvalue(), headers={"content-type": "application/x-npz"})

    r = sweep(mus)
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content)) as answer:
        assert answer["u"].shape == (len(mus), 2)
        assert np.all(np.isfinite(answer["u"]))
    refused = sweep(mus[:, :2])
    assert refused.status_code == 422 and "beta, nu, rho" in refused.text
