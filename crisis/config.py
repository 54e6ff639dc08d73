"""One validated Settings for every process (environment prefix CRISIS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    environment: Literal["development", "production"] = "development"

    # Kafka. Idempotence stays on for Apache Kafka; the embedded broker cannot do it and turns it off.
    kafka_bootstrap: str = ""
    kafka_topic: str = "crisis.events"
    kafka_partitions: int = Field(default=6, ge=1, le=1000)
    kafka_replication: int = Field(default=1, ge=1, le=10)
    kafka_idempotence: bool = True
    kafka_linger_ms: int = Field(default=2, ge=0, le=1000)
    kafka_request_timeout_ms: int = Field(default=5000, ge=500)
    kafka_fetch_wait_ms: int = Field(default=10, ge=1, le=5000)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # Longest a write may wait for the broker's acknowledgement before the caller hears "unknown outcome".
    publish_timeout_s: float = Field(default=8.0, gt=0)

    keys_file: Path = Path(".crisis/keys.json")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8001, ge=0, le=65535)

    # Requests per second per API key, sustained, and the burst allowed above it (429 beyond).
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    max_batch: int = Field(default=1000, ge=1)

    gateway_max_message_bytes: int = Field(default=65536, ge=1024)
    gateway_buffer_bytes: int = Field(default=4_000_000, ge=65536)
    # Memory for the frames of recently folded events that resuming clients catch up from (0: always Kafka).
    gateway_recent_bytes: int = Field(default=128_000_000, ge=0)
    gateway_max_streams_per_key: int = Field(default=100, ge=1)
    gateway_heartbeat_s: float = Field(default=20.0, gt=0)
    gateway_auth_timeout_s: float = Field(default=5.0, gt=0)
    # What the console tells browsers to connect to (behind a proxy the bound address is not it).
    public_stream_url: str = ""
    gateway_allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"]
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.environment == "production":
            if not self.kafka_bootstrap:
                raise ValueError("CRISIS_KAFKA_BOOTSTRAP must name the Kafka cluster in production")
            if self.kafka_replication < 3:
                raise ValueError("production needs CRISIS_KAFKA_REPLICATION >= 3")
            if not self.kafka_idempotence:
                raise ValueError("production keeps the idempotent producer on")
        return self
