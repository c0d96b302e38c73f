"""Load and abuse test of the solve service on loopback: latency, throughput, memory, robustness.

    python -m benchmarks.load_test                      # serve artifacts/ (needs artifacts/cdr)
    python -m benchmarks.load_test --synthetic          # a random model of the CPU default's size
    python -m benchmarks.load_test --variant nosplit:FASTLRNR_FIELD_THREADS=1   # compare settings, same run
    python -m benchmarks.load_test --phases sequential,concurrent --transport npy
    python -m benchmarks.load_test --url http://127.0.0.1:8000 --pid 1234       # a running server

The server is started as ``python -m fastlrnr.server.serve`` (the deployed configuration), once per
variant; a variant is ``LABEL:VAR=VALUE[,VAR=VALUE...]`` on top of the defaults, so every
figure has a baseline measured in the same run. Phases, each bounded by a request count
and a time budget:

  sequential   one client, /solve on the nx × nt grid with the model's default fast phase →
               p50/p99 and the server's own per-stage timings (median; ``encode`` included);
  concurrent   ``--concurrency`` clients → answers/s, p50/p99, errors, rows per pass;
  rss32        32 clients → the server's peak resident memory (VmHWM);
  flood        2 clients posting invalid 1 MiB bodies (four kinds in turn) while one client
               times a small /solve → its p50/p99 against the same probe without the flood;
  header       one client sends a 64 MiB header → bytes taken before the server cuts it
               off, and the slowest /healthz answered meanwhile;
  sigterm      (own server, graceful_shutdown_s = --grace) a client trickles a body; SIGTERM →
               seconds until the process exits.

The server's CPU time per solve (/proc/<pid>/stat) is printed too: a shared machine disturbs
it less than wall time. Parameters are drawn from the model's served domain (GET /models)
with a fixed seed. Loopback only.

This module is the driver (servers, variants, which phases run, the results); the load phases
are in ``benchmarks/load_phases.py``, the abuse phases in ``benchmarks/abuse_phases.py``, the
server process in ``benchmarks/server.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.abuse_phases import MIB, big_header, flood, sigterm_with_slow_client
from benchmarks.load_phases import concurrent, sequential, served_params
from benchmarks.server import LOOPBACK, ROOT, Server, is_loopback, parse_variant, proc_cpu_seconds, proc_memory

PHASES = ("sequential", "concurrent", "rss32", "flood", "header", "sigterm")


def synthetic_artifacts(directory: Path, width: int = 256, ranks=(12, 12, 12), eim_rank: int = 40) -> Path:
    """A random cdr model of the CPU default's size (N = 256, L = 3): timings only, no accuracy."""
    from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
    from fastlrnr.training.synthetic_artifact import write_synthetic  # needs the onnx package (train extra)

    write_synthetic(
        directory / "cdr", "cdr", CDR, width=width, ranks=ranks, points=256, rank=eim_rank, steps=8, family=CDR_FAMILY
    )
    return directory


# ---------------------------------------------------------------------- driver


