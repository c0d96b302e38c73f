"""Service settings, read from the environment (prefix ``FASTLRNR_``) and validated at start-up.

Every field can be set as ``FASTLRNR_<NAME>`` (e.g. ``FASTLRNR_ARTIFACT_DIR``,
``FASTLRNR_API_KEYS=key1,key2``) or passed to :class:`ServiceSettings` directly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The bundled default models: ``artifacts/`` next to the package root (the repository root).
DEFAULT_ARTIFACT_DIR = Path(__file__).resolve().parent.parent / "artifacts"


class ServiceSettings(BaseSettings):
    """Configuration of one service process. Immutable once built."""

    model_config = SettingsConfigDict(env_prefix="FASTLRNR_", extra="ignore", frozen=True)

    # --- models
    artifact_dir: Path = Field(DEFAULT_ARTIFACT_DIR, description="directory holding one sub-directory per model")
    default_model: str = Field("cdr", min_length=1, description="model used when a request names none; "
                                                                "start-up fails if it cannot be loaded")
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="models to load (comma-separated); empty = every artifact found")
    warmup: bool = Field(True, description="run one solve per model before reporting ready")

    # --- request limits
    max_grid_points: int = Field(262_144, ge=1, description="most field values per solution (nx·nt or points)")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body accepted")
    max_steps: int = Field(50, ge=0, description="largest fast-phase step count a request may ask for")
    max_batch_size: int = Field(64, ge=1, description="most parameter sets in one /solve/batch request")
    max_batch_values: int = Field(2_097_152, ge=1, description="most field values in one /solve/batch response "
                                                               "(rows × grid values)")

    # --- access
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, repr=False,
        description="accepted bearer tokens (comma-separated); empty = no authentication")

    # --- concurrency
    solver_threads: int = Field(2, ge=1, le=64, description="worker threads running solves")
    queue_capacity: int = Field(32, ge=0, description="solve jobs that may wait for a worker; beyond → 503")
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 503 when the queue is full")
    numpy_threads: int = Field(1, ge=1, description="BLAS threads per process (applied at start-up)")
    onnx_threads: int = Field(1, ge=1, description="onnxruntime intra-op threads per session")
    microbatch: bool = Field(True, description="solve compatible /solve requests that queue behind busy "
                                               "workers together, as one vectorised pass")
    microbatch_window_ms: float = Field(0.0, ge=0.0, le=100.0,
                                        description="extra wait before a micro-batch claims a worker (0: none)")
    microbatch_max: int = Field(16, ge=1, description="most requests merged into one micro-batch")
    speculative_field: bool = Field(True, description="evaluate the field of the hypernetwork's coefficients "
                                                      "while the fast phase runs; rows whose update is accepted "
                                                      "are evaluated again")

    # --- logging
    log_level: str = Field("INFO", description="log level of the service's JSON logs")
    log_json: bool = Field(True, description="structured JSON logs (false: plain text)")

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _split_list(cls, value):
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_sane(cls, value: list[str]) -> list[str]:
        for key in value:
            if len(key) < 8 or any(ch.isspace() for ch in key):
                raise ValueError("API keys must be at least 8 characters without whitespace")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown log level {value!r}")
        return value

    @model_validator(mode="after")
    def _default_loaded(self) -> "ServiceSettings":
        if self.models and self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not among models {self.models}")
        return self
