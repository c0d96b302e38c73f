"""The answer is defined once (fastlrnr/numerics/answer.py): the OpenAPI schema of the responses is
derived from those dataclasses, and what the server writes fits it, field for field."""

from __future__ import annotations

from dataclasses import fields

from client_testkit import solve_body
from pydantic import TypeAdapter

from fastlrnr.numerics import answer as core
from fastlrnr.server.api import schemas

FULL = core.Diagnostics(
    fast_phase=core.FastPhaseDiagnostics(True, "exact", "lm", 2, 1e-5, True, 1.0, 0.5, 0.2, 0.1, 0.02, 0.01, 3),
    correction=core.CorrectionDiagnostics(True, 1e-4, 2, 1, 1e-9, core.GridSize(32, 33)),
    answer=core.AnswerDiagnostics(
        core.Rung.REFERENCE,
        core.CoefficientSource.FAST_PHASE,
        64,
        core.A_PRIORI,
        128,
        core.Escalation(core.Rung.CORRECTED, ["corrected:8", "reference"], True),
    ),
    timings_ms={"total": 1.0},
    extrapolated=True,
    batch_size=1,
)


def test_the_wire_form_of_every_part_round_trips_through_the_derived_schema():
    wire = FULL.to_json()
    parsed = TypeAdapter(core.Diagnostics).validate_python(wire)  # the schema's own reading of the wire
    assert parsed == FULL and core.Diagnostics.from_json(wire) == FULL
    assert wire["answer"]["escalation"]["from"] == "corrected"  # the wire name the schema declares
    trust = core.Trust.of(core.Rung.CORRECTED, 3e-3, 1e-3, [], None)
    assert TypeAdapter(core.Trust).validate_python(trust.to_json()) == trust
    assert trust.within_tolerance is False and [f.code for f in trust.flags] == [core.FlagCode.ESTIMATE_ABOVE_TOLERANCE]


def test_the_response_schemas_are_derived_from_the_answer():
    solve = schemas.SolveResponse.model_json_schema()
    props = solve["properties"]
    for f in fields(core.Trust):
        assert f.name in props and props[f.name].get("description"), f.name
    defs = solve["$defs"]
    assert set(defs["Diagnostics"]["properties"]) == {f.name for f in fields(core.Diagnostics)}
    assert set(defs["FastPhaseDiagnostics"]["properties"]) == {f.name for f in fields(core.FastPhaseDiagnostics)}
    assert set(defs["Escalation"]["properties"]) == {"from", "tried", "time_budget_exhausted"}
    assert defs["FlagCode"]["enum"] == [c.value for c in core.FlagCode]
    assert defs["Rung"]["enum"] == [r.value for r in core.Rung]
    assert defs["CoefficientSource"]["enum"] == [c.value for c in core.CoefficientSource]
    batch = schemas.BatchItem.model_json_schema()["properties"]
    assert {f.name for f in fields(core.Trust)} <= set(batch)


def test_what_the_server_answers_fits_the_schema(client):
    r = client.post(
        "/solve",
        json={
            "params": {"beta": 2.0, "nu": 0.5, "rho": 1.0},
            "grid": {"nx": 8, "nt": 3},
            "tolerance": 1e-9,
            "time_budget_ms": 2000,
        },
    )
    assert r.status_code == 200, r.text
    schemas.SolveResponse.model_validate(r.json())
    b = client.post(
        "/solve/batch",
        json={
            "params": [{"beta": 1.5}, {"beta": 2.5, "rho": 1.0}],
            "grid": {"points": [[0.1, 0.2], [3.0, 0.9]]},
            "correction": False,
        },
    )
    assert b.status_code == 200, b.text
    schemas.BatchSolveResponse.model_validate(b.json())
    schemas.SolveResponse.model_validate({**solve_body(), "request_id": "r"})  # the client's test double, too
