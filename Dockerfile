# FastLRNR solve service: FastAPI + onnxruntime + numpy, no torch.
#
#   docker build -t fastlrnr-service .
#   docker run --rm --stop-timeout 30 -p 8000:8000 fastlrnr-service
#   docker run --rm -p 8000:8000 -v "$PWD/my-artifacts:/app/artifacts:ro" fastlrnr-service   # other models
#
# Settings come from the environment (FASTLRNR_*, see fastlrnr/server/settings.py and
# deploy/fastlrnr.env.example), e.g. -e FASTLRNR_API_KEYS=... -e FASTLRNR_SOLVER_THREADS=2.
# The bundled models are baked in at $FASTLRNR_ARTIFACT_DIR (/app/artifacts); mount a volume
# there (or point the variable elsewhere) to serve others. Plain Dockerfile syntax: builds
# with the classic builder or BuildKit, and needs nothing but python:3.11-slim and PyPI.

# ------------------------------------------------------------------ builder
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The serving dependencies exactly as locked (requirements/serve.lock: the `serve` extra
# resolved by pip-compile, every file's sha256 pinned; no torch), then the project itself
# without dependencies, for its metadata (the version the service reports); its code runs
# from /app below, next to the bundled artifacts. pip and setuptools go at the end: the
# running service does not need them (~25 MB). This layer changes only with the lock or
# pyproject.toml.
WORKDIR /src
COPY requirements/serve.lock pyproject.toml README.md ./
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --require-hashes --no-deps -r serve.lock \
 && pip install --no-cache-dir --no-deps . \
 && python -c "import fastapi, uvicorn, onnxruntime, numpy, orjson, prometheus_client, pythonjsonlogger, threadpoolctl" \
 && python -c "import importlib.util as u, sys; sys.exit(1 if u.find_spec('torch') else 0)" \
 && pip uninstall -y setuptools wheel pip

# The application tree, readable by everyone whatever the build context's modes were.
WORKDIR /app
COPY fastlrnr/ fastlrnr/
COPY artifacts/ artifacts/
RUN find /app -name '__pycache__' -prune -exec rm -rf {} + \
 && chmod -R a+rX,go-w /app

# ------------------------------------------------------------------ runtime
FROM python:3.11-slim

LABEL org.opencontainers.image.title="fastlrnr-service" \
      org.opencontainers.image.description="FastLRNR PDE solve service (FastAPI, onnxruntime; no torch)"

# BLAS threads are set by the service itself (threadpoolctl, FASTLRNR_NUMPY_THREADS); the
# service runs its own solver threads (FASTLRNR_SOLVER_THREADS): scale out with more containers.
# MALLOC_ARENA_MAX=2: glibc's malloc keeps 2 arenas instead of 8 per core, so memory the worker
# threads free is reused instead of fragmenting (resident memory levels off under repeated load;
# docs/performance.md). The service sets the same limit itself (FASTLRNR_MALLOC_ARENA_MAX).
ENV PATH=/opt/venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORT_DISABLE_TELEMETRY=1 \
    FASTLRNR_HOST=0.0.0.0 \
    FASTLRNR_PORT=8000 \
    FASTLRNR_ARTIFACT_DIR=/app/artifacts

RUN groupadd --system --gid 10001 fastlrnr \
 && useradd --system --uid 10001 --gid fastlrnr --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin fastlrnr

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app

USER 10001:10001
EXPOSE 8000

# Liveness. uvicorn accepts connections only once the lifespan has loaded and warmed the
# models, so a 200 here also means the default model is being served. (slim has no curl.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# Exec form: the server is PID 1 and gets SIGTERM. `python -m fastlrnr.server.serve` is uvicorn with
# the service's limits (fastlrnr/server/serve.py): header size, connection cap, header and body
# deadlines, keep-alive 75 s (longer than nginx's 60 s in deploy/nginx.conf, so the balancer
# never reuses a connection the service has just closed) and a graceful shutdown of
# FASTLRNR_GRACEFUL_SHUTDOWN_S (25 s): stop the container with at least that long
# (`docker stop -t 30`, `docker run --stop-timeout 30`; compose: stop_grace_period 30s).
CMD ["python", "-m", "fastlrnr.server.serve"]
