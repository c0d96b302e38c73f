"""The answer's one definition (fastlrnr/numerics/answer.py) and what the OpenAPI schema documents of it
(fastlrnr/server/api/schemas.py) name the same fields, codes and rungs."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

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


def _runtime_imports(module: str) -> set[str]:
    """The service modules ``module`` imports when it runs (an ``if TYPE_CHECKING:`` block aside)."""
    path = Path(__file__).resolve().parents[2] / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("fastlrnr.server.")}


# the /solve path, in the order a request takes it: each may import what comes after it, never before
SOLVE_PATH = [
    "fastlrnr.server.api.routes",
    "fastlrnr.server.api.checks",
    "fastlrnr.server.engine.solver",
    "fastlrnr.server.engine.ladder",
    "fastlrnr.server.api.responses",
]


@pytest.mark.parametrize("i", range(1, len(SOLVE_PATH)))
def test_the_solve_path_imports_only_downwards(i):
    earlier = set(SOLVE_PATH[:i])
    assert not _runtime_imports(SOLVE_PATH[i]) & earlier, SOLVE_PATH[i]
