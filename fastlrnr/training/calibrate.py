"""Calibrate an artifact's error estimates and escalation rungs: ``calibrate`` returns the
manifest's ``correction`` and ``error_estimate`` sections; it writes nothing. The build puts
them into the artifact it publishes (once); the command line republishes an existing
artifact with them (atomically, every other file and section unchanged):

    python -m fastlrnr.training.calibrate artifacts/cdr            # republishes artifacts/cdr
    python -m fastlrnr.training.calibrate artifacts/cdr --dry-run  # prints the figures only

at the family's sizes and against its reference as its build does (``build_size.size_for``;
``--reference-cache``: the build's cache of reference fields, RUN/reference_cache).

What it sets (docs/method.md, "Error estimates" and "Escalation"):

- ``correction``: Newton's iteration on the error equation, the corrected rungs (substeps
  of the error equation on the correction grid, cheapest first) and, per rung, the error
  model of its two-grid difference, fitted at ``COVERAGE`` on a calibration set that is dense
  where the answers are worst (every face and corner of the domain's tensor grid, a low-ν
  band, random interior points) and validated on held-out points (published in the manifest);
  the factor by which an estimate is widened outside the served domain, measured on points
  of the extrapolation band.
- ``error_estimate``: the error model of uncorrected fast-phase answers refitted at the same
  coverage; the a-priori error map of the hypernetwork's answers (``fastlrnr.numerics.error_estimate``).

Errors are relative L2 on the standard 256×100 grid against the reference solver; the
corrected fields use the float32 LRNR pass the service uses.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import Artifact, load_artifact, republish
from fastlrnr.numerics.correction import CorrectionSpec, ErrorCorrection
from fastlrnr.numerics.error_estimate import ErrorModel, estimate_quality, fit_apriori_map, fit_error_model
from fastlrnr.numerics.extrapolation_box import KEY as BOX_KEY
from fastlrnr.numerics.extrapolation_box import measured_box, sample_box
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import run_fast_phase
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.numerics.site_envelope import SiteEnvelope, fit_site_envelope
from fastlrnr.training.build_size import PER_AXIS, CalibrationSize, size_for  # noqa: F401 (re-exported)
from fastlrnr.training.reference_store import ReferenceStore
from fastlrnr.training.row_answers import fields, relative_l2

ENVELOPE_COVERAGE = 0.999  # share of held-out sets whose every grid point the site envelope must bound
SITE_COUNTS = (1, 4, 16, 64)  # the site-set sizes the envelope's estimate is checked at
COVERAGE = 0.995  # quantile of the calibration set's log-residuals the offset is set at
RUNGS = (2,)  # substeps of the corrected rungs (more substeps: see docs/method.md, "Escalation")
NEWTON = {"iterations": 4, "tol": 3e-5}  # error after a step ≈ C·increment²: far below the grid's
MIN_FACTOR = 2.0  # the smallest widening of an estimate outside the served domain


def calibration_set(
    domain: Domain, family: PdeFamily, seed: int = 0, size: CalibrationSize = CalibrationSize()
) -> tuple[np.ndarray, int]:
    """(mus (G, p), how many of the first rows are the tensor grid ``domain.grid(per_axis)``);
    then the family's hard band where the domain reaches it, and random sets."""
    rng = np.random.default_rng(seed)
    parts = [domain.grid(size.grid_per_axis(domain))]
    band = family.hard_band_of(domain)
    if band is not None:
        lo, hi = domain.low, domain.high
        names = domain.params
        values = np.array(band.calibration_values)
        axes = [
            np.linspace(lo[i], hi[i], size.band_per_axis) if k != band.param else values for i, k in enumerate(names)
        ]
        mesh = np.meshgrid(*[a if names[i] in domain.active else a[:1] for i, a in enumerate(axes)])
        parts.append(np.stack([m.ravel() for m in mesh], axis=1))
    random = size.random if size.random is not None else (100 if len(domain.active) > 1 else 40)
    parts.append(domain.sample(random, rng))
    return np.concatenate(parts), len(parts[0])


