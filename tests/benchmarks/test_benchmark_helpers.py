"""benchmarks/: the classical baseline's solver is the reference solver's method; the field
floor's counts; the shared timing and server helpers. Cheap checks only (the scripts themselves
are timing, not tests)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.random_model import random_lrnr
from fastlrnr.numerics.reference import solve_reference_batch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """The benchmark modules, imported as the scripts import each other (benchmarks/ on sys.path)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("classical_baseline", "classical_solver", "field_floor", "server", "timing")
        }
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize("rows", [1, 3, 20])  # one row and a few: dense convection step; 20: FFT step
@pytest.mark.parametrize("n", [16, 32])
def test_classical_solver_is_the_reference_method(bench, rows, n):
    cb = bench["classical_solver"]
    rng = np.random.default_rng(rows)
    mu = rng.uniform([1.0, 0.0, 0.0], [3.0, 2.0, 2.0], (rows, 3))
    mu[0, 2] = 0.0  # a row without reaction beside reacting ones
    grid = cb.Sites("grid", 2 * np.pi * np.arange(24) / 24, np.linspace(0.0, 1.0, 7))
    points = cb.Sites("points", rng.uniform(0.0, 2 * np.pi, 9), rng.uniform(0.0, 1.0, 9))
    for sites in (grid, points):
        got = cb.classical_solver(sites, 16, n)(mu)
        want = cb.reference_at(sites, mu, substeps=16, nx_internal=n)
        np.testing.assert_allclose(got, want, rtol=0.0, atol=1e-12)
    t = np.sort(points.t)
    want = solve_reference_batch(
        mu, points.x, t, substeps=16, nx_internal=n, family=CDR_FAMILY
    )  # (B, P, P): u(x_j, t_i)
    order = np.argsort(points.t)
    np.testing.assert_allclose(
        cb.reference_at(points, mu, substeps=16, nx_internal=n)[:, order], want[:, :, order].diagonal(axis1=1, axis2=2)
    )


def test_no_reaction_march_is_exact_in_time(bench):
    cb = bench["classical_solver"]
    sites = cb.Sites("grid", 2 * np.pi * np.arange(16) / 16, np.linspace(0.0, 1.0, 5))
    mu = np.array([[7.0, 0.0, 0.0]])
    x, t = np.meshgrid(sites.x, sites.t)
    np.testing.assert_allclose(cb.classical_solver(sites, 1, 16)(mu)[0], 1.0 + np.sin(x - 7.0 * t), atol=1e-13)
    assert sites.steps(1) == 4 and sites.steps(8) == 8  # 4 intervals, ceil(8 · 0.25) = 2 steps each


def test_rel_l2_and_merge(bench):
    ref = np.ones((2, 3, 4))
    u = ref.copy()
    u[1] *= 1.01
    np.testing.assert_allclose(bench["classical_solver"].rel_l2(u, ref), [0.0, 0.01])
    assert bench["classical_baseline"].merged({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}, "e": 6}) == {
        "a": {"b": 5, "c": 2},
        "d": 3,
        "e": 6,
    }


def test_field_work_counts(bench):
    ff = bench["field_floor"]
    w = random_lrnr(32, (5, 4, 3), seed=1)
    N, ks, P = 32, (5, 4, 3), 10
    one = ff.lrnr_work(w, P, 1)
    assert one.flops == 2 * P * (3 * N + sum(2 * N * k for k in ks) + N)
    assert one.tanh == P * N * 4
    many = ff.lrnr_work(w, P, 7)
    shared = 2 * P * (3 * N + N * ks[0])  # h_0 and U_1ᵀ h_0 once for every set
    assert many.flops == shared + 7 * (one.flops - shared)
    assert many.tanh == P * N + 7 * P * N * 3


def test_interleaved_rounds(bench):
    timing = bench["timing"]
    calls = []
    times = timing.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=1)
    assert calls == ["a", "b"] * 4
    assert set(times) == {"a", "b"} and all(len(v) == 3 and min(v) >= 0.0 for v in times.values())
    best, med = timing.timed(lambda: None, 5)
    assert 0.0 <= best <= med


def test_cheapest_resolution(bench):
    cb = bench["classical_solver"]
    sites = cb.Sites("grid", 2 * np.pi * np.arange(8) / 8, np.linspace(0.0, 1.0, 5))  # ≥ 4 steps whatever substeps
    errors = {(16, 1): 1e-3, (16, 8): 1e-4, (32, 1): 1e-5, (64, 1): 1e-5, (32, 8): 1e-6, (64, 8): 1e-7}
    mu = np.array([[2.0, 1.0, 1.0]])
    assert cb.cheapest(sites, errors, 2e-3, mu) == (16, 1)  # fewest steps and modes: no timing needed
    assert cb.cheapest(sites, errors, 1e-5, mu) == (32, 1)  # (64, 1) takes as many steps with more modes
    assert cb.cheapest(sites, errors, 1e-8, mu) is None


def test_server_helpers(bench):
    server = bench["server"]
    assert server.parse_variant("nosplit:FASTLRNR_FIELD_THREADS=1,A=b=c") == (
        "nosplit",
        {"FASTLRNR_FIELD_THREADS": "1", "A": "b=c"},
    )
    assert server.parse_variant("default") == ("default", {})
    assert server.is_loopback("http://127.0.0.1:8000") and not server.is_loopback("http://example.com:80")
    assert 0 < server.free_port() < 65536
    mem = server.proc_memory(os.getpid())
    assert set(mem) == {"VmRSS", "VmHWM"} and 0 < mem["VmRSS"] <= mem["VmHWM"]
    assert server.proc_cpu_seconds(os.getpid()) > 0
