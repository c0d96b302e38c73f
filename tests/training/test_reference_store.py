"""The reference fields a build measures against (fastlrnr/training/reference_store.py) and the
build sizes per family (fastlrnr/training/build_size.py)."""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics import shock_reference
from fastlrnr.numerics.families import BURGERS_FAMILY, CDR_FAMILY
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import solve_reference_batch
from fastlrnr.training.build_size import BuildSize, size_for
from fastlrnr.training.calibrate import extrapolation_set
from fastlrnr.training.reference_store import ReferenceStore
from fastlrnr.training.row_answers import reference_fields
from fastlrnr.training.sweep import TARGET

# cheap burgers rows (256 to 1024 points at 1e-2), each of its own points
ROWS = np.array([[1.0, 1e-2, 0.5], [2.0, 5e-3, 0.0], [3.0, 4e-3, 1.0]])


def test_without_a_cache_or_a_tolerance_the_store_is_reference_fields():
    """The builds of cdr, convection and allen_cahn keep their numbers: one batch, as before."""
    mus = np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 1.5]])
    store = ReferenceStore(CDR_FAMILY)
    np.testing.assert_array_equal(store(mus), reference_fields(mus, CDR_FAMILY))
    assert (store.stats.asked, store.stats.solved, store.stats.cached) == (2, 2, 0)


def test_the_cache_solves_a_row_once_at_the_tolerance_and_keys_it_by_its_resolution(tmp_path):
    x, t = standard_grid()
    points = shock_reference.points_for(ROWS[:, 0], ROWS[:, 1], 1e-2)
    assert len(set(points.tolist())) == len(ROWS)  # each row alone in its batch: comparable to a direct solve
    store = ReferenceStore(BURGERS_FAMILY, tolerance=1e-2, directory=tmp_path)
    first = store(np.concatenate([ROWS, ROWS[:1]]))  # a row asked twice is solved once
    assert (store.stats.solved, store.stats.cached) == (3, 0)
    want = np.stack([solve_reference_batch(m[None], x, t, family=BURGERS_FAMILY, tolerance=1e-2)[0] for m in ROWS])
    np.testing.assert_allclose(first[:3], want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(first[3], first[0])
    again = ReferenceStore(BURGERS_FAMILY, tolerance=1e-2, directory=tmp_path)  # a later step, or build
    np.testing.assert_array_equal(again(ROWS[::-1]), first[:3][::-1])
    assert (again.stats.solved, again.stats.cached) == (0, 3)
    # another tolerance asks other points for the sharper rows: other files; a row that gets the
    # same points (the floor of 256 at β = 1, ν = 1e-2) is the same solve, and shares its file
    finer = ReferenceStore(BURGERS_FAMILY, tolerance=1e-4, directory=tmp_path)
    same = finer.resolution(ROWS)[1] == points
    assert same.tolist() == [True, False, False]
    assert [a == b for a, b in zip(finer.paths(ROWS), store.paths(ROWS))] == same.tolist()
    assert len(list(tmp_path.glob("*.npy"))) == 3 and not list(tmp_path.glob(".*"))


def test_rows_beyond_the_domain_are_drawn_where_the_reference_is_affordable():
    domain = BURGERS_FAMILY.domains["burgers"]
    store = size_for(BURGERS_FAMILY).references(BURGERS_FAMILY)
    assert store.max_points is not None and store.directory is None  # no cache directory given: none
    free = extrapolation_set(domain, 24)
    kept = extrapolation_set(domain, 24, admissible=store.affordable)
    assert not store.affordable(free).all()  # ν → 0 needs more points than any build can pay
    assert len(kept) == 24 and store.affordable(kept).all()
    np.testing.assert_array_equal(extrapolation_set(domain, 24, admissible=lambda m: np.ones(len(m), bool)), free)


def test_the_build_sizes_differ_from_the_shipped_ones_for_burgers_only():
    assert size_for("cdr") == size_for("convection") == size_for("allen_cahn") == BuildSize()
    assert BuildSize().served_target == TARGET
    burgers = size_for(BURGERS_FAMILY)
    assert burgers.reference_tolerance == 1e-4 and burgers.reference_cache
    # the counts are the shipped ones: the cost is paid by the tolerance and the cache
    assert (burgers.grid_sets, burgers.validation, burgers.calibration) == (64, 48, BuildSize().calibration)
    # the band's rows need at most 12288 points at the tolerance, within the extrapolation cap
    corner = shock_reference.points_for(3.0, 1e-3, burgers.reference_tolerance)
    assert corner == 12288 <= burgers.reference_max_points
