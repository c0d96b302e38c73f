"""Issue #28's request-level goals, measured over HTTP on this tree's service and, in the same run,
on an earlier revision's (a ``git worktree`` of it, its own code and artifacts).

    python -m benchmarks.request_goals                        # this tree against 9b17242 (before #28)
    python -m benchmarks.request_goals --baseline none        # this tree only
    python -m benchmarks.request_goals --rounds 7 --sets 1000 --json runs/request_goals.json

Each server is ``python -m fastlrnr.server.serve`` on a loopback port in its deployed configuration
(2 solver threads, the field split over 2 threads when idle). The servers take turns, round after
round (one server is stopped while the other is measured... both run, but only one is sent
requests at a time). Per round and server:

- the default full-grid request: ``POST /solve`` cdr 256 × 100, no tolerance (the client's wall
  time, and its ``Server-Timing``: total and field stage);
- a corrected 8-point query: ``POST /solve`` cdr with 8 points (``correction`` default: corrected);
- the corrected sweep: ``POST /solve/sweep?correction=true`` with ``--sets`` parameter sets × 16
  points (.npz), sets per second; also with ``tolerance=1e-3`` (routed);

and prints medians: the 8-point / full-grid ratio (goal ≤ 1/3), server total / field stage on the
full grid (goal ≤ 1.5), the corrected sweep's sets/s against the baseline's (goal ≥ 20×). Requests
carry ``Accept-Encoding: identity`` (no gzip) unless ``--gzip``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    from benchmarks.server import ROOT, Server
    from benchmarks.timing import machine_line
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from server import ROOT, Server
    from timing import machine_line

BASELINE = "9b17242"  # the merge before issue #28


def server_timing(header: str) -> dict[str, float]:
    """``Server-Timing`` as {stage: ms}."""
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def measure(client, mu: np.ndarray, pts8: list, sweep_body: bytes, sets: int) -> dict:
    """One round on one server: {case: (wall ms, server timings)}; sweeps: sets/s."""
    out: dict = {}
    params = {"beta": float(mu[0]), "nu": float(mu[1]), "rho": float(mu[2])}
    cases = {
        "full": {"params": params, "grid": {"nx": 256, "nt": 100}},
        "points8": {"params": params, "grid": {"points": pts8}},
    }
    for name, body in cases.items():
        t0 = time.perf_counter()
        r = client.post("/solve", json=body)
        wall = 1e3 * (time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{name}: {r.status_code} {r.text[:300]}")
        r.json()
        out[name] = {"wall_ms": wall, "timings": server_timing(r.headers.get("server-timing", ""))}
    for name, query in (("sweep_corrected", {"correction": "true"}), ("sweep_1e-3", {"tolerance": "0.001"})):
        t0 = time.perf_counter()
        r = client.post("/solve/sweep", content=sweep_body, params=query, headers={"content-type": "application/x-npz"})
        wall = time.perf_counter() - t0
        if r.status_code != 200:
            out[name] = {"error": f"{r.status_code} {r.text[:200]}"}
            continue
        with np.load(io.BytesIO(r.content)) as z:
            rungs = {str(k): int(v) for k, v in zip(*np.unique(z["rung"], return_counts=True))}
        out[name] = {"wall_ms": 1e3 * wall, "sets_per_s": sets / wall, "rungs": rungs}
    return out


def summary(rounds: list[dict]) -> dict:
    def med(key: str, field: str = "wall_ms") -> float:
        vals = [r[key][field] for r in rounds if field in r.get(key, {})]
        return statistics.median(vals) if vals else float("nan")

    def stage(key: str, st: str) -> float:
        return statistics.median([r[key]["timings"].get(st, float("nan")) for r in rounds])

    return {
        "full_ms": med("full"),
        "points8_ms": med("points8"),
        "points8_over_full": med("points8") / med("full"),
        "full_server_total_ms": stage("full", "total"),
        "full_field_ms": stage("full", "field"),
        "full_correction_ms": stage("full", "correction"),
        "total_over_field": stage("full", "total") / stage("full", "field"),
        "points8_server_total_ms": stage("points8", "total"),
        "sweep_corrected_sets_per_s": med("sweep_corrected", "sets_per_s"),
        "sweep_1e-3_sets_per_s": med("sweep_1e-3", "sets_per_s"),
        "sweep_1e-3_rungs": rounds[-1].get("sweep_1e-3", {}).get("rungs"),
    }


def main(argv: list[str] | None = None) -> None:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default=BASELINE, help="a git revision to compare with, or 'none'")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sets", type=int, default=1000, help="parameter sets of the corrected sweep")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(28)
    mus = rng.uniform([1.0, 0.0, 0.0], [3.0, 2.0, 2.0], (args.rounds + 1, 3))
    pts8 = (rng.random((8, 2)) * [2 * np.pi, 1.0]).tolist()
    buf = io.BytesIO()
    np.savez(
        buf,
        params=rng.uniform([1.0, 0.0, 0.0], [3.0, 2.0, 2.0], (args.sets, 3)),
        points=rng.random((16, 2)) * [2 * np.pi, 1.0],
    )
    sweep_body = buf.getvalue()
    trees = {"now": ROOT}
    tmp = None
    if args.baseline != "none":
        tmp = Path(tempfile.mkdtemp(prefix="fastlrnr-baseline-"))
        subprocess.run(["git", "worktree", "add", "--detach", str(tmp), args.baseline], cwd=ROOT, check=True)
        trees[f"before ({args.baseline})"] = tmp
    servers, clients = {}, {}
    headers = {} if args.gzip else {"accept-encoding": "identity"}
    print(machine_line())
    try:
        for name, tree in trees.items():
            log = Path(tempfile.mkstemp(prefix="request_goals_", suffix=".log")[1])
            servers[name] = Server({}, log, root=tree)
            servers[name].wait_ready()
            clients[name] = httpx.Client(base_url=servers[name].url, headers=headers, timeout=600.0)
        for c in clients.values():  # warm-up round, not counted
            measure(c, mus[0], pts8, sweep_body, args.sets)
        rounds: dict[str, list[dict]] = {name: [] for name in trees}
        for i in range(args.rounds):
            for name, c in clients.items():
                rounds[name].append(measure(c, mus[i + 1], pts8, sweep_body, args.sets))
                print(f"round {i + 1} {name}: {json.dumps(summary(rounds[name][-1:]))}", flush=True)
    finally:
        for c in clients.values():
            c.close()
        for s in servers.values():
            s.stop(grace=30)
        if tmp is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp)], cwd=ROOT, capture_output=True)
    result = {name: summary(r) for name, r in rounds.items()}
    print(f"\n{machine_line()}; medians of {args.rounds} rounds")
    print(json.dumps(result, indent=1))
    if len(result) == 2:
        now, before = result.values()
        gain = now["sweep_corrected_sets_per_s"] / before["sweep_corrected_sets_per_s"]
        print(f"corrected sweep: {gain:.2f}x the baseline's sets/s (goal >= 20)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"result": result, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
