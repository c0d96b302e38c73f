"""Whole-domain accuracy sweep, the library: the error over a dense grid of a model's domain,
faces and corners included, for the hypernetwork alone, after the fast phase and corrected,
against the reference solver; the error estimate beside the true error.

The grid is ``Domain.grid(per_axis)`` over the active parameters (ends included, so every
face, edge and corner is on it), plus the low-ν band where the domain's ν goes down to 0.
Errors are relative L2 on the standard 256×100 grid. Parameter arrays are (G, p) with the
columns in the domain's ``params`` order (the family's).

- the answers per parameter row (``fastlrnr.training.row_answers``: :func:`solve_rows` →
  :class:`RowAnswers`);
- :func:`sweep_artifact` sweeps a shipped model → :class:`ArtifactSweep` (the rows, the
  served answer and its estimate, the extrapolation band, :class:`SweepQuality`);
- :func:`served_box` finds the served domain of a sweep's errors.

The markdown report, the heat maps and the command line are in ``fastlrnr.training.sweep_report``;
``python -m fastlrnr.training.sweep_report`` runs that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path

import numpy as np

from fastlrnr.numerics.error_estimate import estimate_quality, spearman
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseSettings
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.training.row_answers import RowAnswers, corrected_errors, fields, solve_rows

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PER_AXIS = {1: 39, 2: 11, 3: 6}  # points per active parameter, by number of active parameters
TARGET = 0.02  # the worst relative L2 error a served answer may have
COVERED_ABOVE = 1e-3  # every served answer whose error is above this must be covered by its estimate


# ---------------------------------------------------------------------- grids and fields


def sweep_parameters(domain: Domain, per_axis: int | None = None) -> np.ndarray:
    """(G, p) tensor grid over the active parameters of ``domain``, ends included."""
    return domain.grid(per_axis or DEFAULT_PER_AXIS[len(domain.active)])


def band_parameters(domain: Domain, family: PdeFamily, per_axis: int = 4) -> np.ndarray:
    """(G, p) points of the family's hard band (its parameter at ``sweep_values``) on a per_axis
    grid of the other active parameters (fixed ones at their value); (0, p) when ``domain``
    does not reach the band."""
    band = family.hard_band_of(domain)
    if band is None:
        return np.empty((0, len(domain.params)))
    axes = [
        np.array(band.sweep_values)
        if k == band.param
        else np.linspace(*domain.bounds[k], per_axis)
        if k in domain.active
        else np.array([domain.bounds[k][0]])
        for k in domain.params
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


@dataclass(frozen=True)
class ErrorSummary:
    """Relative L2 errors of n answers: median, worst, mean, and the share above ``target``."""

    median: float
    worst: float
    mean: float
    frac_above_target: float
    n: int
    target: float = TARGET

    @classmethod
    def of(cls, err: np.ndarray, target: float = TARGET) -> ErrorSummary:
        """The summary of errors err (n,)."""
        return cls(
            float(np.median(err)),
            float(err.max()),
            float(err.mean()),
            float(np.mean(err > target)),
            int(err.size),
            target,
        )

    def to_dict(self) -> dict:
        """{median, worst, mean, frac_above_<target in %>pct, n}: what manifests and reports record."""
        return {
            "median": self.median,
            "worst": self.worst,
            "mean": self.mean,
            f"frac_above_{100 * self.target:g}pct": self.frac_above_target,
            "n": self.n,
        }


def summary(err: np.ndarray, target: float = TARGET) -> dict:
    """``ErrorSummary.of(err, target).to_dict()``."""
    return ErrorSummary.of(err, target).to_dict()


@dataclass(frozen=True)
class EstimateQuality:
    """How an error estimate fares against the true errors of n answers
    (``fastlrnr.numerics.error_estimate.estimate_quality``): Spearman, the share with true ≤ estimate
    (``covered``) and with true ≤ estimate ≤ 5× true, the median of estimate / true."""

    n: int
    spearman: float
    covered: float
    within_1_to_5x: float
    median_ratio: float

    @classmethod
    def of(cls, estimate: np.ndarray, error: np.ndarray) -> EstimateQuality:
        return cls(**estimate_quality(estimate, error, factor=5.0))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Regions:
    """Boolean masks (G,) over a sweep's rows: an active parameter at a bound, the rest, and
    the family's hard band (None where the domain does not reach it)."""

    faces_and_corners: np.ndarray
    interior: np.ndarray
    hard_band: np.ndarray | None = None

    def named(self) -> dict[str, np.ndarray]:
        """{region name: mask} of the regions present, in the order above."""
        masks = {f.name: getattr(self, f.name) for f in dataclass_fields(self)}
        return {k: m for k, m in masks.items() if m is not None}


