"""The PDE-family seam end to end with a second family: a tiny Allen–Cahn model is trained
(tests/training/conftest.py), built into an artifact by the same steps as the shipped models,
served, and its answers are checked against the Allen–Cahn reference solver.

Nothing below names Allen–Cahn's equation: the family module (fastlrnr/numerics/families/allen_cahn.py)
and its training config are all a new family needs.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from family_testkit import fields, relative_l2, serve, solve_batch

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.error_estimate import spearman
from fastlrnr.numerics.families import FAMILIES
from fastlrnr.numerics.grid import uniform_grid
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward
from fastlrnr.numerics.reference import solve_reference_batch

FAMILY = FAMILIES["allen_cahn"]
NX, NT = 64, 21


@pytest.fixture(scope="module")
def served(tiny_allen_cahn):
    """(artifact directory, test client): the tiny model (conftest.py), served for the module."""
    with serve(tiny_allen_cahn, "ac") as client:
        yield tiny_allen_cahn, client


def _solve_batch(client, mus: np.ndarray, **extra) -> dict:
    return solve_batch(client, FAMILY, mus, NX, NT, **extra)


def _reference(mus: np.ndarray) -> np.ndarray:
    x, t = uniform_grid(NX, NT)
    return solve_reference_batch(mus, x, t, family=FAMILY)


def test_the_artifact_names_its_family_and_its_parameters(served):
    out, _ = served
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["family"] == "allen_cahn"
    assert manifest["pde"] == FAMILY.equation and manifest["ansatz"] == FAMILY.ansatz
    art = load_artifact(out)
    assert art.family is FAMILY
    assert art.domain.params == art.served_domain.params == ("nu", "rho")
    assert art.hyper.W[0].shape[1] == 2  # the hypernetwork reads the family's two parameters
    # the build publishes the calibrated site envelope: its file, and its check on held-out sets
    assert art.envelope is not None and "envelope.npz" in manifest["files"]
    check = manifest["error_estimate"]["site_envelope_check"]
    assert set(check) == {"1", "4", "16", "64"}
    assert all(c["covered"] >= 0.98 and c["site_sets"] > 0 for c in check.values()), check
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no staging left behind


def test_models_describes_the_family_and_refuses_a_foreign_parameter(served):
    _, client = served
    info = client.get("/models").json()["models"][0]
    assert info["family"]["name"] == "allen_cahn"
    assert info["family"]["params"] == ["nu", "rho"]
    r = client.post("/solve", json={"params": {"beta": 1.0, "nu": 0.07}})
    assert r.status_code == 422
    err = r.json()
    assert err["errors"][0]["loc"] == ["body", "params", "beta"]
    assert "nu, rho" in err["message"]


def test_the_uncorrected_field_is_the_lrnr_of_the_family(served):
    """The served graph (ONNX, u0 = 0.5 sin x built from the family) against the numpy LRNR."""
    out, client = served
    art = load_artifact(out)
    mus = art.served_domain.grid(2)
    answer = _solve_batch(client, mus, correction=False, fast_phase={"enabled": False})
    x, t = uniform_grid(NX, NT)
    X, T = np.meshgrid(x, t)
    want = lrnr_forward(art.lrnr, hyper_forward(art.hyper, mus), X.ravel(), T.ravel(), FAMILY)
    got = np.array([item["diagnostics"]["answer"]["rung"] for item in answer["results"]])
    assert set(got) == {"surrogate"}
    u = fields(answer).reshape(len(mus), -1)
    np.testing.assert_allclose(u, want, rtol=0, atol=2e-5 * np.abs(want).max())


def test_served_answers_against_the_family_reference_over_the_served_domain(served):
    """Corners, faces and the interior of the served domain: the corrected answer is far better
    than the tiny hypernetwork's, and the estimate ranks and bounds the true error (as well as
    a calibration from this test's ~20 parameter sets can: within a factor 2 everywhere, above
    it at most points)."""
    out, client = served
    art = load_artifact(out)
    mus = np.concatenate([art.served_domain.grid(3), art.served_domain.sample(4, np.random.default_rng(3))])
    ref = _reference(mus)
    corrected = _solve_batch(client, mus)
    raw = _solve_batch(client, mus, correction=False, fast_phase={"enabled": False})
    err = relative_l2(fields(corrected), ref)
    err_raw = relative_l2(fields(raw), ref)
    estimate = np.array([item["error_estimate"] for item in corrected["results"]])
    assert np.all(err < 0.25 * err_raw), (err, err_raw)
    assert spearman(estimate, err) >= 0.8, (estimate, err)
    assert np.all(estimate >= 0.5 * err) and np.mean(estimate >= err) >= 0.8, (estimate, err)
    assert np.median(err) < 5e-3


def test_a_tolerance_is_met_with_the_family_reference_rung(served):
    _, client = served
    mus = np.array([[0.06, 4.5], [0.1, 0.5]])
    answer = _solve_batch(client, mus, tolerance=1e-4, time_budget_ms=20000)
    err = relative_l2(fields(answer), _reference(mus))
    assert all(item["within_tolerance"] for item in answer["results"])
    assert np.all(err <= 1e-4), err


def test_the_tensor_and_sweep_endpoints_take_the_familys_columns(served):
    """/v2 infer takes params [B, 2] for this model (its metadata says so) and /solve/sweep an
    archive of (B, 2) rows; three columns are refused with the family's names."""
    out, client = served
    art = load_artifact(out)
    mus = art.served_domain.grid(2)
    meta = client.get("/v2/models/ac").json()
    assert {"name": "params", "datatype": "FP64", "shape": [-1, 2]} in meta["inputs"]
    assert meta["parameters"]["params"] == ["nu", "rho"]

    def infer(rows: np.ndarray):
        tensor = {"name": "params", "datatype": "FP64", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        return client.post("/v2/models/ac/infer", json={"inputs": [tensor], "parameters": {"nx": NX, "nt": NT}})

    r = infer(mus)
    assert r.status_code == 200, r.text
    u = np.array(next(o for o in r.json()["outputs"] if o["name"] == "u")["data"]).reshape(len(mus), NT, NX)
    np.testing.assert_allclose(u, fields(_solve_batch(client, mus)), rtol=1e-6, atol=1e-7)
    refused = infer(np.hstack([mus, mus[:, :1]]))
    assert refused.status_code == 422 and "nu, rho" in refused.text

    def sweep(rows: np.ndarray):
        buf = io.BytesIO()
        np.savez(buf, params=rows, points=np.array([[0.5, 0.25], [3.0, 1.0]]))
        return client.post("/solve/sweep", content=buf.getvalue(), headers={"content-type": "application/x-npz"})

    r = sweep(mus)
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content)) as answer:
        assert answer["u"].shape == (len(mus), 2)
    refused = sweep(np.hstack([mus, mus[:, :1]]))
    assert refused.status_code == 422 and "nu, rho" in refused.text