def validation_set(
    domain: Domain, family: PdeFamily, seed: int = 23, size: CalibrationSize = CalibrationSize()
) -> np.ndarray:
    """Held-out points: random over the domain, and random in the family's hard band where the
    domain reaches it."""
    rng = np.random.default_rng(seed)
    count = size.validation if size.validation is not None else (60 if len(domain.active) > 1 else 40)
    parts = [domain.sample(count, rng)]
    band = family.hard_band_of(domain)
    if band is not None:
        rows = domain.sample(size.band, rng)
        rows[:, domain.params.index(band.param)] = rng.uniform(band.low, band.upto, size.band)
        parts.append(rows)
    return np.concatenate(parts)


def extrapolation_set(
    domain: Domain,
    n: int = 24,
    seed: int = 5,
    admissible: Callable[[np.ndarray], np.ndarray] | None = None,
    trained: Domain | None = None,
) -> np.ndarray:
    """Points beyond the served ``domain`` within its extrapolation box
    (``fastlrnr.numerics.extrapolation_box``, the box the manifest stores and the service
    accepts): each row breaks one bound. ``admissible``: rows the reference can afford
    (``ReferenceStore.affordable``; None: all); ``trained``: the trained domain, when a served
    face fixes a parameter it varies (``extrapolation_box.measured_box``)."""
    return sample_box(domain, n, seed, admissible, trained)


def _answers(art, corr: ErrorCorrection, mus: np.ndarray, refs: np.ndarray, chunk: int = 8) -> dict:
    """Per row: hypernetwork error, fast-phase proxy and error, and per rung the two-grid
    difference and the corrected error (hypernetwork coefficients, as served by default)."""
    x, t = standard_grid()
    S = hyper_rows(art.hyper, mus)
    u = fields(art.lrnr, S, family=art.family)
    out = {"err_hyper": relative_l2(u, refs), "e_hyper": u - refs}
    for m in RUNGS:
        out[f"d{m}"], out[f"err{m}"] = np.empty(len(mus)), np.empty(len(mus))
    for lo in range(0, len(mus), chunk):
        sl = slice(lo, lo + chunk)
        p = corr.evaluate(S[sl], mus[sl])
        for m in RUNGS:
            res = corr.solve(p, m)
            out[f"d{m}"][sl] = res.d
            out[f"err{m}"][sl] = relative_l2(u[sl] + res.field.on_axes(x, t), refs[sl])
    fast = art.fast_phase_model(np.float32)
    results = [
        r
        for lo in range(0, len(mus), chunk)
        for r in run_fast_phase(fast, S[lo : lo + chunk], mus[lo : lo + chunk], art.fast_phase)
    ]
    S_fast = np.array([np.concatenate(r.s) for r in results])
    out["proxy_fast"] = np.array([r.proxy_after for r in results])
    out["err_fast"] = relative_l2(fields(art.lrnr, S_fast, family=art.family), refs)
    return out


