# FastLRNR solve service: FastAPI + onnxruntime + numpy, no torch.
#
#   docker build -t fastlrnr-service .
#   docker run --rm -p 8000:8000 fastlrnr-service
#   docker run --rm -p 8000:8000 -v "$PWD/my-artifacts:/app/artifacts:ro" fastlrnr-service   # other models
#
# Settings come from the environment (FASTLRNR_*, see service/settings.py), e.g.
# -e FASTLRNR_API_KEYS=... -e FASTLRNR_SOLVER_THREADS=2. The bundled models are baked in
# at $FASTLRNR_ARTIFACT_DIR (/app/artifacts); mount a volume there (or point the variable
# elsewhere) to serve others. Plain Dockerfile syntax: builds with the classic builder or
# BuildKit, and needs nothing but python:3.11-slim and PyPI.

# ------------------------------------------------------------------ builder
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies of the `serve` extra only (no torch), resolved from pyproject.toml; this
# layer is rebuilt only when pyproject.toml changes. The project itself is then removed
# from the venv again: its code runs from /app (below), next to the bundled artifacts;
# so are pip and setuptools, which the running service does not need (~25 MB).
# (Versions are bounded in pyproject.toml, the project's one list of dependencies.)
WORKDIR /src
COPY pyproject.toml ./
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[serve]" \
 && pip uninstall -y fastlrnr-service \
 && python -c "import fastapi, uvicorn, onnxruntime, numpy, pydantic_settings" \
 && pip uninstall -y setuptools wheel pip

# The application tree, readable by everyone whatever the build context's modes were.
WORKDIR /app
COPY core/ core/
COPY service/ service/
COPY artifacts/ artifacts/
RUN find /app -name '__pycache__' -prune -exec rm -rf {} + \
 && chmod -R a+rX,go-w /app

# ------------------------------------------------------------------ runtime
FROM python:3.11-slim

LABEL org.opencontainers.image.title="fastlrnr-service" \
      org.opencontainers.image.description="FastLRNR PDE solve service (FastAPI, onnxruntime; no torch)"

# One BLAS/OpenMP thread per process: the service runs its own solver threads
# (FASTLRNR_SOLVER_THREADS); scale out with more containers.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    FASTLRNR_NUMPY_THREADS=1 \
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

# Exec form: uvicorn is PID 1 and gets SIGTERM, so in-flight solves drain on `docker stop`.
# The service writes its own JSON access log lines, hence --no-access-log. Keep-alive of
# 75 s: longer than a load balancer's idle timeout (nginx's 60 s in deploy/nginx.conf), so
# the balancer never reuses a connection that the service has just closed.
CMD ["uvicorn", "service.app:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", \
     "--timeout-keep-alive", "75"]
