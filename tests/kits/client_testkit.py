"""Helpers for the client tests: complete answers in the service's response contract, for mock servers."""

from __future__ import annotations

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}


def solve_body(params=MU, **changes) -> dict:
    """A complete /solve JSON answer (``fastlrnr.server.api.schemas.SolveResponse``)."""
    fp = {
        "enabled": True,
        "backend": "exact",
        "optimizer": "lm",
        "steps_requested": 3,
        "steps_run": 3,
        "locality": 0.1,
        "accepted": True,
        "objective_before": 2.0,
        "objective_after": 1.0,
        "residual_before": 0.5,
        "residual_after": 0.25,
        "error_proxy_before": 0.04,
        "error_proxy_after": 0.02,
    }
    body = {
        "model": {"name": "m", "version": "1", "sha256": "0" * 64},
        "params": params,
        "grid": "uniform",
        "x": [0.0],
        "t": [0.0],
        "u": [[1.0]],
        "coefficients": [[1.0]],
        "rung": "surrogate",
        "error_estimate": 0.01,
        "within_tolerance": None,
        "flags": [],
        "extrapolated": False,
        "diagnostics": {"timings_ms": {"total": 1.0}, "fast_phase": fp, "extrapolated": False, "batch_size": 1},
        "request_id": "r",
    }
    body.update(changes)
    return body