def regions(domain: Domain, family: PdeFamily, mus: np.ndarray) -> Regions:
    """The regions of rows mus (G, p) of ``domain`` (a domain of ``family``)."""
    at_bound = np.zeros(len(mus), dtype=bool)
    for k in domain.active:
        i = domain.params.index(k)
        at_bound |= np.isclose(mus[:, i], domain.bounds[k][0]) | np.isclose(mus[:, i], domain.bounds[k][1])
    band = family.hard_band_of(domain)
    hard = band.contains(domain, mus) if band is not None else None
    return Regions(at_bound, ~at_bound, hard)


# ---------------------------------------------------------------------- the served domain


def served_box(domain: Domain, mus: np.ndarray, err: np.ndarray, target: float = TARGET) -> Domain:
    """The largest box of sweep grid points (found greedily) whose errors are all ≤ target.

    Starting from the whole grid, while a point in the box fails, drop the outermost slab
    (one grid layer at one end of one active axis) holding the largest share of failing
    points; on a tie, the thinner slab. The result is a Domain named like ``domain``, over
    its parameters."""
    active = [domain.params.index(k) for k in domain.active]
    axes = [np.unique(mus[:, i]) for i in active]
    lo = [0] * len(active)
    hi = [len(a) - 1 for a in axes]
    while True:
        inside = (
            np.all(
                [
                    (mus[:, i] >= axes[j][lo[j]] - 1e-12) & (mus[:, i] <= axes[j][hi[j]] + 1e-12)
                    for j, i in enumerate(active)
                ],
                axis=0,
            )
            if active
            else np.ones(len(mus), bool)
        )
        bad = inside & (err > target)
        if not bad.any():
            break
        best, best_key = None, None
        for j, i in enumerate(active):
            if lo[j] == hi[j]:
                continue
            for end, idx in (("lo", lo[j]), ("hi", hi[j])):
                slab = inside & np.isclose(mus[:, i], axes[j][idx])
                key = (bad[slab].sum() / max(1, slab.sum()), -slab.sum())
                if best_key is None or key > best_key:
                    best, best_key = (j, end), key
        if best is None:
            raise ValueError(
                f"no point of the sweep meets the target {target:g}: the smallest error is {err.min():.3g} at "
                f"{dict(zip(domain.params, mus[np.argmin(err)].tolist()))}"
            )
        j, end = best
        if end == "lo":
            lo[j] += 1
        else:
            hi[j] -= 1
    bounds = dict(domain.bounds)
    for j, i in enumerate(active):
        bounds[domain.params[i]] = (float(axes[j][lo[j]]), float(axes[j][hi[j]]))
    description = f"served: sweep errors after the fast phase ≤ {100 * target:g}%"
    return Domain(domain.name, bounds, domain.params, description)


# ---------------------------------------------------------------------- a shipped model


@dataclass(frozen=True, eq=False)
class ExtrapolationBand:
    """Points beyond the served domain (``fastlrnr.training.calibrate.extrapolation_set``), answered as
    the service does there (hypernetwork + correction): mus (E, p), relative L2 errors (E,) and
    the widened estimate (E,) (the correction's estimate × the manifest's extrapolation factor)."""

    mus: np.ndarray
    err: np.ndarray
    estimate: np.ndarray


@dataclass(frozen=True)
class SweepQuality:
    """The numbers of a model's sweep. Error summaries: the hypernetwork alone, after the fast
    phase, the fast phase's and the hypernetwork's coefficients corrected, the served answer
    (everywhere, and in the served domain), the extrapolation band. ``accepted``: the share of
    rows whose fast-phase update was kept; ``ms_median``: the median fast-phase time per row
    (ms). The served answer's estimate against its true error everywhere, in the served domain
    and per region (``Regions`` names, then "extrapolation_band"); whether every served answer
    above ``COVERED_ABOVE`` is covered; how the fast phase's check quantities (error proxy, RMS
    residual) rank its true errors (Spearman)."""

    hyper: ErrorSummary
    fast: ErrorSummary
    fast_corrected: ErrorSummary
    hyper_corrected: ErrorSummary
    served: ErrorSummary
    served_in_served_domain: ErrorSummary
    extrapolation: ErrorSummary
    accepted: float
    ms_median: float
    estimate: EstimateQuality
    estimate_in_served_domain: EstimateQuality
    estimate_by_region: dict[str, EstimateQuality]
    large_errors_covered: bool
    proxy_spearman: float
    rms_spearman: float


