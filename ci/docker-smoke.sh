#!/usr/bin/env bash
# Docker smoke test of the service image, run by .ci/run after the tests (as root, on a
# Debian 12 host; see ../shared/tools/docker-smoke.sh, which installs the Docker engine).
#
#   bash ci/docker-smoke.sh
#
#   1. the shared smoke script (beside the checkout: ../shared/tools/docker-smoke.sh):
#      hadolint, `docker compose config`, dockerd, docker build, docker run + GET /healthz,
#      docker compose up --wait + GET /healthz, compose down; it stops its dockerd on exit
#   2. this project's checks, with the same engine (started again here if the shared
#      script stopped it): cold start (docker run → first 200 on /readyz), one real
#      POST /solve checked for a sane field, the artifacts replaced by a volume, and the
#      compose "scale" profile (2 replicas behind nginx, X-Request-ID passed through)
#      (also: no torch in the image, every log line JSON, docker stop within the grace period)
#   3. prints the image size, the cold-start time and the duration
#
# Exit status: 0 when everything passed; non-zero on any failure (lint, build, health,
# solve, compose). The one exception: where no Docker engine can run on this machine
# (dockerd does not start, or no daemon and not root), it prints
# "docker smoke NOT RUN: <reason>" and exits 0, since that is a fact of the environment
# rather than of the project.
#
# Environment: IMAGE (fastlrnr-service:ci), WORK (/tmp/ci-docker, shared with the shared
# script: tools, dockerd state), SMOKE_SCALE=0 skips the scale-profile check,
# DOCKER_SMOKE_SHARED overrides the path of the shared script.
set -Eeuo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) || ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${DOCKER_SMOKE_SHARED:-$ROOT/../shared/tools/docker-smoke.sh}
export WORK=${WORK:-/tmp/ci-docker}
IMAGE=${IMAGE:-fastlrnr-service:ci}
SMOKE_SCALE=${SMOKE_SCALE:-1}
COMPOSE_FILE_PATH=$ROOT/docker-compose.yml

T0=$(date +%s.%N)
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }
step() { printf '\n=== [docker-smoke %6ss] %s\n' "$(since "$T0")" "$*"; }
not_run() { echo; echo "docker smoke NOT RUN: $*"; exit 0; }
fail() { echo; echo "docker smoke FAILED: $*"; exit 1; }

mkdir -p "$WORK"
[ -f "$SHARED" ] || fail "shared smoke script not found at $SHARED"

if [ "$(id -u)" -ne 0 ] && ! docker info >/dev/null 2>&1; then
  not_run "no Docker daemon reachable, and not root (uid $(id -u)), so none can be installed or started"
fi

# ------------------------------------------------------------------ 1. the shared script
step "shared smoke script: $SHARED"
shared_log=$WORK/shared-smoke.log
set +e
SVC_DIR=$ROOT HEALTH_PATH=/healthz COMPOSE_SERVICE=solve IMAGE=$IMAGE WORK=$WORK \
  bash "$SHARED" 2>&1 | tee "$shared_log"
rc=${PIPESTATUS[0]}
set -e
# Static checks the shared script leaves out (no daemon needed): the nginx image's
# Dockerfile and the compose file with the "scale" profile.
if [ -x "$WORK/venv/bin/hadolint" ] && [ -x "$WORK/docker-config/cli-plugins/docker-compose" ]; then
  step "hadolint deploy/nginx.Dockerfile; docker compose --profile scale config"
  "$WORK/venv/bin/hadolint" --failure-threshold "${HADOLINT_THRESHOLD:-error}" "$ROOT/deploy/nginx.Dockerfile" ||
    fail "hadolint deploy/nginx.Dockerfile"
  DOCKER_CONFIG=$WORK/docker-config docker compose -f "$COMPOSE_FILE_PATH" --profile scale config --quiet ||
    fail "docker compose --profile scale config"
  DOCKER_CONFIG=$WORK/docker-config docker compose -f "$COMPOSE_FILE_PATH" --profile scale config --services | paste -sd' '