def _factor(estimate: np.ndarray, error: np.ndarray) -> float:
    """The widening that makes every extrapolated estimate cover its error, with a margin of 2."""
    return float(max(MIN_FACTOR, 2.0 * np.max(error / estimate)))


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` measured: the manifest's new ``correction`` and ``error_estimate``
    sections (checked by the loader's own parsers), the site envelope (whose node values go to
    the artifact's ``envelope.npz``) and the figures behind them (``report``)."""

    correction: dict
    error_estimate: dict
    report: dict
    envelope: SiteEnvelope

    @property
    def extra_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """The optional npz files the calibration adds to the artifact."""
        return {"envelope.npz": self.envelope.to_arrays()}


def calibrate(
    art: Artifact,
    grid: tuple[int, int] | None = None,
    coarse: tuple[int, int] | None = None,
    size: CalibrationSize = CalibrationSize(),
    references: ReferenceStore | None = None,
) -> Calibration:
    """Fit and validate the error models of the loaded artifact ``art``; returns its new
    sections and the figures. ``grid``, ``coarse``: (nx, nt) of the correction and its two-grid
    check (None: the manifest's); ``size``: how many parameter sets (the default is what the
    shipped artifacts used); ``references``: the reference fields (None: solved here, at the
    family's default resolution)."""
    t0 = time.perf_counter()
    domain = art.served_domain
    references = references if references is not None else ReferenceStore(art.family)
    grid, coarse = grid or art.correction.grid, coarse or art.correction.coarse
    corr = ErrorCorrection(art.lrnr, grid, coarse, np.float32, RUNGS[0], **NEWTON, family=art.family)
    cal_mu, n_grid = calibration_set(domain, art.family, size=size)
    affordable = references.affordable if references.max_points is not None else None
    val_mu = validation_set(domain, art.family, size=size)
    ext_mu = extrapolation_set(domain, size.extrapolation, admissible=affordable, trained=art.domain)
    check_mu = validation_set(domain, art.family, seed=41, size=size)  # held out from everything else
    everything = np.concatenate([cal_mu, val_mu, ext_mu, check_mu])
    refs = references(everything)
    ans = _answers(art, corr, everything, refs)
    cal = slice(0, len(cal_mu))
    val = slice(len(cal_mu), len(cal_mu) + len(val_mu))
    ext = slice(len(cal_mu) + len(val_mu), len(cal_mu) + len(val_mu) + len(ext_mu))
    chk = slice(ext.stop, None)
    report: dict = {"calibration_points": len(cal_mu), "validation_points": len(val_mu), "rungs": []}

    rungs = []
    for m in RUNGS:
        model = fit_error_model(ans[f"d{m}"][cal], cal_mu, ans[f"err{m}"][cal], domain, COVERAGE)
        q_cal = estimate_quality(model.predict(ans[f"d{m}"][cal], cal_mu), ans[f"err{m}"][cal])
        q_val = estimate_quality(model.predict(ans[f"d{m}"][val], val_mu), ans[f"err{m}"][val])
        factor = _factor(model.predict(ans[f"d{m}"][ext], ext_mu), ans[f"err{m}"][ext])
        rungs.append({"substeps": m, "error_model": model.to_dict()})
        report["rungs"].append(
            {
                "substeps": m,
                "error_median": float(np.median(ans[f"err{m}"][: len(cal_mu) + len(val_mu)])),
                "error_worst": float(np.max(ans[f"err{m}"][: len(cal_mu) + len(val_mu)])),
                "quality_calibration": q_cal,
                "quality_validation": q_val,
                "extrapolation_factor": factor,
            }
        )
    fast_model = fit_error_model(ans["proxy_fast"][cal], cal_mu, ans["err_fast"][cal], domain, COVERAGE)
    fast_val = estimate_quality(fast_model.predict(ans["proxy_fast"][val], val_mu), ans["err_fast"][val])
    fast_factor = _factor(fast_model.predict(ans["proxy_fast"][ext], ext_mu), ans["err_fast"][ext])
    # the a-priori map: nodes from the tensor grid, its margin from the calibration set's other rows
    bare = fit_apriori_map(domain, size.grid_per_axis(domain), ans["err_hyper"][:n_grid], cal_mu[:0], cal_mu[:0, 0])
    rest = slice(n_grid, len(cal_mu))
    a_priori = fit_apriori_map(
        domain, size.grid_per_axis(domain), ans["err_hyper"][:n_grid], cal_mu[rest], ans["err_hyper"][rest], 0.99
    )
    apriori_factor = _factor(bare.predict(ext_mu) / bare.extrapolation_factor, ans["err_hyper"][ext])
    a_priori = type(a_priori)(a_priori.axes, a_priori.log_error, a_priori.offset, apriori_factor)
    apriori_val = estimate_quality(a_priori.predict(val_mu), ans["err_hyper"][val])
    # the site envelope: nodes from the tensor grid, its margin from the validation set, checked on
    # a third set at random site sets of 1 to 64 sites
    envelope = fit_site_envelope(
        domain,
        size.grid_per_axis(domain),
        ans["e_hyper"][:n_grid],
        val_mu,
        ans["e_hyper"][val],
        ENVELOPE_COVERAGE,
        extrapolation_factor=apriori_factor,
    )
    envelope_check = site_coverage(envelope, check_mu, ans["e_hyper"][chk], refs[chk])
    report.update(
        {
            "fast_phase_estimate": {"quality_validation": fast_val, "extrapolation_factor": fast_factor},
            "a_priori": {
                "offset": a_priori.offset,
                "quality_validation": apriori_val,
                "extrapolation_factor": apriori_factor,
            },
            "seconds": time.perf_counter() - t0,
        }
    )
    c = copy.deepcopy(art.manifest["correction"])
    c.update(
        {
            "nx": grid[0],
            "nt": grid[1],
            "coarse": {"nx": coarse[0], "nt": coarse[1]},
            "substeps": RUNGS[0],
            "newton": dict(NEWTON),
            "rungs": rungs,
            "error_model": rungs[0]["error_model"],
            "extrapolation_factor": report["rungs"][0]["extrapolation_factor"],
            "calibration": f"{len(cal_mu)} sets (the tensor grid's faces and corners, the family's hard band, "
            f"random interior points), hypernetwork coefficients, coverage {COVERAGE}",
            "quality_sweep": report["rungs"][0]["quality_calibration"],
            "quality_validation": report["rungs"][0]["quality_validation"],
            "rungs_measured": report["rungs"],
        }
    )
    if affordable is not None:
        c["extrapolation_band"] = (
            f"{len(ext_mu)} rows one domain width beyond the served domain's bounds, kept only where the "
            f"reference needs at most {references.max_points} points (the rest of the band is not measured)"
        )
    CorrectionSpec.from_dict(c)  # the loader's own checks
    e = copy.deepcopy(art.manifest["error_estimate"])
    e.update(
        {
            "model": fast_model.to_dict(),
            "extrapolation_factor": fast_factor,
            "quality_validation": fast_val,
            "a_priori": a_priori.to_dict(),
            "a_priori_quality_validation": apriori_val,
            "site_envelope": envelope.to_dict(),
            "site_envelope_check": envelope_check,
            BOX_KEY: measured_box(domain, art.domain).to_dict(),  # where the extrapolation factors were measured
        }
    )
    ErrorModel.from_dict(e["model"])
    report["site_envelope"] = {"offset": envelope.offset, "check": envelope_check}
    return Calibration(correction=c, error_estimate=e, report=report, envelope=envelope)


def site_coverage(
    envelope: SiteEnvelope,
    mus: np.ndarray,
    errors: np.ndarray,
    refs: np.ndarray,
    sites: tuple[int, ...] = SITE_COUNTS,
    sets: int = 25,
    seed: int = 13,
) -> dict:
    """How often the envelope's relative estimate at random site sets covers the true relative
    error at them: per number of sites, {"covered", "site_sets", "median_ratio"} over ``sets``
    site sets (points of the standard grid) for each of the rows mus (H, p) with errors and
    reference fields (H, 100, 256)."""
    rng = np.random.default_rng(seed)
    X, T = np.meshgrid(*standard_grid())
    H = len(mus)
    out = {}
    for P in sites:
        covered, ratios = [], []
        for _ in range(sets):
            it, ix = rng.integers(0, T.shape[0], (H, P)), rng.integers(0, T.shape[1], (H, P))
            rows = np.arange(H)[:, None]
            e, ref = errors[rows, it, ix], refs[rows, it, ix]
            est = envelope.estimate(mus, X[it, ix], T[it, ix], ref + e)
            true = np.linalg.norm(e, axis=1) / np.linalg.norm(ref, axis=1)
            covered.append(est >= true)
            ratios.append(est[true > 0] / true[true > 0])
        r = np.concatenate(ratios)
        out[str(P)] = {
            "site_sets": int(H * sets),
            "covered": float(np.mean(covered)),
            "median_ratio": float(np.median(r[np.isfinite(r)])) if np.any(np.isfinite(r)) else None,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--dry-run", action="store_true", help="print the figures, change nothing")
    ap.add_argument("--grid", type=_nxnt, help="correction grid NXxNT (default: the manifest's)")
    ap.add_argument("--coarse", type=_nxnt, help="its two-grid check NXxNT (default: the manifest's)")
    ap.add_argument(
        "--reference-cache",
        type=Path,
        help="where a family whose build keeps its reference fields keeps them (the build's: RUN/reference_cache)",
    )
    args = ap.parse_args(argv)
    art = load_artifact(args.artifact)
    size = size_for(art.family)  # the family's sizes and reference, as its build calibrates
    cal = calibrate(art, args.grid, args.coarse, size.calibration, size.references(art.family, args.reference_cache))
    if not args.dry_run:
        republish(art, extra_arrays=cal.extra_arrays, correction=cal.correction, error_estimate=cal.error_estimate)
    print(json.dumps(cal.report, indent=1))


def _nxnt(text: str) -> tuple[int, int]:
    nx, nt = text.lower().split("x")
    return int(nx), int(nt)


if __name__ == "__main__":
    main()
