"""Service settings, read from the environment (prefix ``FASTLRNR_``) and validated at start-up.

Every field can be set as ``FASTLRNR_<NAME>`` (e.g. ``FASTLRNR_ARTIFACT_DIR``,
``FASTLRNR_API_KEYS=key1,key2``) or passed to :class:`ServiceSettings` directly.
A refused value is reported by name and reason only: the input is never echoed, so a
bad ``API_KEYS`` setting cannot print the keys (``hide_input_in_errors``, ``SecretStr``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The bundled default models: ``artifacts/`` next to the package root (the repository root).
DEFAULT_ARTIFACT_DIR = Path(__file__).resolve().parents[2] / "artifacts"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split(value: object) -> object:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (comma-separated environment values)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ServiceSettings(BaseSettings):
    """Configuration of one service process. Immutable once built."""

    model_config = SettingsConfigDict(env_prefix="FASTLRNR_", extra="ignore", frozen=True, hide_input_in_errors=True)

    # --- models
    artifact_dir: Path = Field(DEFAULT_ARTIFACT_DIR, description="directory holding one sub-directory per model")
    default_model: str = Field(
        "cdr", min_length=1, description="model used when a request names none; start-up fails if it cannot be loaded"
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="models to load (comma-separated); empty = every artifact found"
    )
    warmup: bool = Field(True, description="run one solve per model before reporting ready")
    reload_interval_s: float = Field(
        10.0,
        ge=0.0,
        allow_inf_nan=False,
        description="a changed artifact is served within this many seconds (the directory is checked twice "
        "per interval; 0: reload on SIGHUP only)",
    )

    # --- request limits
    max_grid_points: int = Field(262_144, ge=1, description="most field values per solution (nx·nt or points)")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body accepted")
    max_steps: int = Field(50, ge=0, description="largest fast-phase step count a request may ask for")
    max_batch_size: int = Field(64, ge=1, description="most parameter sets in one /solve/batch request")
    max_batch_values: int = Field(
        2_097_152, ge=1, description="most field values in one /solve/batch response (rows × grid values)"
    )
    max_requests: int = Field(
        64,
        ge=1,
        description="solve requests open at once with their body arrived (parsing, waiting or "
        "solving); beyond → 503 before the body is read",
    )
    request_memory_bytes: int = Field(
        256 << 20,
        ge=64 << 20,
        description="the most memory one request's arrays may take, predicted from their declared sizes "
        "(read, widened to float64, solved, answered) before any is read or allocated; beyond → 413 "
        "(measured peak: within twice this)",
    )
    max_time_budget_ms: int = Field(
        60_000,
        ge=100,
        le=600_000,
        description="the longest one request may work: a time_budget_ms above it → 422; a request without "
        "one has its passes end within it (its escalation within 2000 ms)",
    )
    max_slow_bodies: int = Field(
        64,
        ge=1,
        description="request bodies still arriving 0.5 s after their headers; beyond → 503, connection "
        "closed (bodies still arriving hold none of max_requests)",
    )

    # --- access
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description="accepted bearer tokens (comma-separated); empty = no authentication",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed by CORS (comma-separated, or *); empty = CORS off"
    )
    public_docs: bool = Field(
        True,
        description="/docs, /redoc and /openapi.json without a key (false: they need one when api_keys is set)",
    )

    # --- concurrency
    solver_threads: int = Field(2, ge=1, le=64, description="worker threads running solves")
    queue_capacity: int = Field(32, ge=0, description="solve jobs that may wait for a worker; beyond → 503")
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 503 when the service is full")
    ready_busy_s: float = Field(
        10.0,
        ge=0.0,
        allow_inf_nan=False,
        description="/readyz answers 503 (busy) while every solver thread has been on its current pass "
        "for longer than this (0: never)",
    )
    numpy_threads: int = Field(1, ge=1, description="BLAS threads per process (threadpoolctl, at start-up)")
    onnx_threads: int = Field(1, ge=1, description="onnxruntime intra-op threads per session")
    field_threads: int = Field(
        2,
        ge=1,
        le=16,
        description="threads sharing one field evaluation when no other solve is running or waiting (1: never split)",
    )
    microbatch: bool = Field(
        True,
        description="solve compatible /solve requests that queue behind busy workers together, as one vectorised pass",
    )
    microbatch_window_ms: float = Field(
        0.0, ge=0.0, le=100.0, description="extra wait before a micro-batch claims a worker (0: none)"
    )
    microbatch_max: int = Field(
        8,
        ge=1,
        description="most requests merged into one micro-batch (memory grows with "
        "it: under 32 clients, 340 MB with 4, 490-570 MB with 8, 600 MB with 16)",
    )

    # --- responses
    gzip_min_bytes: int = Field(
        65_536,
        ge=0,
        description="JSON answers at least this large are gzip-compressed when the client accepts gzip (0: never)",
    )

    # --- HTTP server (fastlrnr.server.serve; ignored under a plain `uvicorn fastlrnr.server.app:app`)
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on")
    max_connections: int = Field(
        1000,
        ge=1,
        description="open connections at most; at the cap, the one idle longest "
        "(no request in progress) is closed, else the new one",
    )
    max_header_bytes: int = Field(
        65_536, ge=1024, description="request line + headers at most; larger → 400, connection closed"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a request's headers must arrive within this time "
        "(from connecting, or from its first byte) → else 408",
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="a request's body must arrive within this time at most → else 408"
    )
    body_min_rate: int = Field(
        32_768,
        ge=1,
        description="bytes/s: a body must arrive within 5 s + Content-Length / body_min_rate "
        "(at most body_timeout_s) → else 408",
    )
    keep_alive_s: int = Field(75, ge=1, description="idle keep-alive connections are closed after this long")
    graceful_shutdown_s: float = Field(
        25.0,
        ge=3.0,
        description="after SIGTERM, requests still open after this long are cancelled and the process exits",
    )

    malloc_arena_max: int = Field(
        2,
        ge=0,
        description="glibc malloc arenas (mallopt M_ARENA_MAX at start-up; bounds the memory worker "
        "threads fragment); 0 = glibc's default (8 per core)",
    )

    # --- logging
    log_level: str = Field("INFO", description="log level of the service's JSON logs")
    log_json: bool = Field(True, description="structured JSON logs (false: plain text)")

    @field_validator("models", "api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("api_keys")
    @classmethod
    def _keys_sane(cls, value: list[SecretStr]) -> list[SecretStr]:
        for i, key in enumerate(value, start=1):
            secret = key.get_secret_value()
            if len(secret) < 8 or any(ch.isspace() for ch in secret):
                raise ValueError(
                    f"API key {i} of {len(value)} is not valid: keys must be at least 8 characters "
                    "without whitespace (the keys are not shown)"
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; one of {', '.join(LOG_LEVELS)}")
        return value

    @model_validator(mode="after")
    def _default_loaded(self) -> ServiceSettings:
        if self.models and self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not among models {self.models}")
        return self

    def key_bytes(self) -> list[bytes]:
        """The API keys as bytes, for constant-time comparison."""
        return [k.get_secret_value().encode() for k in self.api_keys]