fi
if [ "$rc" -ne 0 ]; then
  if grep -q '^dockerd did not start' "$shared_log"; then
    why=$(grep -m1 -E 'failed to start daemon|level=fatal' "$WORK/dockerd.log" 2>/dev/null | cut -c1-300 || true)
    not_run "dockerd did not start on this machine (${why:-see $WORK/dockerd.log}); the Dockerfile passed hadolint and docker-compose.yml 'docker compose config', but nothing was built or run"
  fi
  fail "the shared smoke script failed (rc=$rc); see above"
fi

# ------------------------------------------------------------------ 2. engine again
export DOCKER_CONFIG=$WORK/docker-config     # the compose plugin the shared script installed
DOCKERD_PID=""
CIDS=()
SCALE_UP=""
umount_under() {
  awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
}
cleanup() {
  local rc=$?
  set +e
  for c in "${CIDS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  [ -n "$SCALE_UP" ] && docker compose -f "$COMPOSE_FILE_PATH" -p ci-scale --profile scale down -v --remove-orphans >/dev/null 2>&1
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
    umount_under "$WORK/exec"
    echo "dockerd ($DOCKERD_PID) stopped"
  fi
  printf '=== [docker-smoke %6ss] done, rc=%s\n' "$(since "$T0")" "$rc"
  exit "$rc"
}
trap cleanup EXIT

step "dockerd for the project's checks"
if docker info >/dev/null 2>&1; then
  echo "a docker daemon is running; using it"
