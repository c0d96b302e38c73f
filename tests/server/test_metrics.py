"""GET /metrics (prometheus_client): the service's metric names, process metrics, route labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from service_testkit import TEST_STEPS

from fastlrnr.server.metrics import Registry

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
NAMES = {
    "fastlrnr_http_requests",
    "fastlrnr_http_request_duration_seconds",
    "fastlrnr_solve_stage_seconds",
    "fastlrnr_fast_phase_seconds",
    "fastlrnr_solver_batch_rows",
    "fastlrnr_solves",
    "fastlrnr_solver_queue_depth",
    "fastlrnr_solver_in_flight",
    "fastlrnr_open_requests",
    "fastlrnr_solver_rejected",
    "fastlrnr_requests_rejected",
    "fastlrnr_slow_bodies",
    "fastlrnr_slow_bodies_rejected",
    "fastlrnr_ready",
    "fastlrnr_model_info",
}


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition (parsed, so well-formed)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_exposition_has_every_service_metric_and_the_process_metrics(client):
    client.post("/solve", json={"params": MU, "grid": {"nx": 8, "nt": 4}, "fast_phase": {"steps": TEST_STEPS}})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name for f in text_string_to_metric_families(r.text)}
    assert families >= NAMES
    assert {
        "process_resident_memory_bytes",
        "process_cpu_seconds",
        "process_open_fds",
        "python_info",
        "python_gc_collections",
    } <= families
    got = samples(r.text)
    assert got[("fastlrnr_http_requests_total", (("method", "POST"), ("route", "/solve"), ("status", "200")))] >= 1
    assert got[("fastlrnr_fast_phase_seconds_count", (("model", "cdr"),))] >= 1
    assert got[("fastlrnr_ready", ())] == 1 and got[("fastlrnr_solver_queue_depth", ())] == 0
    assert got[("process_resident_memory_bytes", ())] > 10e6
    assert not any(name.endswith("_created") for name, _ in got)


def test_docs_and_openapi_are_labelled_as_routes(client):
    for path in ("/docs", "/openapi.json", "/nope"):
        client.get(path)
    got = samples(client.get("/metrics").text)
    for route, status in (("/docs", "200"), ("/openapi.json", "200"), ("unmatched", "404")):
        assert got[("fastlrnr_http_requests_total", (("method", "GET"), ("route", route), ("status", status)))] >= 1


def test_openmetrics_when_the_scraper_asks(client):
    r = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_registries_are_per_app():
    a, b = Registry(), Registry()
    a.rejected.inc()
    assert "fastlrnr_solver_rejected_total 1.0" in a.expose()[0].decode()
    assert "fastlrnr_solver_rejected_total 0.0" in b.expose()[0].decode()
