"""The service's Prometheus metrics (prometheus_client), one registry per app.

Names are the service's contract with dashboards: ``fastlrnr_*`` as listed in
:class:`Registry`, plus the standard ``process_*`` (CPU, memory, file descriptors) and
``python_*`` (interpreter, garbage collector) series. ``_created`` series are off.
The exposition follows the scrape's ``Accept`` header (Prometheus text or OpenMetrics).

Every label value comes from a closed set, so no client can grow the exposition: the
HTTP method is one of :data:`METHODS` or ``other`` (:func:`method_label`), the route is a
route template or ``unmatched`` (``fastlrnr.server.http.middleware.Observe``), the status is one the
service itself sent, and the model names are the loaded models'.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    exposition,
)

disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# HTTP methods that get a label value of their own; any other method (HTTP allows any token,
# e.g. 60 000 random characters) is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD = "other"


def method_label(method: str) -> str:
    """``method`` when it is one of :data:`METHODS`, else ``other``."""
    return method if method in METHODS else OTHER_METHOD


class Registry:
    """The service's metrics, created together so names stay in one place."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.requests = Counter(
            "fastlrnr_http_requests",
            "HTTP requests by route and status code",
            ("method", "route", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "fastlrnr_http_request_duration_seconds",
            "HTTP request latency by route",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "fastlrnr_solve_stage_seconds",
            "time per solve stage (one observation per solver pass)",
            ("model", "stage"),
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.fast_phase = Histogram(
            "fastlrnr_fast_phase_seconds",
            "fast-phase wall time per solver pass",
            ("model",),
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "fastlrnr_solver_batch_rows",
            "parameter sets per solver pass",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.solves = Counter(
            "fastlrnr_solves", "parameter sets solved, by fast-phase outcome", ("model", "outcome"), registry=r
        )
        self.queue_depth = Gauge("fastlrnr_solver_queue_depth", "solve jobs waiting for a worker thread", registry=r)
        self.in_flight = Gauge("fastlrnr_solver_in_flight", "solve jobs running on worker threads", registry=r)
        self.open_requests = Gauge(
            "fastlrnr_open_requests", "solve requests open (reading, parsing, waiting or solving)", registry=r
        )
        self.rejected = Counter("fastlrnr_solver_rejected", "solve jobs refused because the queue was full", registry=r)
        self.requests_rejected = Counter(
            "fastlrnr_requests_rejected",
            "solve requests refused before their body was read: max_requests open",
            registry=r,
        )
        self.slow_bodies = Gauge(
            "fastlrnr_slow_bodies",
            "request bodies still arriving after the grace period (each holds a slow-body place)",
            registry=r,
        )
        self.slow_bodies_rejected = Counter(
            "fastlrnr_slow_bodies_rejected",
            "requests refused because max_slow_bodies bodies were still arriving",
            registry=r,
        )
        self.ready = Gauge("fastlrnr_ready", "1 when every model is loaded and warmed", registry=r)
        self.models = Gauge(
            "fastlrnr_model_info", "loaded models (value 1)", ("model", "version", "sha256"), registry=r
        )
        # artifact reloads (fastlrnr.server.engine.reload)
        self.reloads = Counter(
            "fastlrnr_model_reloads",
            "artifact changes acted on: loaded (new model), replaced, removed, refused (the old one serves on)",
            ("model", "outcome"),
            registry=r,
        )
        self.reload_refused = Gauge(
            "fastlrnr_model_reload_refused",
            "1 while the artifact on disk is refused (the version before it, if any, serves on)",
            ("model",),
            registry=r,
        )

    def expose(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of a scrape, in the format the ``Accept`` header asks for."""
        encoder, content_type = exposition.choose_encoder(accept or "")
        return encoder(self.registry), content_type
