"""The service's answers at a requested tolerance, over each model's whole domain.

    python benchmarks/tolerance_sweep.py                   # both shipped models, 256×100
    python benchmarks/tolerance_sweep.py --models cdr --tolerances 1e-3

For every parameter set of the whole-domain sweep (``fastlrnr.training.sweep``: the tensor grid with
its faces and corners, plus the low-ν band), a default ``/solve`` request — built as the
server builds it (``fastlrnr.server.api.checks.solve_job``) and solved in process, one thread — with no
tolerance and with each ``--tolerances``, against the reference solver on the standard grid.
Printed per tolerance: the share of answers that come back within it, whether every answer
marked within it is (the promise), the worst and median true error, the rungs used, and the
median and 90th-percentile solve time. Not a test: figures for docs/performance.md.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from fastlrnr.server.api import checks
from fastlrnr.server.api.schemas import SolveRequest
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.settings import ServiceSettings
from fastlrnr.training.row_answers import reference_fields, relative_l2
from fastlrnr.training.sweep import band_parameters, sweep_parameters

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, tolerances: list[float | None], per_axis: int | None) -> list[dict]:
    rt = ModelRuntime.load(ROOT / "artifacts" / name, onnx_threads=1, field_threads=1)
    rt.warm()
    served = rt.served  # cdr's and convection's are their trained domains; allen_cahn's leaves out ν < 0.01
    mus = np.concatenate([sweep_parameters(served, per_axis), band_parameters(served, rt.family)])
    refs = reference_fields(mus, rt.family)
    limits = ServiceSettings()
    rows = []
    for tol in tolerances:
        errs, ests, within, rungs, times = [], [], [], Counter(), []
        for mu, ref in zip(mus, refs):
            body = {"model": name, "params": dict(zip(rt.family.params, map(float, mu)))}
            if tol is not None:
                body["tolerance"] = tol
            job = checks.solve_job(rt, SolveRequest.model_validate_json(json.dumps(body)), limits)
            t0 = time.perf_counter()
            res = rt.solve_jobs([job])[0]
            times.append(1e3 * (time.perf_counter() - t0))
            errs.append(float(relative_l2(res.u[:1].astype(np.float64), ref[None])[0]))
            ests.append(float(res.estimate[0]))
            within.append(tol is not None and ests[-1] <= tol)
            rungs[res.rows[0].answer.rung] += 1
        errs, ests, within = np.array(errs), np.array(ests), np.array(within)
        rows.append(
            {
                "model": name,
                "tolerance": tol,
                "n": len(mus),
                "within": float(within.mean()) if tol is not None else None,
                "promise_kept": bool(np.all(errs[within] <= tol)) if tol is not None else None,
                "covered": float(np.mean(ests >= errs)),
                "error_median": float(np.median(errs)),
                "error_worst": float(errs.max()),
                "rungs": dict(rungs),
                "ms_p50": float(np.median(times)),
                "ms_p90": float(np.percentile(times, 90)),
            }
        )
        r = rows[-1]
        print(
            f"| {name} | {tol if tol is not None else '—'} | {r['n']} | "
            f"{'—' if tol is None else format(100 * r['within'], '.1f') + '%'} | "
            f"{'—' if tol is None else ('yes' if r['promise_kept'] else 'NO')} | {100 * r['covered']:.1f}% | "
            f"{100 * r['error_median']:.5f}% | {100 * r['error_worst']:.4f}% | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(r['rungs'].items()))} | {r['ms_p50']:.1f} | {r['ms_p90']:.1f} |",
            flush=True,
        )
    rt.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["cdr", "convection"])
    ap.add_argument("--tolerances", nargs="+", type=float, default=[5e-3, 1e-3, 1e-4])
    ap.add_argument("--per-axis", type=int)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    print(
        "| model | tolerance | sets | within it | every 'within' is | estimate ≥ error | median error | "
        "worst error | rungs | p50 ms | p90 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    out = []
    for name in args.models:
        out += run(name, [None, *args.tolerances], args.per_axis)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
