"""The answer's one definition (fastlrnr/numerics/answer.py) and what the OpenAPI schema documents of it
(fastlrnr/server/api/schemas.py) name the same fields, codes and rungs."""

from __future__ import annotations

from dataclasses import fields

import pytest

from fastlrnr.numerics import answer as core
from fastlrnr.server.api import schemas


def _wire_names(model) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


FULL = core.Diagnostics(
    fast_phase=core.FastPhaseDiagnostics(True, "exact", "lm", 2, 1e-5, True, 1.0, 0.5, 0.2, 0.1, 0.02, 0.01, 3),
    correction=core.CorrectionDiagnostics(True, 1e-4, 2, 1, 1e-9, (32, 33)),
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


@pytest.mark.parametrize(
    "model, value",
    [
        (schemas.Diagnostics, FULL),
        (schemas.FastPhaseDiagnostics, FULL.fast_phase),
        (schemas.CorrectionDiagnostics, FULL.correction),
        (schemas.AnswerDiagnostics, FULL.answer),
        (schemas.Escalation, FULL.answer.escalation),
        (schemas.Flag, core.Flag(core.FlagCode.TIME_BUDGET_EXHAUSTED, "m")),
    ],
)
def test_the_schema_documents_the_fields_the_answer_has(model, value):
    wire = value.to_json()
    assert set(wire) == _wire_names(model)
    model.model_validate(wire)  # and the values fit the documented types


def test_codes_and_rungs_are_the_answers():
    flag = schemas.Flag.model_json_schema()["properties"]["code"]
    assert flag["enum"] == [c.value for c in core.FlagCode]
    rung = schemas.SolveResponse.model_json_schema()["properties"]["rung"]
    assert rung["enum"] == [r.value for r in core.Rung]
    source = schemas.AnswerDiagnostics.model_json_schema()["properties"]["coefficients"]
    assert source["enum"] == [c.value for c in core.CoefficientSource]
    assert {f.name for f in fields(core.FastPhaseDiagnostics)} == set(schemas.FastPhaseDiagnostics.model_fields)