@dataclass(frozen=True, eq=False)
class ArtifactSweep:
    """The sweep of one shipped model. Rows: the tensor grid (the first ``n_grid``), then the
    low-ν band. ``served_err`` (G,): the error of the answer the service gives by default
    (``corrected``: the hypernetwork's coefficients corrected, without the fast phase; else the
    fast phase's); ``estimate`` (G,): that answer's error estimate. ``family`` is the model's
    PDE family, ``domain`` its training domain (what was swept), ``served_domain`` the
    manifest's; ``settings`` the fast phase's default; ``per_axis`` the tensor grid's points
    per active parameter."""

    model: str
    family: PdeFamily
    domain: Domain
    served_domain: Domain
    settings: FastPhaseSettings
    corrected: bool
    per_axis: int
    n_grid: int
    rows: RowAnswers
    served_err: np.ndarray
    estimate: np.ndarray
    extrapolation: ExtrapolationBand
    quality: SweepQuality

    @property
    def mus(self) -> np.ndarray:
        """(G, p) the swept parameter rows."""
        return self.rows.mus

    @property
    def band_points(self) -> int:
        """Rows of the low-ν band (after the tensor grid)."""
        return len(self.mus) - self.n_grid


def sweep_artifact(
    name: str,
    per_axis: int | None = None,
    root: Path = ROOT / "artifacts",
    band_per_axis: int = 4,
    extrapolation_points: int = 24,
    reference_cache: Path | None = None,
) -> ArtifactSweep:
    """Sweep the model ``root/name``: the tensor grid plus the low-ν band, the hypernetwork,
    its fast phase and the corrected answers; the served answer is the service's default (the
    hypernetwork's coefficients corrected, when the model corrects by default: the fast phase
    does not run then; else the fast phase's). Also the extrapolation band (points beyond the
    served domain, corrected, estimate widened). ``band_per_axis``: the low-ν band's points
    per other active parameter; ``extrapolation_points``: the extrapolation band's size (the
    defaults are docs/sweep.md's; smaller ones make a quick check). The references are the
    family's build's (``build_size.size_for``: burgers at 1e-4, the band beyond the served
    domain where they are affordable), kept in ``reference_cache`` where that build keeps them."""
    from fastlrnr.numerics.artifact import load_artifact
    from fastlrnr.training.build_size import size_for
    from fastlrnr.training.calibrate import extrapolation_set

    art = load_artifact(root / name)
    family, domain, served, settings, spec = art.family, art.domain, art.served_domain, art.fast_phase, art.correction
    references = size_for(family).references(family, reference_cache)
    affordable = references.affordable if references.max_points is not None else None
    grid = sweep_parameters(domain, per_axis)
    mus = np.concatenate([grid, band_parameters(domain, family, band_per_axis)])
    correction = art.correction_model()
    rows = solve_rows(
        art.lrnr,
        art.hyper,
        art.fast_phase_model(),
        settings,
        mus,
        references(mus),
        correction=correction,
        family=family,
    )
    if spec.default:
        served_err, estimate = rows.err_hyper_corrected, spec.error_model.predict(rows.d_hyper, mus)
    else:
        served_err, estimate = rows.err_fast, art.error_model.predict(rows.proxy_fast, mus)
    ext = extrapolation_set(served, extrapolation_points, seed=11, admissible=affordable, trained=domain)
    S_ext = hyper_rows(art.hyper, ext)
    ext_err, ext_d = corrected_errors(correction, S_ext, ext, fields(art.lrnr, S_ext, family=family), references(ext))
    factor = float(art.manifest["correction"].get("extrapolation_factor", 10.0))
    band = ExtrapolationBand(ext, ext_err, spec.error_model.predict(ext_d, ext) * factor)
    inside = served.contains(mus)
    by_region = {
        k: EstimateQuality.of(estimate[m], served_err[m]) for k, m in regions(domain, family, mus).named().items()
    }
    by_region["extrapolation_band"] = EstimateQuality.of(band.estimate, band.err)
    above = served_err > COVERED_ABOVE
    quality = SweepQuality(
        hyper=ErrorSummary.of(rows.err_hyper),
        fast=ErrorSummary.of(rows.err_fast),
        fast_corrected=ErrorSummary.of(rows.err_corrected),
        hyper_corrected=ErrorSummary.of(rows.err_hyper_corrected),
        served=ErrorSummary.of(served_err),
        served_in_served_domain=ErrorSummary.of(served_err[inside]),
        extrapolation=ErrorSummary.of(band.err),
        accepted=float(rows.accepted.mean()),
        ms_median=float(np.median(rows.ms_fast)),
        estimate=EstimateQuality.of(estimate, served_err),
        estimate_in_served_domain=EstimateQuality.of(estimate[inside], served_err[inside]),
        estimate_by_region=by_region,
        large_errors_covered=bool(np.all(estimate[above] >= served_err[above])),
        proxy_spearman=spearman(rows.proxy_fast, rows.err_fast),
        rms_spearman=spearman(rows.rms_fast, rows.err_fast),
    )
    return ArtifactSweep(
        model=name,
        family=family,
        domain=domain,
        served_domain=served,
        settings=settings,
        corrected=spec.default,
        per_axis=per_axis or DEFAULT_PER_AXIS[len(domain.active)],
        n_grid=len(grid),
        rows=rows,
        served_err=served_err,
        estimate=estimate,
        extrapolation=band,
        quality=quality,
    )
