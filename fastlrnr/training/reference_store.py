"""The reference fields a build measures against, solved once and shared by its steps.

An artifact build compares the model with the reference solver on the standard 256×100 grid
in every measuring step (the check grid, the correction grid, the backend choice, the sweep,
the calibration). For the families whose reference costs ~0.1 s a row that is cheap; for
burgers a row near ν = 1e-3 costs seconds (``fastlrnr.numerics.shock_reference``: ∝ β n²), and
the build's thousand rows add up to most of its time. :class:`ReferenceStore` is what the
steps call instead of ``row_answers.reference_fields``:

- ``tolerance``: the accuracy the family's resolution rule is asked for
  (``PdeFamily.reference_resolution``; None: its default). A build measures errors to a
  relative precision, not to the reference's best: the served target is 1e-2, and an
  estimate must cover errors ≥ 1e-3 (``sweep.COVERED_ABOVE``), so a reference good to 1e-4
  measures them to 10 %.
- ``directory``: a cache on disk, one ``.npy`` per row, keyed by the family, the row's
  parameters (bit for bit), its resolution (substeps, points) and the grid. Rows already
  there are read, not solved: steps that measure the same rows share them, and an interrupted
  or repeated build resumes where it was (the rows are written as they are solved). None: no
  cache, every call solves its rows in one batch, exactly as ``reference_fields`` does (the
  Strang solver's results depend, at the rounding level, on which rows share a batch; the
  builds of cdr, convection and allen_cahn keep their numbers).
- ``max_points``: the most internal points a row may need (``affordable``): where a step
  draws rows beyond the domain (the calibration's extrapolation band), it keeps those whose
  reference is affordable (None: all).

It counts what it did (``stats``, ``report``), so a build says where its time went.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import solve_reference_batch
from fastlrnr.training.row_answers import reference_fields

CACHE_VERSION = 1  # part of every key: bump when the solver's results change
CHUNK = 8  # rows solved together (rows of equal points share FFTs; bounds the memory)


@dataclass
class StoreStats:
    """What a store did: rows asked for, rows read from the cache, rows solved and the
    seconds the solves took."""

    asked: int = 0
    cached: int = 0
    solved: int = 0
    solve_s: float = 0.0

    def since(self, earlier: StoreStats) -> StoreStats:
        return StoreStats(
            self.asked - earlier.asked,
            self.cached - earlier.cached,
            self.solved - earlier.solved,
            self.solve_s - earlier.solve_s,
        )

    def copy(self) -> StoreStats:
        return StoreStats(self.asked, self.cached, self.solved, self.solve_s)

    def __str__(self) -> str:
        solved = f"{self.solved} solved in {self.solve_s:.1f} s"
        return f"{self.asked} reference rows: {self.cached} from the cache, {solved}"


@dataclass
class ReferenceStore:
    """Reference fields (G, nt, nx) on the standard grid for parameter rows mus (G, p) of
    ``family``: ``store(mus)``. See the module docstring for ``tolerance``, ``directory`` and
    ``max_points``."""

    family: PdeFamily
    tolerance: float | None = None
    directory: Path | None = None
    max_points: int | None = None
    stats: StoreStats = field(default_factory=StoreStats)

    def __post_init__(self) -> None:
        if self.directory is not None:
            self.directory = Path(self.directory)
            self.directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, mus: np.ndarray) -> np.ndarray:
        mus = np.asarray(mus, dtype=np.float64)
        self.stats.asked += len(mus)
        if self.directory is None:
            t0 = time.perf_counter()
            if self.tolerance is None:
                out = reference_fields(mus, self.family)
            else:
                x, t = standard_grid()
                out = solve_reference_batch(mus, x, t, family=self.family, tolerance=self.tolerance)
            self.stats.solved += len(mus)
            self.stats.solve_s += time.perf_counter() - t0
            return out
        x, t = standard_grid()
        out = np.empty((len(mus), t.size, x.size))
        paths = self.paths(mus)
        missing = []
        for i, path in enumerate(paths):
            if path.exists():
                out[i] = np.load(path, allow_pickle=False)
                self.stats.cached += 1
            else:
                missing.append(i)
        # the cheapest rows first, rows of equal points together, by β within them (a batch
        # marches at the steps of its largest β)
        points = self.resolution(mus)[1]
        missing.sort(key=lambda i: (points[i], tuple(mus[i])))
        done: dict[Path, int] = {}
        for lo in range(0, len(missing), CHUNK):
            rows, seen = [], set(done)
            for i in missing[lo : lo + CHUNK]:  # a row asked twice is solved once
                if paths[i] not in seen:
                    rows.append(i)
                    seen.add(paths[i])
            if rows:
                t0 = time.perf_counter()
                fields = solve_reference_batch(mus[rows], x, t, family=self.family, tolerance=self.tolerance)
                self.stats.solve_s += time.perf_counter() - t0
                self.stats.solved += len(rows)
                for i, u in zip(rows, fields):
                    out[i] = u
                    _save(paths[i], u)
                    done[paths[i]] = i
            for i in missing[lo : lo + CHUNK]:
                out[i] = out[done[paths[i]]]
        return out

    def resolution(self, mus: np.ndarray) -> tuple[int, np.ndarray]:
        """(substeps, points per row) of the reference at this store's tolerance."""
        return self.family.reference_resolution(np.asarray(mus, dtype=np.float64), self.tolerance)

    def affordable(self, mus: np.ndarray) -> np.ndarray:
        """(G,) bool: rows whose reference needs at most ``max_points`` points."""
        mus = np.asarray(mus, dtype=np.float64)
        if self.max_points is None:
            return np.ones(len(mus), dtype=bool)
        return self.resolution(mus)[1] <= self.max_points

    def paths(self, mus: np.ndarray) -> list[Path]:
        """The cache file of each row (under ``directory``)."""
        x, t = standard_grid()
        substeps, points = self.resolution(mus)
        names = []
        for row, n in zip(np.asarray(mus, dtype=np.float64), points):
            key = "|".join(
                [
                    f"v{CACHE_VERSION}",
                    self.family.name,
                    ",".join(float(v).hex() for v in row),
                    f"substeps={int(substeps)}",
                    f"points={int(n)}",
                    f"grid={x.size}x{t.size}",
                ]
            )
            names.append(self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy")
        return names

    def describe(self) -> dict:
        """What the manifest records of the references a build measured against."""
        return {
            "grid": "standard 256x100",
            "tolerance": self.tolerance,
            "resolution": "the family's default" if self.tolerance is None else "the family's rule at the tolerance",
            "max_points": self.max_points,
        }

    def report(self) -> str:
        return str(self.stats)


def _save(path: Path, u: np.ndarray) -> None:
    """Write one row atomically (a killed build leaves no torn file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, u, allow_pickle=False)
    os.replace(tmp, path)
