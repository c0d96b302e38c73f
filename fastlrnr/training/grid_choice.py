"""The grids an artifact build measures and chooses: the error proxy's check grid
(``choose_check_grid``) and the correction grid (``correction_grids``, its points in x from
``choose_correction_nx``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from fastlrnr.numerics.correction import ErrorCorrection
from fastlrnr.numerics.error_estimate import spearman
from fastlrnr.numerics.error_proxy import ErrorProxy
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.hypernet import HyperWeights, hyper_rows
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.training.calibrate import NEWTON, RUNGS
from fastlrnr.training.row_answers import corrected_errors, fields, relative_l2


class ModelParts(Protocol):
    """What the choice of the correction grid reads of a training run (``build_steps.Run``):
    ``references`` gives the reference fields (G, nt, nx) on the standard grid of rows (G, p)."""

    lrnr: LRNRWeights
    hyper: HyperWeights
    domain: Domain
    family: PdeFamily
    references: Callable[[np.ndarray], np.ndarray]


CHECK_GRIDS = ((16, 17), (16, 33), (32, 33), (32, 65))  # (nx, nt) of the error proxy, cheapest first
CHECK_SPEARMAN = 0.98  # the cheapest grid whose proxy ranks the true errors this well is shipped

CORRECTION_NX = (32, 64, 128)  # candidate points in x of the correction grid, cheapest first


def correction_grids(
    domain: Domain, family: PdeFamily, nx: int = CORRECTION_NX[0]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(nx, nt) of the correction grid and of its two-grid check (same x, every other time).

    The LRNR's residual is sampled at nt times and interpolated cubically in between: waves
    that travel far (convection speed |a_x| = |β| up to 20 for convection: 0.13% worst on
    32 × 33, 0.021% on 32 × 65) need more samples than cdr's |β| ≤ 3; a transport term b u u_x
    travels at |a_x + b u|, bounded here by |a_x| + |b| max|u0| (Burgers: up to 2β = 6). ``nx``:
    see ``choose_correction_nx``."""
    corners = np.stack([domain.low, domain.high])  # the speeds are linear in the parameters
    cols = family.columns(corners, 1)
    u0_max = float(np.max(np.abs(family.initial_condition(np.linspace(0.0, 2.0 * np.pi, 257)))))
    speed = float(
        np.max(np.abs(family.linear_coefficients(*cols)[0]) + np.abs(family.burgers_coefficient(*cols)) * u0_max)
    )
    nt = 33 if speed <= 5.0 else 65
    return (nx, nt), (nx, (nt - 1) // 2 + 1)


def choose_correction_nx(run: ModelParts, per_axis: int = 3) -> tuple[int, list[dict]]:
    """The correction grid's points in x: the first of ``CORRECTION_NX`` whose correction, on
    the domain's corners, faces and centre (``Domain.grid(per_axis)``), at least quarters the
    hypernetwork's median error and makes at most 10% of those sets > 5% worse. A front sharper
    than the grid (Allen–Cahn at ρ = 5: 32 points make the answer worse, 64 make it 8–15× better)
    needs more points than CDR's smooth solutions. Returns (nx, the measurements)."""
    mus = run.domain.grid(per_axis)
    refs = run.references(mus)
    S = hyper_rows(run.hyper, mus)
    u = fields(run.lrnr, S, family=run.family)
    err_hyper = relative_l2(u, refs)
    rows = []
    for nx in CORRECTION_NX:
        grid, coarse = correction_grids(run.domain, run.family, nx)
        corr = ErrorCorrection(run.lrnr, grid, coarse, np.float32, RUNGS[0], **NEWTON, family=run.family)
        ratio = corrected_errors(corr, S, mus, u, refs)[0] / err_hyper
        rows.append({"nx": nx, "median_ratio": float(np.median(ratio)), "worse": float(np.mean(ratio > 1.05))})
        print(
            f"[5/7] correction nx={nx}: median error ratio to the hypernetwork {rows[-1]['median_ratio']:.3f}, "
            f"{100 * rows[-1]['worse']:.0f}% of {len(mus)} corner/face sets > 5% worse"
        )
        if rows[-1]["median_ratio"] <= 0.25 and rows[-1]["worse"] <= 0.1:
            return nx, rows
    return CORRECTION_NX[-1], rows


def choose_check_grid(
    lrnr, S: np.ndarray, mus: np.ndarray, refs: np.ndarray, family: PdeFamily
) -> tuple[tuple[int, int], list[dict]]:
    """The error proxy's grid: the cheapest of CHECK_GRIDS whose proxy has Spearman ≥
    CHECK_SPEARMAN against the true errors of coefficient rows S (G, P) at mus (G, p) (else
    the best one); returns (nx, nt) and the measurements."""
    err = relative_l2(fields(lrnr, S, family=family), refs)
    rows = []
    for nx, nt in CHECK_GRIDS:
        proxy, _ = ErrorProxy(lrnr, nx, nt, family=family)(S, mus)
        ratio = err / proxy
        rows.append(
            {
                "nx": nx,
                "nt": nt,
                "spearman": spearman(proxy, err),
                "ratio_median": float(np.median(ratio)),
                "ratio_p90_over_p10": float(np.quantile(ratio, 0.9) / np.quantile(ratio, 0.1)),
            }
        )
    good = [r for r in rows if r["spearman"] >= CHECK_SPEARMAN]
    pick = good[0] if good else max(rows, key=lambda r: r["spearman"])
    return (pick["nx"], pick["nt"]), rows
