"""service/metrics.py: Prometheus text exposition (format 0.0.4) of counters, gauges, histograms."""
from __future__ import annotations

import re
import threading

import pytest

from service.metrics import Counter, Gauge, Histogram, Registry

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfNa]+$')


def test_counter_and_label_escaping():
    c = Counter("x_requests", "help text", ("route",))
    c.inc(route='/a"b\\c\nd')
    c.inc(2, route="/z")
    lines = list(c.expose())
    assert lines[:2] == ["# HELP x_requests_total help text", "# TYPE x_requests_total counter"]
    assert lines[2] == 'x_requests_total{route="/a\\"b\\\\c\\nd"} 1'
    assert lines[3] == 'x_requests_total{route="/z"} 2'
    with pytest.raises(ValueError, match="labels"):
        c.inc(other="x")


def test_gauge_without_labels_always_exposed():
    g = Gauge("depth", "queue depth")
    assert list(g.expose())[-1] == "depth 0"
    g.inc(3)
    g.dec()
    assert list(g.expose())[-1] == "depth 2"


def test_histogram_buckets_are_cumulative():
    h = Histogram("lat", "latency", ("route",), buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 0.5, 3.0):
        h.observe(v, route="/s")
    lines = list(h.expose())[2:]
    assert lines == ['lat_bucket{route="/s",le="0.1"} 1', 'lat_bucket{route="/s",le="1"} 3',
                     'lat_bucket{route="/s",le="+Inf"} 4', 'lat_sum{route="/s"} 4.05', 'lat_count{route="/s"} 4']


def test_registry_exposition_is_well_formed_under_threads():
    r = Registry()

    def work():
        for _ in range(200):
            r.requests.inc(method="GET", route="/x", status="200")
            r.latency.observe(0.01, method="GET", route="/x")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    text = r.expose()
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert 'fastlrnr_http_requests_total{method="GET",route="/x",status="200"} 800' in text
    assert r.latency.count(method="GET", route="/x") == 800
