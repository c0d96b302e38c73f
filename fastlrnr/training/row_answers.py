"""Answers per parameter row against the reference solver: the numerics the sweep, the
artifact build, the calibration and the evaluations share.

- :func:`reference_fields` and :func:`fields`: the reference and the LRNR on the standard
  256×100 grid, (G, nt, nx); :func:`hyper_rows`: the hypernetwork's coefficient rows (G, P);
- :func:`relative_l2`: per-row relative L2 errors;
- :func:`solve_rows`: the hypernetwork's, the fast phase's and the corrected answers of rows
  → :class:`RowAnswers`; :func:`corrected_errors`: the correction alone.

Parameter arrays are (G, p) in the family's columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.correction import ErrorCorrection
from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseModel, FastPhaseSettings, run_fast_phase
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.hypernet import HyperWeights, hyper_rows
from fastlrnr.numerics.lrnr import LRNRWeights, lrnr_forward
from fastlrnr.numerics.reference import solve_reference_batch


def reference_fields(mus: np.ndarray, family: PdeFamily) -> np.ndarray:
    """(G, nt, nx) reference solutions of ``family`` on the standard grid for mus (G, p)."""
    x, t = standard_grid()
    return solve_reference_batch(mus, x, t, family=family)


def relative_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(G,) relative L2 errors of fields u against ref, both (G, ...)."""
    d = (u - ref).reshape(len(ref), -1)
    return np.linalg.norm(d, axis=1) / np.linalg.norm(ref.reshape(len(ref), -1), axis=1)


def fields(lrnr: LRNRWeights, S: np.ndarray, chunk: int = 16, *, family: PdeFamily) -> np.ndarray:
    """(G, nt, nx) LRNR fields on the standard grid for coefficient rows S (G, P); u0 is
    ``family``'s initial condition."""
    x, t = standard_grid()
    X, T = np.meshgrid(x, t)
    S = np.atleast_2d(S)
    parts = np.cumsum(lrnr.ranks)[:-1]
    out = np.empty((S.shape[0],) + X.shape)
    for lo in range(0, len(out), chunk):
        s = np.split(S[lo : lo + chunk], parts, axis=1)
        out[lo : lo + chunk] = lrnr_forward(lrnr, s, X.ravel(), T.ravel(), family).reshape(-1, *X.shape)
    return out


# ---------------------------------------------------------------------- answers per row


@dataclass(frozen=True, eq=False)
class RowAnswers:
    """Per parameter row (G rows): the hypernetwork's answer, the fast phase's and the
    corrected ones, as relative L2 errors on the standard grid against the reference.

    ``mus`` (G, p); every other array is (G,) except ``coefficients_fast`` (G, P). The
    corrected errors (``err_hyper_corrected``, ``err_corrected``) and the two-grid differences
    (``d_hyper``, ``d_fast``) are None without a correction; every fast-phase array is None
    when the fast phase did not run."""

    mus: np.ndarray
    err_hyper: np.ndarray
    err_hyper_corrected: np.ndarray | None = None  # the hypernetwork's coefficients, corrected
    d_hyper: np.ndarray | None = None  # their two-grid difference (what the correction's estimate reads)
    coefficients_fast: np.ndarray | None = None  # (G, P) the coefficients after the fast phase
    err_fast: np.ndarray | None = None
    proxy_hyper: np.ndarray | None = None  # the error proxy (fastlrnr.numerics.error_proxy) before the fast phase
    proxy_fast: np.ndarray | None = None  # and after it
    rms_fast: np.ndarray | None = None  # the RMS residual on the check grid after it
    accepted: np.ndarray | None = None  # bool: the fast phase's update was kept
    ms_fast: np.ndarray | None = None  # fast-phase wall time per row, milliseconds (its batch's mean)
    err_corrected: np.ndarray | None = None  # the fast phase's coefficients, corrected
    d_fast: np.ndarray | None = None  # their two-grid difference


def solve_rows(
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    fast: FastPhaseModel | None,
    settings: FastPhaseSettings | None,
    mus: np.ndarray,
    refs: np.ndarray,
    chunk: int = 8,
    correction: ErrorCorrection | None = None,
    *,
    family: PdeFamily,
) -> RowAnswers:
    """Hypernetwork and fast-phase answers for parameter rows mus (G, p) with reference fields
    refs (G, nt, nx): per row the errors, error proxies (``fastlrnr.numerics.error_proxy``), acceptance and
    fast-phase wall time (the fast phase only with ``settings``, in batches of ``chunk``); with
    ``correction`` also the errors of the corrected answers (``fastlrnr.numerics.correction``) and their
    two-grid differences, for the hypernetwork's and the fast phase's coefficients."""
    S_hat = hyper_rows(hyper, mus)
    u_hat = fields(lrnr, S_hat, family=family)
    err_hyper = relative_l2(u_hat, refs)
    hyper_corrected = (None, None)
    if correction is not None:
        hyper_corrected = corrected_errors(correction, S_hat, mus, u_hat, refs)
    if settings is None:
        return RowAnswers(mus, err_hyper, *hyper_corrected)
    served, res_before, res_after, rms_after, accepted, ms = [], [], [], [], [], []
    for lo in range(0, len(mus), chunk):
        t0 = time.perf_counter()
        results = run_fast_phase(fast, S_hat[lo : lo + chunk], mus[lo : lo + chunk], settings)
        per = 1e3 * (time.perf_counter() - t0) / len(results)
        for r in results:
            served.append(np.concatenate(r.s))
            res_before.append(r.proxy_before)
            res_after.append(r.proxy_after)
            rms_after.append(r.residual_after)
            accepted.append(r.accepted)
            ms.append(per)
    S = np.array(served)
    u = fields(lrnr, S, family=family)
    fast_corrected = (None, None)
    if correction is not None:
        fast_corrected = corrected_errors(correction, S, mus, u, refs)
    return RowAnswers(
        mus,
        err_hyper,
        *hyper_corrected,
        coefficients_fast=S,
        err_fast=relative_l2(u, refs),
        proxy_hyper=np.array(res_before),
        proxy_fast=np.array(res_after),
        rms_fast=np.array(rms_after),
        accepted=np.array(accepted),
        ms_fast=np.array(ms),
        err_corrected=fast_corrected[0],
        d_fast=fast_corrected[1],
    )


def corrected_errors(
    correction: ErrorCorrection, S: np.ndarray, mus: np.ndarray, u: np.ndarray, refs: np.ndarray, chunk: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(relative L2 errors (G,) of the corrected fields u + e on the standard grid, two-grid
    differences d (G,)) for coefficient rows S (G, P), fields u (G, nt, nx) and refs."""
    x, t = standard_grid()
    err, d = np.empty(len(S)), np.empty(len(S))
    for lo in range(0, len(S), chunk):
        e, d[lo : lo + chunk] = correction(S[lo : lo + chunk], mus[lo : lo + chunk])
        err[lo : lo + chunk] = relative_l2(u[lo : lo + chunk] + e.on_axes(x, t), refs[lo : lo + chunk])
    return err, d


# ---------------------------------------------------------------------- summaries
