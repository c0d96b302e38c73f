"""How much an artifact build measures, and against how accurate a reference: the one place
that says it per family (``size_for``; ``BUILD_SIZES``).

``BuildSize`` counts the parameter sets of each measuring step of the build
(``fastlrnr.training.build_steps``) and ``CalibrationSize`` those of the calibration
(``fastlrnr.training.calibrate``); the defaults are what the shipped cdr, convection and
allen_cahn artifacts were built with. The ``reference_*`` fields say what the build measures
against (``fastlrnr.training.reference_store``): the defaults keep the family's own
resolution and solve every step's rows afresh, as those builds always did.

A family whose reference is expensive states its size here. burgers (a row costs ∝ β n², n
by the shock width ν/β: ~8 s at β = 3, ν = 1e-3 for 1e-4, 14 s for the default 1e-5):

- ``reference_tolerance`` 1e-4: errors are claimed from 1e-3 up (the served target 1e-2, the
  estimate's coverage from ``sweep.COVERED_ABOVE`` = 1e-3), so 1e-4 measures them to 10 %;
  it halves the cost at the corner (12288 points against 16384);
- ``reference_cache``: one set of reference fields on disk under the run directory, shared
  by the steps that measure the same rows, and kept for a build that is resumed or repeated
  (an intermediate checkpoint's build fills it for the final one);
- ``reference_max_points`` 16384: the calibration's extrapolation band (one domain width
  beyond each bound, so ν down to 0) keeps only rows whose reference needs at most this many
  points — ν → 0 has no affordable reference (at ν = 1.5e-4 a row needs 65536 points, ~3 min);
  the served domain's own rows (ν ≥ 1e-3) need at most 12288.

The counts are the defaults: the reference's cost is paid by the tolerance and the cache, not
by measuring fewer rows (the claims are quantiles over these sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.training.reference_store import ReferenceStore

PER_AXIS = {1: 39, 2: 11, 3: 6}  # the calibration's tensor grid (faces and corners) by number of active parameters


@dataclass(frozen=True)
class CalibrationSize:
    """How many parameter sets calibrate and validate: ``per_axis`` of the tensor grid (None:
    ``PER_AXIS`` by the number of active parameters), ``random`` interior calibration points,
    ``validation`` random held-out points, ``band`` held-out points in the low-ν band (where
    ν varies down to 0), ``extrapolation`` points beyond the domain, ``band_per_axis`` points
    per other active parameter of the calibration set's part in the family's hard band (None:
    the defaults below, which the shipped artifacts were calibrated with; a smaller size
    serves tests)."""

    per_axis: int | None = None
    random: int | None = None
    validation: int | None = None
    band: int = 40
    extrapolation: int = 24
    band_per_axis: int = 5

    def grid_per_axis(self, domain: Domain) -> int:
        return self.per_axis or PER_AXIS[len(domain.active)]


@dataclass(frozen=True)
class BuildSize:
    """How many parameter sets each measuring step uses, and the reference they are measured
    against. The defaults are what the shipped artifacts were built with; tests build a tiny
    model with a small size.

    grid_sets: about this many hypernetwork sets choose the check grid and feed the EIM;
    sweep_per_axis: the whole-domain sweep's points per active parameter (None: the sweep's
    default); validation: random held-out sets of the first calibration; queries: (uniform,
    hard) held-out queries of the backend choice; correction_per_axis: the tensor grid (corners,
    faces, centre) on which the correction grid's points are chosen
    (``grid_choice.choose_correction_nx``); calibration: step 7's sets; served_target:
    the served domain is the largest box of the sweep whose errors are all at most this
    (``sweep.served_box``; a test's tiny model is served at a looser one).
    reference_tolerance: the reference's accuracy (None: the family's default resolution);
    reference_cache: keep the reference fields in a cache under the run directory, shared by
    the steps (False: each step solves its rows); reference_max_points: rows drawn beyond the
    domain are kept only when their reference needs at most this many points (None: all)."""

    grid_sets: int = 64
    sweep_per_axis: int | None = None
    validation: int = 48
    queries: tuple[int, int] = (16, 8)
    correction_per_axis: int = 3
    calibration: CalibrationSize = CalibrationSize()
    # sweep.TARGET (not imported: the sweep imports the calibration; a test keeps them equal)
    served_target: float = 0.02
    reference_tolerance: float | None = None
    reference_cache: bool = False
    reference_max_points: int | None = None

    def references(self, family: PdeFamily, cache: Path | None = None) -> ReferenceStore:
        """The build's reference fields: a store at this size's tolerance, cached in ``cache``
        when ``reference_cache`` (else none)."""
        return ReferenceStore(
            family,
            tolerance=self.reference_tolerance,
            directory=cache if self.reference_cache else None,
            max_points=self.reference_max_points,
        )


BUILD_SIZES: dict[str, BuildSize] = {
    "burgers": BuildSize(reference_tolerance=1e-4, reference_cache=True, reference_max_points=16384),
}


def size_for(family: PdeFamily | str) -> BuildSize:
    """The build size of a family (by its name): ``BUILD_SIZES``, else the default."""
    return BUILD_SIZES.get(family if isinstance(family, str) else family.name, BuildSize())