else
  umount_under "$WORK/exec"; rm -rf "$WORK/exec"; mkdir -p "$WORK/exec"
  dockerd --pidfile "$WORK/dockerd.pid" --exec-root "$WORK/exec" ${DOCKERD_EXTRA_ARGS:-} >"$WORK/dockerd2.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -30 "$WORK/dockerd2.log"; fail "dockerd did not start again (it did for the shared script)"; }
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_ready URL CID: polls URL every 0.1 s until HTTP 200 (at most 180 s); fails when the container stops
wait_ready() {
  local url=$1 cid=$2 deadline=$(( $(date +%s) + 180 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if python3 -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
      return 0
    fi
    if [ "$(docker inspect -f '{{.State.Running}}' "$cid" 2>/dev/null)" != true ]; then
      docker logs "$cid" 2>&1 | tail -40; fail "container $cid stopped before $url answered 200"
    fi
    sleep 0.1
  done
  docker logs "$cid" 2>&1 | tail -40; fail "no HTTP 200 from $url within 180 s"
}

# ------------------------------------------------------------------ 3. cold start + solve
step "image $IMAGE"
docker image ls "$IMAGE"
IMAGE_MB=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f", $1 / 1e6}')

step "cold start: docker run → first 200 on /readyz"
port=$(free_port)
t_run=$(date +%s.%N)
cid=$(docker run -d --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
      -p "127.0.0.1:$port:8000" "$IMAGE")
CIDS+=("$cid")
wait_ready "http://127.0.0.1:$port/readyz" "$cid"
COLD_S=$(since "$t_run")
echo "ready after ${COLD_S} s: $(python3 -c "import sys, urllib.request as u; print(u.urlopen(sys.argv[1]).read().decode())" "http://127.0.0.1:$port/readyz")"
[ "$(docker exec "$cid" id -u)" != 0 ] || fail "the container runs as root"

step "POST /solve"
python3 - "http://127.0.0.1:$port" <<'EOF' || { docker logs "$cid" 2>&1 | tail -40; fail "solve probe"; }
import json, math, sys, time, urllib.request

base = sys.argv[1]
models = json.load(urllib.request.urlopen(base + "/models", timeout=10))
default = next(m for m in models["models"] if m["default"])
bounds = default["domain"]["bounds"]
params = {k: (lo + hi) / 2 for k, (lo, hi) in bounds.items()}       # the middle of the trained domain
nx, nt = 64, 21
body = {"params": params, "grid": {"nx": nx, "nt": nt}}
rid = "docker-smoke-solve-1"
req = urllib.request.Request(base + "/solve", data=json.dumps(body).encode(), method="POST",
                             headers={"Content-Type": "application/json", "X-Request-ID": rid})
t0 = time.perf_counter()
with urllib.request.urlopen(req, timeout=120) as r:
    status, echoed, res = r.status, r.headers.get("X-Request-ID"), json.load(r)
wall_ms = (time.perf_counter() - t0) * 1e3
u, x, t = res["u"], res["x"], res["t"]
problems = []
if status != 200:
    problems.append(f"status {status}")
if echoed != rid or res.get("request_id") != rid:
    problems.append(f"X-Request-ID not echoed: header {echoed!r}, body {res.get('request_id')!r}")
if len(x) != nx or len(t) != nt or len(u) != nt or any(len(row) != nx for row in u):
    problems.append(f"shape: x {len(x)}, t {len(t)}, u {len(u)}×{len(u[0]) if u else 0}; want ({nt}, {nx})")
flat = [v for row in u for v in row]
if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in flat):
    problems.append("non-finite values in u")
else:
    lo, hi = min(flat), max(flat)
    if lo < -1.0 or hi > 4.0:
        problems.append(f"u outside [-1, 4]: [{lo:.4g}, {hi:.4g}]")
    if t[0] != 0.0:
        problems.append(f"t[0] = {t[0]}, want 0")
    ic_err = max(abs(u[0][j] - (1.0 + math.sin(x[j]))) for j in range(nx))
    if ic_err > 1e-3:
        problems.append(f"u(x, 0) differs from 1 + sin x by {ic_err:.3g} > 1e-3")
fp = res["diagnostics"]["fast_phase"]
print(f"model {res['model']['name']} {res['model']['version']}, params {params}")
print(f"u: {len(u)}×{len(u[0])}, range [{min(flat):.4f}, {max(flat):.4f}], max |u(x,0) - (1+sin x)| = "
      f"{max(abs(u[0][j] - (1.0 + math.sin(x[j]))) for j in range(nx)):.2e}")
print(f"fast phase: steps_run {fp['steps_run']}, accepted {fp['accepted']}; "
      f"server total {res['diagnostics']['timings_ms']['total']} ms, client {wall_ms:.0f} ms")
if problems:
    print("solve probe FAILED:", *problems, sep="\n  ")
    sys.exit(1)
print("solve probe passed")
EOF

step "no torch in the image; every log line JSON; docker stop within the grace period"
docker exec "$cid" python -c "import importlib.util as u, sys; sys.exit(1 if u.find_spec('torch') else 0)" ||
  fail "torch is installed in the image"
docker logs "$cid" 2>&1 | python3 -c '
import json, sys
lines = [ln for ln in sys.stdin if ln.strip()]
bad = []
for ln in lines:
    try:
        json.loads(ln)
    except ValueError:
        bad.append(ln)
print(f"{len(lines)} log lines, {len(bad)} not JSON")
sys.exit(1 if bad or not lines else 0)' || { docker logs "$cid" 2>&1 | tail -20; fail "log lines that are not JSON"; }
t_stop=$(date +%s.%N)
docker stop -t 30 "$cid" >/dev/null
STOP_S=$(since "$t_stop")
echo "docker stop: ${STOP_S} s (graceful shutdown allows 25 s)"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 25 else 1)" "$STOP_S" || fail "docker stop took ${STOP_S} s"

