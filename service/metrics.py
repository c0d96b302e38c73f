"""A minimal, thread-safe Prometheus registry with text exposition (format 0.0.4).

Hand-written to keep the serving image small: counters, gauges and histograms with
labels are all this service needs. Use one :class:`Registry` per app.
"""
from __future__ import annotations

import math
import threading
from typing import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str] | None) -> tuple[str, ...]:
        labels = labels or {}
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name}: expected labels {self.label_names}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """Exposed as ``<name>_total`` (HELP/TYPE lines too, as prometheus_client does for text 0.0.4)."""

    kind = "counter"

    def header(self) -> list[str]:
        return [f"# HELP {self.name}_total {self.help}", f"# TYPE {self.name}_total counter"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def expose(self) -> Iterable[str]:
        yield from self.header()
        with self._lock:
            items = sorted(self._values.items())
        for key, v in items:
            yield f"{self.name}_total{_labels(self.label_names, key)} {_fmt(v)}"


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def expose(self) -> Iterable[str]:
        yield from self.header()
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.label_names:
            items = [((), 0.0)]
        for key, v in items:
            yield f"{self.name}{_labels(self.label_names, key)} {_fmt(v)}"


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS):
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._series: dict[tuple[str, ...], list] = {}  # key → [bucket counts..., sum, count]

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, [0] * len(self.buckets) + [0.0, 0])
            for i, b in enumerate(self.buckets):
                if value <= b:
                    series[i] += 1
            series[-2] += value
            series[-1] += 1

    def count(self, **labels: str) -> int:
        series = self._series.get(self._key(labels))
        return 0 if series is None else series[-1]

    def expose(self) -> Iterable[str]:
        yield from self.header()
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for key, series in items:
            for b, c in zip(self.buckets, series):
                le = 'le="' + _fmt(b) + '"'
                yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {c}"
            le = 'le="+Inf"'
            yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {series[-1]}"
            yield f"{self.name}_sum{_labels(self.label_names, key)} {_fmt(series[-2])}"
            yield f"{self.name}_count{_labels(self.label_names, key)} {series[-1]}"


class Registry:
    """The service's metrics, created together so names stay in one place."""

    def __init__(self) -> None:
        self.requests = Counter("fastlrnr_http_requests", "HTTP requests by route and status code",
                                ("method", "route", "status"))
        self.latency = Histogram("fastlrnr_http_request_duration_seconds", "HTTP request latency by route",
                                 ("method", "route"))
        self.stage = Histogram("fastlrnr_solve_stage_seconds",
                               "time per solve stage (one observation per solver pass)",
                               ("model", "stage"), STAGE_BUCKETS)
        self.fast_phase = Histogram("fastlrnr_fast_phase_seconds", "fast-phase wall time per solver pass",
                                    ("model",), STAGE_BUCKETS)
        self.batch_rows = Histogram("fastlrnr_solver_batch_rows", "parameter sets per solver pass",
                                    ("model",), BATCH_BUCKETS)
        self.solves = Counter("fastlrnr_solves", "parameter sets solved, by fast-phase outcome",
                              ("model", "outcome"))
        self.queue_depth = Gauge("fastlrnr_solver_queue_depth", "solve jobs waiting for a worker thread")
        self.in_flight = Gauge("fastlrnr_solver_in_flight", "solve jobs running on worker threads")
        self.rejected = Counter("fastlrnr_solver_rejected", "solve jobs refused because the queue was full")
        self.ready = Gauge("fastlrnr_ready", "1 when every model is loaded and warmed")
        self.models = Gauge("fastlrnr_model_info", "loaded models (value 1)", ("model", "version", "sha256"))

    def all(self) -> list[_Metric]:
        return [self.requests, self.latency, self.stage, self.fast_phase, self.batch_rows, self.solves,
                self.queue_depth, self.in_flight, self.rejected, self.ready, self.models]

    def expose(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.expose())
        return "\n".join(lines) + "\n"
