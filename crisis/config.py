"""One validated Settings for every process (environment prefix CRISIS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUS_SCHEMES = ("kafka", "memory")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore")

    environment: Literal["development", "production"] = "development"

    # The bus adapter: "kafka://HOST:PORT[,HOST:PORT]" or "memory://" (one process only, forgotten on exit).
    # Unset, it is kafka:// on CRISIS_KAFKA_BOOTSTRAP (see bus_target).
    bus_url: str = ""

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
    # The embedded broker's log on disk (set by `crisis up`): writes are acknowledged once fsynced there.
    kafka_journal_dir: Path | None = None
    # This process's own local store of the folded log (crisis.store): it restores from it and reads only
    # the log's tail. None: the fold lives in memory and is rebuilt from the whole log at every start.
    state_dir: Path | None = None
    # Whether to keep that store. Unset, `crisis up` and `crisis serve` keep one under the data directory
    # (the keys file's folder: .crisis/state/) when state_dir names none; false keeps the fold in memory.
    state_store: bool | None = None
    # Longest a write may wait for the broker's acknowledgement before the caller hears "unknown outcome".
    publish_timeout_s: float = Field(default=8.0, gt=0)

    keys_file: Path = Path(".crisis/keys.json")
    # The registry of organisations (`crisis orgs`); none until the file exists.
    orgs_file: Path = Path(".crisis/orgs.json")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8001, ge=0, le=65535)

    # Requests per second per API key, sustained, and the burst allowed above it (429 beyond).
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    # Deadlines for receiving a request (408 and the connection closed beyond), so a client that drips its
    # bytes (slowloris) cannot hold a connection: the head from the connection's start or the request's
    # first byte, the body from the end of the head (a whole 2 MB body then needs >= 200 kB/s).
    http_head_timeout_s: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout_s: float = Field(default=10.0, gt=0, le=300)
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

    # Webhooks (docs/webhooks.md): endpoints and deliveries live in this SQLite file (secrets included, 0600).
    webhooks_file: Path = Path(".crisis/webhooks.db")
    # Whether this process sends deliveries: run one deliverer per deployment. Unset, a process that runs
    # both the API and the gateway (`crisis up`) delivers and `crisis serve api|gateway` does not.
    webhook_deliverer: bool | None = None
    # Plain http targets: allowed in development unless refused here, refused in production unless allowed.
    webhook_allow_http: bool | None = None
    # Private, loopback and link-local targets (a request forged towards internal services otherwise).
    webhook_allow_private: bool = False
    webhook_attempts: int = Field(default=10, ge=1, le=50)
    # Exponential backoff between attempts: initial wait (also the jitter's bound), doubled, capped.
    webhook_backoff_initial_s: float = Field(default=5.0, gt=0)
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_poll_s: float = Field(default=1.0, gt=0, le=60)
    webhook_max_in_flight: int = Field(default=256, ge=1)
    webhook_max_in_flight_per_endpoint: int = Field(default=32, ge=1)
    webhook_max_per_org: int = Field(default=20, ge=1)

    @property
    def webhook_http_allowed(self) -> bool:
        if self.webhook_allow_http is not None:
            return self.webhook_allow_http
        return self.environment == "development"

    @property
    def bus_target(self) -> str:
        """The bus URL in force: CRISIS_BUS_URL, else kafka:// on CRISIS_KAFKA_BOOTSTRAP, else ""."""
        if self.bus_url:
            return self.bus_url
        return f"kafka://{self.kafka_bootstrap}" if self.kafka_bootstrap else ""

    @field_validator("bus_url")
    @classmethod
    def _bus_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if value and (not sep or scheme not in BUS_SCHEMES or (scheme == "kafka" and not rest)):
            raise ValueError("CRISIS_BUS_URL must be kafka://HOST:PORT[,HOST:PORT...] or memory://")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.environment == "production":
            if self.bus_target.startswith("memory://"):
                raise ValueError(
                    "production refuses CRISIS_BUS_URL=memory://: it is one process's and not kept"
                )
            if not self.bus_target:
                raise ValueError(
                    "CRISIS_BUS_URL or CRISIS_KAFKA_BOOTSTRAP must name the Kafka cluster in production"
                )
            if self.kafka_replication < 3:
                raise ValueError("production needs CRISIS_KAFKA_REPLICATION >= 3")
            if self.kafka_journal_dir is not None:
                raise ValueError("production runs on Apache Kafka, not the embedded broker's journal")
            if not self.kafka_idempotence:
                raise ValueError("production keeps the idempotent producer on")
        return self
