"""Memory under sustained load: the same load phase, repeated, with the server's resident memory
after each — does it level off? A benchmark, not a test.

    python -m benchmarks.memory_soak                        # glibc's default arenas vs the service's 2
    python -m benchmarks.memory_soak --phases 4 --requests 96 \\
        --variant t1:FASTLRNR_SOLVER_THREADS=1 --variant t4:FASTLRNR_SOLVER_THREADS=4 \\
        --variant mb16:FASTLRNR_MICROBATCH_MAX=16 --no-default-variants

Each variant (``LABEL:VAR=VALUE[,VAR=VALUE...]``) gets a fresh ``python -m fastlrnr.server.serve``
(the deployed configuration) on a free loopback port; then ``--phases`` times: ``--clients``
clients post ``--requests`` /solve requests (the model's default fast phase, nx × nt, the
parameters drawn from the served domain with a fixed seed) and the server's VmRSS and VmHWM
(peak) are read from /proc. One line per phase, then a summary per variant: RSS after the
second and the last phase and their ratio, answers/s over all phases. Unless
``--no-default-variants``, the first two variants are ``glibc`` (FASTLRNR_MALLOC_ARENA_MAX=0:
glibc's own limit, 8 arenas per core) and ``arenas2`` (the service's default, 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.load_phases import concurrent, served_params
from benchmarks.server import ROOT, Server, parse_variant, proc_cpu_seconds, proc_memory

DEFAULT_VARIANTS = ("glibc:FASTLRNR_MALLOC_ARENA_MAX=0", "arenas2:FASTLRNR_MALLOC_ARENA_MAX=2")


def soak(url: str, pid: int, args: argparse.Namespace, label: str) -> dict:
    """``args.phases`` load phases against one server; RSS after each."""
    mus = served_params(url, args.model, args.requests, args.seed)
    phases = []
    for i in range(1, args.phases + 1):
        cpu0 = proc_cpu_seconds(pid)
        run = concurrent(url, mus, args, args.clients, args.requests)
        mem = proc_memory(pid)
        row = {
            "variant": label,
            "phase": i,
            "answers_per_s": run["throughput_per_s"],
            "errors": run["errors"],
            "p50_ms": run["p50_ms"],
            "rows_per_pass": run["mean_rows_per_pass"],
            "server_cpu_ms_per_answer": round(1e3 * (proc_cpu_seconds(pid) - cpu0) / max(run["completed"], 1), 1),
            "rss_mib": mem["VmRSS"],
            "peak_mib": mem["VmHWM"],
        }
        print(json.dumps(row), flush=True)
        phases.append(row)
    rss = [p["rss_mib"] for p in phases]
    return {
        "phases": phases,
        "rss_after_first_mib": rss[0],
        "rss_after_second_mib": rss[min(1, len(rss) - 1)],
        "rss_after_last_mib": rss[-1],
        "last_over_second": round(rss[-1] / rss[min(1, len(rss) - 1)], 3),
        "peak_mib": phases[-1]["peak_mib"],
        "answers_per_s_median": statistics.median(p["answers_per_s"] for p in phases),
        "server_cpu_ms_per_answer_median": statistics.median(p["server_cpu_ms_per_answer"] for p in phases),
        "errors": sum(p["errors"] for p in phases),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact-dir", type=Path, default=ROOT / "artifacts")
    p.add_argument("--model", default="cdr")
    p.add_argument("--nx", type=int, default=256)
    p.add_argument("--nt", type=int, default=100)
    p.add_argument("--phases", type=int, default=8, help="load phases per server")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=160, help="requests per phase")
    p.add_argument("--duration", type=float, default=120.0, help="time budget per phase, seconds")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL:VAR=VAL[,VAR=VAL]")
    p.add_argument("--no-default-variants", action="store_true", help="run only the --variant servers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    # what benchmarks.load_phases.concurrent reads
    args.steps, args.transport, args.accept_encoding = None, "json", None
    variants = [] if args.no_default_variants else list(DEFAULT_VARIANTS)
    variants = [parse_variant(v) for v in [*variants, *args.variant]]
    if not variants:
        p.error("no variant to run")
    base = {"FASTLRNR_MODELS": args.model, "FASTLRNR_DEFAULT_MODEL": args.model}
    results: dict = {"settings": {k: v for k, v in vars(args).items() if k != "json"}}
    results["settings"]["artifact_dir"] = str(args.artifact_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for label, env in variants:
            server = Server({**base, **env}, Path(tmp) / f"server-{label}.log", args.artifact_dir)
            try:
                server.wait_ready(180)
                started = proc_memory(server.proc.pid)["VmRSS"]
                t0 = time.perf_counter()
                run = soak(server.url, server.proc.pid, args, label)
                results[label] = {"env": env, "rss_at_ready_mib": started, "wall_s": round(time.perf_counter() - t0, 1)}
                results[label].update({k: v for k, v in run.items() if k != "phases"})
                results[label]["rss_mib"] = [row["rss_mib"] for row in run["phases"]]
                results[label]["answers_per_s"] = [row["answers_per_s"] for row in run["phases"]]
            finally:
                server.stop()
            print(json.dumps({label: results[label]}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
