"""One validated Settings for every process (environment prefix CRISIS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
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
    # How the Kafka clients reach the brokers (docs/operations.md, "Kafka security"). Production needs
    # encryption and authentication: SASL_SSL, or SSL with a client certificate.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    # Secrets: never logged nor shown (SecretStr). The *_FILE variant reads the value from a file (a mounted
    # Kubernetes or Docker secret); giving both is refused, so a stale variable cannot silently win.
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    # The CA bundle the brokers' certificates must chain to (unset: the system's trust store).
    kafka_ssl_ca_file: Path | None = None
    # A client certificate and key, for brokers that authenticate clients by certificate (mutual TLS).
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_key_password_file: Path | None = None
    # Off only for a broker reached under a name its certificate does not carry; the chain is still checked.
    kafka_ssl_check_hostname: bool = True
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
    # Longest a request sent with `Crisis-After` waits for this process to fold the log up to that point
    # (read your own writes across API processes: crisis.positions) before it is answered 503.
    read_after_timeout_s: float = Field(default=5.0, gt=0, le=60)

    # Retention after closure (docs/safeguards-retention.md): seconds after a crisis closes at which its
    # data keys are destroyed, unless its declaration or a coordinator says otherwise. 30 days.
    retention_after_close_s: int = Field(default=30 * 24 * 3600, ge=1, le=10 * 366 * 24 * 3600)
    # How often an API process looks for closed crises whose retention has ended.
    retention_tick_s: float = Field(default=5.0, gt=0, le=3600)
    # The embedded mode's data keys (never in the journal): a directory of files, each written whole.
    # Unset: data-keys/ in CRISIS_KAFKA_JOURNAL_DIR. On Apache Kafka the keys live on `<topic>.keys`.
    data_keys_dir: Path | None = None

    keys_file: Path = Path(".crisis/keys.json")
    # The registry of organisations (`crisis orgs`); none until the file exists.
    orgs_file: Path = Path(".crisis/orgs.json")

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8001, ge=0, le=65535)
    # TLS served by the processes themselves (PEM certificate chain and key); unset, they speak plain HTTP
    # and WebSocket, for a TLS-terminating proxy or ingress in front (docs/operations.md).
    api_tls_cert_file: Path | None = None
    api_tls_key_file: Path | None = None
    gateway_tls_cert_file: Path | None = None
    gateway_tls_key_file: Path | None = None

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

    # How often each process writes its read audit (`audit.reads`: counts, never one event per read).
    audit_reads_interval_s: float = Field(default=60.0, gt=0)
    # A gateway-only process never writes to Kafka: it sends its read audit to the API (POST
    # /v1/audit/reads), which writes it. The service token both present (not an API key: it grants that one
    # route and nothing else) and the API's URL; unset, the local API (CRISIS_API_HOST:CRISIS_API_PORT).
    audit_token: SecretStr | None = None
    audit_token_file: Path | None = None
    audit_api_url: str = ""

    # Domains whose URLs a share holds back until the sharer confirms (`confirm_warnings`): news and
    # research sites report on attacks and are rarely the content to remove. Subdomains match too.
    warning_domains: list[str] = Field(
        default_factory=lambda: [
            "apnews.com",
            "reuters.com",
            "bbc.co.uk",
            "bbc.com",
            "theguardian.com",
            "nytimes.com",
            "lemonde.fr",
            "spiegel.de",
            "wikipedia.org",
            "archive.org",
            "arxiv.org",
            "bellingcat.com",
            "gnet-research.org",
        ]
    )

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

    @property
    def audit_api_target(self) -> str:
        """Where a gateway-only process sends its read audit: CRISIS_AUDIT_API_URL, else the local API."""
        if self.audit_api_url:
            return self.audit_api_url.rstrip("/")
        scheme = "https" if self.api_tls_cert_file is not None else "http"
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        return f"{scheme}://{host}:{self.api_port}"

    @field_validator("audit_api_url")
    @classmethod
    def _audit_api_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("CRISIS_AUDIT_API_URL must be an http:// or https:// URL")
        return value

    @field_validator("bus_url")
    @classmethod
    def _bus_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if value and (not sep or scheme not in BUS_SCHEMES or (scheme == "kafka" and not rest)):
            raise ValueError("CRISIS_BUS_URL must be kafka://HOST:PORT[,HOST:PORT...] or memory://")
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        self.kafka_sasl_password = _secret(
            self.kafka_sasl_password, self.kafka_sasl_password_file, "CRISIS_KAFKA_SASL_PASSWORD"
        )
        self.kafka_ssl_key_password = _secret(
            self.kafka_ssl_key_password, self.kafka_ssl_key_password_file, "CRISIS_KAFKA_SSL_KEY_PASSWORD"
        )
        self.audit_token = _secret(self.audit_token, self.audit_token_file, "CRISIS_AUDIT_TOKEN")
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password is not None
        ):
            raise ValueError(
                f"CRISIS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "CRISIS_KAFKA_SASL_USERNAME and CRISIS_KAFKA_SASL_PASSWORD (or its _FILE)"
            )
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError("CRISIS_KAFKA_SSL_CERT_FILE and CRISIS_KAFKA_SSL_KEY_FILE go together")
        for prefix in ("api", "gateway"):
            if (getattr(self, f"{prefix}_tls_cert_file") is None) != (
                getattr(self, f"{prefix}_tls_key_file") is None
            ):
                name = prefix.upper()
                raise ValueError(f"CRISIS_{name}_TLS_CERT_FILE and CRISIS_{name}_TLS_KEY_FILE go together")
        return self

    @property
    def kafka_authenticated_and_encrypted(self) -> bool:
        """Whether the Kafka connection is encrypted and proves who this process is (SASL or certificate)."""
        if self.kafka_security_protocol == "SASL_SSL":
            return True
        return self.kafka_security_protocol == "SSL" and self.kafka_ssl_cert_file is not None

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
            if not self.kafka_authenticated_and_encrypted:
                raise ValueError(
                    f"production refuses CRISIS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}: the "
                    "log must be encrypted in transit and every client authenticated; use SASL_SSL (or SSL "
                    "with CRISIS_KAFKA_SSL_CERT_FILE and CRISIS_KAFKA_SSL_KEY_FILE)"
                )
        return self


def _secret(value: SecretStr | None, path: Path | None, name: str) -> SecretStr | None:
    """The secret given directly or read from `path` (one trailing newline dropped); both is an error."""
    if path is None:
        return value
    if value is not None:
        raise ValueError(f"give {name} or {name}_FILE, not both")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}_FILE {path} cannot be read: {exc}") from exc
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ValueError(f"{name}_FILE {path} is empty")
    return SecretStr(text)
