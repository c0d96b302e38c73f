"""Where a request's time goes, stage by stage, beside the previous commit's code in the same run.

    python benchmarks/request_stages.py                     # this tree against HEAD~1
    python benchmarks/request_stages.py --baseline abc123   # against any revision
    python benchmarks/request_stages.py --baseline none     # this tree only

A default request is built exactly as the server builds it (``fastlrnr.server.api.checks.solve_job``
with the default settings) and solved in process (``ModelRuntime.solve_jobs``, one field
thread, one BLAS thread), for the standard 256×100 grid and for 8 scattered points, at
``--queries`` seeded parameter sets of each model's served domain. Printed: the median of
each stage (``PassResult.timings``) and of the whole pass, for this tree and for the
baseline — a ``git worktree`` of the revision, run in its own process with this script —
alternating runs, medians over them; the ratio is this tree / baseline. Also the served
answer's relative L2 error against the reference solver (256×100), so that a faster stage
that changed the answer shows.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"256x100": {"nx": 256, "nt": 100}, "8 points": None}


def measure(queries: int, repeats: int) -> dict:
    """{model: {shape: {stage: median ms, 'pass': median ms, 'error': median rel. L2}}} for the
    code that ``import fastlrnr`` finds."""
    from fastlrnr.numerics.artifact import list_artifacts
    from fastlrnr.numerics.reference import solve_reference_batch
    from fastlrnr.server.api import checks
    from fastlrnr.server.api.schemas import SolveRequest
    from fastlrnr.server.engine.solver import ModelRuntime
    from fastlrnr.server.settings import ServiceSettings

    limits = ServiceSettings()
    pts = np.random.default_rng(3).random((8, 2)) * [2 * np.pi, 1.0]
    out: dict = {}
    for path in list_artifacts(Path.cwd() / "artifacts"):  # each tree's own artifacts
        rt = ModelRuntime.load(path, onnx_threads=1, field_threads=1)
        mus = rt.served.sample(queries, np.random.default_rng(9))
        family = getattr(rt, "family", None)  # None: a baseline from before families (CDR only)
        names = family.params if family else ("beta", "nu", "rho")
        reference_kw = {"family": family} if family else {}
        out[rt.name] = {}
        for shape, grid in SHAPES.items():
            grid = grid or {"points": pts.tolist()}
            stages: dict[str, list[float]] = {}
            errors = []
            for mu in mus:
                params = dict(zip(names, map(float, mu)))
                body = SolveRequest.model_validate_json(json.dumps({"model": rt.name, "params": params, "grid": grid}))
                for r in range(repeats + 1):
                    job = checks.solve_job(rt, body, limits)
                    t0 = time.perf_counter()
                    res = rt.solve_jobs([job])[0]
                    wall = time.perf_counter() - t0
                    if r == 0:
                        continue  # warm-up
                    for k, v in {**res.timings, "pass": wall}.items():
                        stages.setdefault(k, []).append(1e3 * v)
                if shape == "256x100":
                    ref = solve_reference_batch(mu[None], job.grid.x, job.grid.t, **reference_kw)[0]
                    errors.append(float(np.linalg.norm(res.u[0] - ref) / np.linalg.norm(ref)))
            out[rt.name][shape] = {k: statistics.median(v) for k, v in stages.items()}
            if errors:
                out[rt.name][shape]["error"] = statistics.median(errors)
                out[rt.name][shape]["error_worst"] = max(errors)
        rt.close()
    return out


def run_tree(tree: Path, queries: int, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--queries",
        str(queries),
        "--repeats",
        str(repeats),
    ]
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def merge(runs: list[dict]) -> dict:
    first = runs[0]
    return {
        m: {s: {k: statistics.median(r[m][s][k] for r in runs) for k in first[m][s]} for s in first[m]} for m in first
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="HEAD~1", help="a git revision, or 'none'")
    ap.add_argument("--queries", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each tree")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.queries, args.repeats)))
        return
    trees = {"this tree": ROOT}
    tmp = None
    if args.baseline != "none":
        tmp = Path(tempfile.mkdtemp(prefix="fastlrnr-baseline-"))
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tmp), args.baseline], cwd=ROOT, check=True, capture_output=True
        )
        trees[f"baseline {args.baseline}"] = tmp
    try:
        runs: dict[str, list[dict]] = {k: [] for k in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(run_tree(tree, args.queries, args.repeats))
        merged = {k: merge(v) for k, v in runs.items()}
    finally:
        if tmp is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp)], cwd=ROOT, capture_output=True)
    print(
        f"load average {os.getloadavg()[0]:.2f}; medians over {args.queries} queries × {args.repeats} repeats × "
        f"{args.rounds} alternating runs; ms"
    )
    names = list(merged)
    for model in merged[names[0]]:
        for shape in merged[names[0]][model]:
            print(f"\n{model}, {shape}")
            rows = {n: merged[n].get(model, {}).get(shape, {}) for n in names}  # a model one tree lacks: "—"
            keys = sorted({k for n in names for k in rows[n]}, key=lambda k: (k.startswith("error"), k))
            print(f"{'stage':>12} " + " ".join(f"{n:>22}" for n in names) + ("   ratio" if len(names) == 2 else ""))
            for k in keys:
                vals = [rows[n].get(k) for n in names]
                fmt = (lambda v: f"{100 * v:>21.4f}%") if k.startswith("error") else (lambda v: f"{v:>22.2f}")
                cells = " ".join(fmt(v) if v is not None else f"{'—':>22}" for v in vals)
                ratio = f"   {vals[0] / vals[1]:.2f}" if len(vals) == 2 and None not in vals and vals[1] else ""
                print(f"{k:>12} {cells}{ratio}")


if __name__ == "__main__":
    main()