step "artifacts replaced by a volume (FASTLRNR_ARTIFACT_DIR=/models)"
vol=$(mktemp -d "$WORK/artifacts.XXXXXX")
cp -R "$ROOT/artifacts/." "$vol/"
chmod -R a+rX "$vol"                     # the container runs as uid 10001
vport=$(free_port)
vcid=$(docker run -d -v "$vol:/models:ro" -e FASTLRNR_ARTIFACT_DIR=/models -p "127.0.0.1:$vport:8000" "$IMAGE")
CIDS+=("$vcid")
wait_ready "http://127.0.0.1:$vport/readyz" "$vcid"
vlog=$(docker logs "$vcid" 2>&1)
grep -q '"artifact_dir": *"/models"' <<<"$vlog" ||
  { head -5 <<<"$vlog"; fail "the service did not read its models from the volume"; }
echo "ready, models from the volume: $(python3 -c "import sys, urllib.request as u; print(u.urlopen(sys.argv[1]).read().decode())" "http://127.0.0.1:$vport/readyz")"
docker rm -f "$vcid" >/dev/null
rm -rf "$vol"

# ------------------------------------------------------------------ 4. scale profile
if [ "$SMOKE_SCALE" = 1 ]; then
  step "compose --profile scale: 2 replicas behind nginx"
  dc=(docker compose -f "$COMPOSE_FILE_PATH" -p ci-scale --profile scale)
  lbport=$(free_port)
  SCALE_UP=1
  "${dc[@]}" build || fail "docker compose --profile scale build"
  SOLVE_PUBLISH=127.0.0.1::8000 LB_PUBLISH="127.0.0.1:$lbport:8080" \
    "${dc[@]}" up -d --no-build --wait --wait-timeout 180 --scale solve=2 || { "${dc[@]}" logs; fail "scale profile did not come up"; }
  "${dc[@]}" ps
  python3 - "http://127.0.0.1:$lbport" <<'EOF' || { "${dc[@]}" logs; fail "requests through nginx"; }
import json, sys, urllib.request

base = sys.argv[1]
for i in range(8):
    rid = f"docker-smoke-lb-{i}"
    req = urllib.request.Request(base + "/readyz", headers={"X-Request-ID": rid})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status
        assert r.headers.get("X-Request-ID") == rid, f"X-Request-ID {r.headers.get('X-Request-ID')!r} != {rid!r}"
with urllib.request.urlopen(base + "/healthz", timeout=10) as r:   # no id given: nginx makes one
    assert len(r.headers.get("X-Request-ID", "")) == 32, r.headers.get("X-Request-ID")
body = json.dumps({"params": {"beta": 2.0, "nu": 1.0, "rho": 1.0}, "grid": {"nx": 16, "nt": 5}}).encode()
req = urllib.request.Request(base + "/solve", data=body, method="POST", headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=120) as r:
    res = json.load(r)
    assert r.status == 200 and len(res["u"]) == 5 and len(res["u"][0]) == 16
print("8 × GET /readyz, GET /healthz, POST /solve through nginx: 200, X-Request-ID passed through")
EOF
  # each replica logs its own access lines: both must have served some of the requests
  served=0
  for i in 1 2; do
    replica_log=$("${dc[@]}" logs --no-log-prefix --index "$i" solve 2>&1)
    n=$(grep -c 'docker-smoke-lb-' <<<"$replica_log" || true)
    echo "replica $i served $n of the 8 tagged requests"
    [ "$n" -gt 0 ] && served=$((served + 1))
  done
  [ "$served" = 2 ] || fail "nginx did not balance over both replicas"
  # (captured first: `logs | grep -q` would fail under pipefail when grep exits early)
  nginx_log=$("${dc[@]}" logs --no-log-prefix nginx 2>&1)
  grep -q 'request_id=docker-smoke-lb-0' <<<"$nginx_log" || { echo "$nginx_log" | tail -20; fail "nginx access log lacks the request id"; }
  "${dc[@]}" down -v --remove-orphans
  SCALE_UP=""
fi

# ------------------------------------------------------------------ summary
step "docker smoke passed"
echo "image $IMAGE: ${IMAGE_MB} MB; cold start to ready: ${COLD_S} s; smoke duration: $(since "$T0") s"