def run_against(url: str, pid: int | None, args, phases: set[str]) -> dict:
    mus = served_params(url, args.model, max(args.requests, args.concurrent_requests) + 3, args.seed)
    result: dict = {}
    if "sequential" in phases:
        cpu0 = proc_cpu_seconds(pid) if pid else None
        result["sequential"] = sequential(url, mus, args)
        if pid:
            result["sequential"]["server_cpu_ms_per_solve"] = round(
                1e3 * (proc_cpu_seconds(pid) - cpu0) / max(1, result["sequential"]["requests"] + 3), 1
            )
    if "concurrent" in phases:
        cpu0 = proc_cpu_seconds(pid) if pid else None
        result["concurrent"] = concurrent(url, mus, args, args.concurrency, args.concurrent_requests)
        if pid:
            result["concurrent"]["server_cpu_ms_per_solve"] = round(
                1e3 * (proc_cpu_seconds(pid) - cpu0) / max(1, result["concurrent"]["completed"]), 1
            )
            result["memory_after_concurrent_mib"] = proc_memory(pid)
    if "rss32" in phases:
        result["rss32"] = concurrent(url, mus, args, 32, args.concurrent_requests)
        if pid:
            result["rss32"]["memory_mib"] = proc_memory(pid)
    if "flood" in phases:
        result["flood"] = flood(url, mus, args)
    if "header" in phases:
        result["header"] = big_header(url)
    if args.also_identity and phases & {"sequential", "concurrent"}:
        plain = argparse.Namespace(**{**vars(args), "accept_encoding": "identity", "also_identity": False})
        result["identity"] = run_against(url, pid, plain, phases & {"sequential", "concurrent"})
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="target a running server (loopback only) instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory and CPU time")
    p.add_argument("--artifact-dir", type=Path, default=ROOT / "artifacts")
    p.add_argument("--synthetic", action="store_true", help="serve a random model of the CPU default's size")
    p.add_argument("--model", default="cdr")
    p.add_argument("--nx", type=int, default=256)
    p.add_argument("--nt", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="fast-phase steps (default: the model's)")
    p.add_argument("--transport", choices=("json", "npy"), default="json")
    p.add_argument(
        "--accept-encoding", default=None, help="the clients' Accept-Encoding (default: httpx's, which accepts gzip)"
    )
    p.add_argument(
        "--also-identity",
        action="store_true",
        help="repeat the sequential and concurrent phases with Accept-Encoding: identity (no gzip)",
    )
    p.add_argument("--requests", type=int, default=40, help="sequential requests")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--concurrent-requests", type=int, default=160)
    p.add_argument("--duration", type=float, default=60.0, help="time budget per phase, seconds")
    p.add_argument("--flood-seconds", type=float, default=10.0)
    p.add_argument("--max-body", type=int, default=MIB, help="the server's max_body_bytes (flood body size)")
    p.add_argument("--grace", type=float, default=5.0, help="graceful_shutdown_s of the sigterm phase's server")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {PHASES}")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:VAR=VAL[,VAR=VAL]",
        help="also run --variant-phases on a server with these settings (environment variables)",
    )
    p.add_argument("--variant-phases", default="sequential,concurrent", help="the phases run for each variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    phases = set(args.phases.split(","))
    unknown = phases - set(PHASES)
    if unknown:
        p.error(f"unknown phases {sorted(unknown)}")

    if args.url:
        if not is_loopback(args.url):
            p.error(f"--url must point at loopback ({sorted(LOOPBACK)}), got {args.url!r}")
        results = {"target": args.url, "run": run_against(args.url, args.pid, args, phases - {"sigterm"})}
    else:
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            artifact_dir = synthetic_artifacts(Path(tmp)) if args.synthetic else args.artifact_dir
            if not (artifact_dir / args.model / "manifest.json").is_file():
                p.error(f"no artifact {artifact_dir / args.model}; train one or pass --synthetic")
            base = {
                "FASTLRNR_MODELS": args.model,
                "FASTLRNR_DEFAULT_MODEL": args.model,
                "FASTLRNR_MAX_BODY_BYTES": str(args.max_body),
            }
            variants = [("default", {})] + [parse_variant(v) for v in args.variant]
            for i, (label, env) in enumerate(variants):
                server = Server({**base, **env}, Path(tmp) / f"server-{label}.log", artifact_dir)
                try:
                    startup = server.wait_ready(180)
                    todo = phases - {"sigterm"} if i == 0 else phases & set(args.variant_phases.split(","))
                    run = run_against(server.url, server.proc.pid, args, todo)
                    run["startup_to_ready_s"] = round(startup, 2)
                    run["settings"] = env
                    results[label] = run
                finally:
                    server.stop()
            if "sigterm" in phases:
                results["sigterm"] = sigterm_with_slow_client(
                    artifact_dir, base, args.grace, Path(tmp) / "server-sigterm.log"
                )
        results["settings"] = {
            "model": args.model,
            "grid": [args.nt, args.nx],
            "steps": args.steps or "default",
            "transport": args.transport,
            "synthetic": args.synthetic,
            "cpus": os.cpu_count(),
            "accept_encoding": args.accept_encoding or "httpx default (gzip, deflate)",
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
