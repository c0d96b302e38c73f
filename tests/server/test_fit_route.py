"""POST /fit (fastlrnr/server/api/fit.py) on the synthetic artifacts: the contract, a round trip
from /solve's own answer, every refusal (422, 413, 404) and the OpenAPI examples.

The synthetic models are random networks: the numbers mean nothing physically (the reference
solver's solution is not theirs), but their corrected answer is a smooth function of the
parameters, so observations of it are fitted back when the fit is refined on it
(``refinement: corrected``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from service_testkit import make_client, make_settings

import fastlrnr.server.api.fit as fit_route
from fastlrnr.server.app import create_app

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([2 * np.pi * rng.random(n), 0.05 + 0.95 * rng.random(n)], axis=1)


def observe(client, mu=MU, n=24, noise=1e-3, seed=0, model=None):
    """The served answer of ``mu`` at n random points, plus noise: an observations object."""
    pts = points(n, seed)
    body = {"params": mu, "grid": {"points": pts.tolist()}, "fast_phase": {"enabled": False}}
    if model:
        body["model"] = model
    r = client.post("/solve", json=body)
    assert r.status_code == 200, r.text
    u = np.asarray(r.json()["u"]) + noise * np.random.default_rng(seed + 1).normal(size=n)
    return {"points": pts.tolist(), "u": u.tolist()}


def assert_error(r, status, code, loc=None, says=None):
    assert r.status_code == status, r.text
    d = r.json()
    assert set(d) == {"error", "message", "request_id", "errors"} and d["error"] == code, d
    if loc is not None:
        assert any(e["loc"][: len(loc)] == loc for e in d["errors"]), d["errors"]
    if says:
        assert says in d["message"], d["message"]
    return d


@pytest.fixture(scope="module")
def observed(client):
    return observe(client)


def test_fit_round_trip_and_contract(client, observed):
    body = {"observations": observed, "noise": 1e-3, "grid": {"nx": 8, "nt": 3}, "refinement": "corrected"}
    r = client.post("/fit", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {
        "model",
        "params",
        "free",
        "std_errors",
        "intervals",
        "level",
        "covariance",
        "bounds",
        "noise",
        "misfit",
        "surrogate",
        "flags",
        "iterations",
        "starts",
        "refinements",
        "converged",
        "extrapolated",
        "field",
        "diagnostics",
        "request_id",
    }
    assert d["model"]["name"] == "cdr" and d["free"] == ["beta", "nu", "rho"] and d["level"] == 0.95
    assert d["bounds"] == {"beta": [1.0, 3.0], "nu": [0.0, 2.0], "rho": [0.0, 2.0]}
    for k, v in MU.items():
        assert abs(d["params"][k] - v) <= 4 * d["std_errors"][k] + 1e-9, (k, d["params"], d["std_errors"])
        lo, hi = d["intervals"][k]
        assert lo <= d["params"][k] <= hi
    cov = np.asarray(d["covariance"]["matrix"])
    assert d["covariance"]["params"] == d["free"] and cov.shape == (3, 3)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [d["std_errors"][k] for k in d["free"]], rtol=1e-9)
    noise, sur = d["noise"], d["surrogate"]
    assert noise["sigma"] == 1e-3 and noise["estimated"] is False and noise["effective"] >= 1e-3
    assert sur["widening"] == pytest.approx(noise["effective"] / noise["sigma"])
    assert noise["effective"] == pytest.approx(np.sqrt(1e-6 + 24 * sur["error"] ** 2))
    assert d["misfit"]["dof"] == 21 and d["misfit"]["p_value"] > 1e-3
    assert d["surrogate"]["rung"] == "corrected" and d["converged"] and not d["extrapolated"]
    assert {"queue", "screen", "lm", "refine", "uncertainty", "fit", "field", "total"} <= set(
        d["diagnostics"]["timings_ms"]
    )
    assert d["request_id"] == r.headers["x-request-id"]
    # the fitted field is /solve's answer at the fit
    field = d["field"]
    solved = client.post(
        "/solve", json={"params": d["params"], "grid": {"nx": 8, "nt": 3}, "fast_phase": {"enabled": False}}
    )
    np.testing.assert_allclose(np.asarray(field["u"]), np.asarray(solved.json()["u"]), rtol=0, atol=1e-6)
    assert field["grid"] == "uniform" and len(field["x"]) == 8 and len(field["t"]) == 3


def test_estimated_noise_fixed_and_bounds(client, observed):
    body = {"observations": observed, "fixed": {"nu": 0.5}, "bounds": {"beta": [1.5, 2.5]}, "refinement": "corrected"}
    d = client.post("/fit", json=body).json()
    assert d["free"] == ["beta", "rho"] and d["params"]["nu"] == 0.5 and set(d["std_errors"]) == {"beta", "rho"}
    assert d["noise"]["estimated"] and 0.3e-3 < d["noise"]["sigma"] < 3e-3 and d["misfit"]["dof"] == 22
    assert d["bounds"]["beta"] == [1.5, 2.5] and d["bounds"]["nu"] == [0.5, 0.5]
    assert d["field"] is None


def test_a_model_with_held_parameters(client):
    obs = observe(client, {"beta": 6.0}, n=12, model="convection")
    body = {"model": "convection", "observations": obs, "noise": 1e-3, "refinement": "corrected"}
    d = client.post("/fit", json=body).json()
    assert d["free"] == ["beta"] and d["params"]["nu"] == 0.0 and d["params"]["rho"] == 0.0
    assert d["bounds"] == {"beta": [1.0, 12.0], "nu": [0.0, 0.0], "rho": [0.0, 0.0]} and d["misfit"]["dof"] == 11
    assert set(d["std_errors"]) == {"beta"} and d["covariance"]["params"] == ["beta"]
    held = {"model": "convection", "observations": obs, "noise": 1e-3, "fixed": {"nu": 0.1}}
    assert_error(client.post("/fit", json=held), 422, "out_of_domain", ["body", "fixed", "nu"], "nu = 0")


def test_flags_reach_the_answer(client, observed):
    d = client.post("/fit", json={"observations": observed, "noise": 1e-5}).json()  # σ 100× too small
    assert "poor_fit" in {f["code"] for f in d["flags"]}
    at_t0 = {"points": [[0.5 * i, 0.0] for i in range(6)], "u": [1.0] * 6}
    d = client.post("/fit", json={"observations": at_t0, "noise": 1e-3}).json()  # u(x, 0) does not depend on μ
    flag = next(f for f in d["flags"] if f["code"] == "not_identifiable")
    assert flag["params"] == ["beta", "nu", "rho"] and d["std_errors"] == {"beta": None, "nu": None, "rho": None}
    assert d["intervals"]["nu"] == [0.0, 2.0]


def test_extrapolation_needs_allow_extrapolation(client, observed):
    body = {"observations": observed, "noise": 1e-3, "bounds": {"beta": [1.0, 4.0]}}
    assert_error(client.post("/fit", json=body), 422, "out_of_domain", ["body", "bounds", "beta"], "served domain")
    r = client.post("/fit", json={**body, "allow_extrapolation": True})
    assert r.status_code == 200 and r.json()["bounds"]["beta"] == [1.0, 4.0]
    too_far = {**body, "bounds": {"beta": [1.0, 40.0]}, "allow_extrapolation": True}
    assert_error(client.post("/fit", json=too_far), 422, "out_of_domain", ["body", "bounds", "beta"], "too far")
    fixed_outside = {"observations": observed, "noise": 1e-3, "fixed": {"rho": 3.5}}
    assert_error(client.post("/fit", json=fixed_outside), 422, "out_of_domain", ["body", "fixed", "rho"])


@pytest.mark.parametrize(
    "change, loc, says",
    [
        ({"noise": 0.0}, ["body", "noise"], "greater than 0"),
        ({"noise": -1.0}, ["body", "noise"], "greater than 0"),
        ({"bounds": {"gamma": [0, 1]}}, ["body", "bounds", "gamma"], "unknown parameter 'gamma'"),
        ({"fixed": {"gamma": 1.0}}, ["body", "fixed", "gamma"], "unknown parameter 'gamma'"),
        ({"bounds": {"nu": [0.1, 1.0]}, "fixed": {"nu": 0.5}}, ["body", "fixed", "nu"], "both bounded and fixed"),
        ({"bounds": {"beta": [2.5, 1.5]}}, ["body", "bounds", "beta"], "low 2.5 > high 1.5"),
        ({"bounds": {"beta": [1.5]}}, ["body", "bounds", "beta"], None),
        ({"starts": 0}, ["body", "starts"], None),
        ({"starts": 17}, ["body", "starts"], None),
        ({"refinement": "maybe"}, ["body", "refinement"], None),
        ({"extra": 1}, ["body", "extra"], None),
        ({"model": "../etc"}, ["body", "model"], None),
        ({"noise": "0.01"}, ["body", "noise"], None),
    ],
)
def test_bad_options_are_422(client, observed, change, loc, says):
    d = assert_error(client.post("/fit", json={"observations": observed, **change}), 422, "validation_error", loc)
    if says:
        assert says in d["message"] or any(says in e["msg"] for e in d["errors"]), d


@pytest.mark.parametrize(
    "observations, loc, says",
    [
        ({"points": [[1.0, 0.5], [7.0, 0.5]], "u": [1.0, 1.0]}, ["body", "observations", "points", 1, 0], "6.28"),
        ({"points": [[1.0, 0.5], [-0.1, 0.5]], "u": [1.0, 1.0]}, ["body", "observations", "points", 1, 0], None),
        ({"points": [[1.0, 0.5], [2.0, 1.5]], "u": [1.0, 1.0]}, ["body", "observations", "points", 1, 1], None),
        ({"points": [[1.0, 0.5], [2.0, 0.5]], "u": [1.0]}, ["body", "observations"], "1 values for 2 points"),
        ({"points": [], "u": []}, ["body", "observations", "points"], None),
        ({"points": [[1.0, 0.5]]}, ["body", "observations", "u"], None),
    ],
)
def test_bad_observations_are_422(client, observations, loc, says):
    d = assert_error(
        client.post("/fit", json={"observations": observations, "noise": 0.1}), 422, "validation_error", loc
    )
    if says:
        assert says in d["message"], d["message"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_values_are_422(client, literal):
    raw = b'{"observations": {"points": [[1.0, 0.5], [2.0, 0.5]], "u": [1.0, ' + literal + b"]}, " + b'"noise": 0.1}'
    r = client.post("/fit", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 422, "validation_error", ["body", "observations", "u", 1])
    raw = b'{"observations": {"points": [[1.0, 0.5], [2.0, 0.5]], "u": [1.0, 2.0]}, "noise": ' + literal + b"}"
    r = client.post("/fit", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 422, "validation_error", ["body", "noise"])


def test_too_few_observations_for_the_free_parameters(client):
    two = {"points": [[1.0, 0.5], [2.0, 0.5]], "u": [1.0, 1.1]}
    assert_error(
        client.post("/fit", json={"observations": two, "noise": 0.1}),
        422,
        "validation_error",
        ["body", "observations"],
        "2 observations cannot determine 3 free parameters: at least 3",
    )
    three = {"points": [[1.0, 0.5], [2.0, 0.5], [3.0, 0.5]], "u": [1.0, 1.1, 1.2]}
    d = assert_error(
        client.post("/fit", json={"observations": three}), 422, "validation_error", ["body", "observations"]
    )
    assert "and the noise level" in d["message"] and d["errors"][0]["type"] == "too_few_observations"
    assert client.post("/fit", json={"observations": two, "noise": 0.1, "fixed": {"nu": 0.5}}).status_code == 200


def test_limits_are_413(client, observed, monkeypatch):
    monkeypatch.setattr(fit_route, "MAX_OBSERVATIONS", 10)
    assert_error(
        client.post("/fit", json={"observations": observed, "noise": 1e-3}),
        413,
        "too_many_observations",
        ["body", "observations", "points"],
        "the limit is 10",
    )
    monkeypatch.undo()
    big = {"nx": 1024, "nt": 1024}
    assert_error(
        client.post("/fit", json={"observations": observed, "noise": 1e-3, "grid": big}), 413, "grid_too_large"
    )


def test_body_limit_and_unknown_model(artifact_root):
    many = {"points": points(200).tolist(), "u": [1.0] * 200}
    with make_client(create_app(make_settings(artifact_root, max_body_bytes=2048, warmup=False))) as c:
        r = c.post("/fit", json={"observations": many, "noise": 1e-3})
        assert_error(r, 413, "body_too_large")
        assert_error(
            c.post("/fit", json={"model": "nope", "observations": {"points": [[1, 0.5]], "u": [1]}}),
            404,
            "unknown_model",
        )


def test_openapi_documents_fit_with_served_examples(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/fit"]["post"]
    content = op["requestBody"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/FitRequest"}
    assert {"FitRequest", "FitResponse", "FitObservations"} <= set(spec["components"]["schemas"])
    assert {"401", "404", "408", "413", "422", "500", "503"} <= set(op["responses"])
    from fastlrnr.server.api.fit_schemas import FitRequest

    for name, ex in content["examples"].items():
        FitRequest.model_validate_json(json.dumps(ex["value"]))
        body = {**ex["value"], "grid": {"nx": 8, "nt": 2}} if "grid" in ex["value"] else ex["value"]
        r = client.post("/fit", json=body)
        assert r.status_code == 200, (name, r.text)
