"""benchmarks/burgers_solvers.py and the plumbing of benchmarks/burgers_baseline.py: the finite-volume
solver converges to Cole–Hopf, the spectral one is the reference's method, rows keep their order, and
a service callable is timed beside the classical solvers. Cheap checks only (the script is timing)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics import shock_reference as sr
from fastlrnr.numerics.cole_hopf import cole_hopf_burgers
from fastlrnr.numerics.spectral import trig_interpolate

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """The modules, imported as the scripts import each other (benchmarks/ on sys.path)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield {name: importlib.import_module(name) for name in ("burgers_solvers", "burgers_baseline")}
    finally:
        sys.path.remove(str(BENCHMARKS))


def rel_l2(u, ref):
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def test_weno5_converges_to_cole_hopf_before_and_after_the_shock(bench):
    bs = bench["burgers_solvers"]
    t = np.array([0.3, 0.6, 1.0])
    errors = []
    for n in (64, 128, 256):  # sites at the cell centres: no interpolation
        sites = bs.Sites("grid", 2.0 * np.pi * np.arange(n) / n, t)
        u = bs.solver(bs.WENO5, sites, n)(np.array([[1.0, 2e-2, 0.0]]))[0]
        errors.append(rel_l2(u, cole_hopf_burgers(1.0, 2e-2, sites.x, t)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.8) and errors[-1] < 2e-4, (errors, orders)  # ≥ 2: averages read as point values
    sites = bs.Sites("grid", 2.0 * np.pi * np.arange(256) / 256, np.array([1.0]))
    u = bs.solver(bs.WENO5, sites, 2048)(np.array([[3.0, 1e-2, 0.0]]))[0]  # a shock 0.007 wide
    assert rel_l2(u, cole_hopf_burgers(3.0, 1e-2, sites.x, sites.t)) < 2e-3


def test_spectral_solver_is_the_reference_method(bench):
    bs = bench["burgers_solvers"]
    rng = np.random.default_rng(0)
    mu = np.array([[2.5, 4e-3, 0.3], [1.2, 8e-3, 0.9], [3.0, 1e-2, 0.0]])
    points = bs.Sites("points", rng.uniform(0.0, 2.0 * np.pi, 7), rng.uniform(0.0, 1.0, 7))
    grid = bs.Sites("grid", rng.uniform(0.0, 2.0 * np.pi, 9), np.linspace(0.0, 1.0, 5))
    for row in mu:  # one row a call: its own steps
        states = sr.etdrk4_march(row[None], np.sort(points.t), 1, 256)
        order = np.searchsorted(np.sort(points.t), points.t)
        want = np.array([trig_interpolate(states[0, order[p]], points.x[p : p + 1])[0] for p in range(7)])
        np.testing.assert_allclose(bs.solver(bs.SPECTRAL, points, 256)(row[None])[0], want, atol=1e-12)
        want = trig_interpolate(sr.etdrk4_march(row[None], grid.t, 1, 256)[0], grid.x)
        np.testing.assert_allclose(bs.solver(bs.SPECTRAL, grid, 256)(row[None])[0], want, atol=1e-12)
        # evaluate() on one site set is the same march
        np.testing.assert_allclose(bs.evaluate(bs.SPECTRAL, 256, row[None], [grid])[0][0], want, atol=1e-12)


def test_rows_keep_their_order_and_chunks_of_sorted_beta_share_steps(bench, monkeypatch):
    bs = bench["burgers_solvers"]
    monkeypatch.setattr(bs, "CHUNK", 2)
    seen = []

    def fn(rows):
        seen.append(rows[:, 0].copy())
        return rows[:, :1] * 10.0

    mu = np.array([[3.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [1.5, 0, 0], [2.5, 0, 0]])
    np.testing.assert_array_equal(bs.by_beta(mu, fn)[:, 0], 10.0 * mu[:, 0])
    assert [s.tolist() for s in seen] == [[1.0, 1.5], [2.0, 2.5], [3.0]]


def test_linear_matrix_interpolates_between_centres_periodically(bench):
    bs = bench["burgers_solvers"]
    n = 16
    values = np.sin(2.0 * np.pi * np.arange(n) / n)
    x = np.array([0.0, 2.0 * np.pi / n * 3.25, 2.0 * np.pi - 0.5 * 2.0 * np.pi / n, -2.0 * np.pi / n])
    got = values @ bs.linear_matrix(n, x)
    np.testing.assert_allclose(got, [values[0], 0.75 * values[3] + 0.25 * values[4], 0.5 * values[-1], values[-1]])


def test_the_service_is_timed_beside_the_classical_solvers(bench, capsys, monkeypatch):
    """``add_service`` takes any callable of the shape's sites; it gets its worst error and a row in
    the same table. A stand-in for the service here: the spectral solver itself at 512 points."""
    bs, bb = bench["burgers_solvers"], bench["burgers_baseline"]
    sites = bs.Sites("points", np.linspace(0.1, 6.0, 5), np.linspace(0.1, 0.9, 5))
    hard = bb.HARD[bb.HARD[:, 1] == 1e-2][:3]  # three cheap sets
    monkeypatch.setattr(bb, "HARD", hard)
    monkeypatch.setattr(bb, "CORNER", np.zeros(3, dtype=bool))
    ref = bs.solver(bs.SPECTRAL, sites, 2048)(hard)
    shape = bb.Shape("test", sites, False)
    shape.resolutions = [bb.Resolution("spectral", 1e-2, 256, 1e-3, "")]
    bb.build_paths(shape, argparse.Namespace(artifact=None), ref)
    worst = bb.add_service(shape, "service stand-in", bs.solver(bs.SPECTRAL, sites, 512), ref)
    times = bb.time_single(shape, bb.BURGERS.sample(4, np.random.default_rng(1)), 2)
    bb.print_table(shape, times, None, 10)
    assert 0.0 < worst < 1e-3 and set(times) == {"spectral at 1 % (n 256)", "service stand-in"}
    out = capsys.readouterr().out
    assert "service stand-in" in out and f"{worst:.2e}" in out
