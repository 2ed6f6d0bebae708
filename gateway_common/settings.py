"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway_common.pagination import PageTokens

DEV_INTERNAL_TOKEN = "dev-internal-token"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class ServiceSettings(BaseSettings):
    """Knobs common to the four services. Env names get the service's prefix,
    e.g. ``IDENTITY_PORT``; the shared ones below also read ``GATEWAY_*``."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = "127.0.0.1"  # address to listen on; 0.0.0.0 in containers
    port: int = 50051  # gRPC port
    metrics_port: int = 0  # Prometheus HTTP port; 0 = off
    metrics_host: str = "0.0.0.0"  # address of the metrics endpoint (scraped by Prometheus)
    # Tenant ids kept as their own ``tenant`` label value (comma-separated); all others are
    # "other". Empty (default): no per-tenant series at all.
    metrics_tenants: str = Field(default="", validation_alias="GATEWAY_METRICS_TENANTS")
    log_level: str = "INFO"
    grace_seconds: float = 10.0  # drain time for in-flight calls on SIGTERM
    # Time between turning NOT_SERVING and closing the listener, so load balancers
    # and health-checking clients move away before new calls would be refused.
    shutdown_delay_seconds: float = 1.0
    health_interval_seconds: float = 1.0  # how often the store is probed for health
    max_message_bytes: int = 4 * 1024 * 1024  # gRPC send/receive limit
    # Connections are closed (GOAWAY) after this long, calls in flight get the grace to
    # finish: clients then reconnect and re-resolve, so replicas added later (an HPA
    # scaling out behind a headless Service) receive their share. 0 = never. Keep the grace
    # above the longest call allowed (a streamed Chat), or such a call is cut at the close.
    max_connection_age_seconds: float = Field(
        default=300.0, validation_alias="GATEWAY_MAX_CONNECTION_AGE_SECONDS"
    )
    max_connection_age_grace_seconds: float = Field(
        default=120.0, validation_alias="GATEWAY_MAX_CONNECTION_AGE_GRACE_SECONDS"
    )
    # Calls handled at once by this server; more are shed at once with UNAVAILABLE and
    # ErrorInfo reason OVERLOADED (retryable elsewhere), never queued without limit.
    # Health and reflection are never shed. 0 = no bound.
    max_concurrent_rpcs: int = Field(default=1000, validation_alias="GATEWAY_MAX_CONCURRENT_RPCS")
    # The longest question or answer history stores, in UTF-8 bytes (256 KiB). One setting,
    # so llm_svc cuts answers to exactly what history_svc accepts.
    max_text_bytes: int = Field(default=262_144, validation_alias="GATEWAY_MAX_TEXT_BYTES")
    event_loop: str = Field(default="uvloop", validation_alias="GATEWAY_EVENT_LOOP")  # or "asyncio"
    # Shared secret the suite's services present to each other's internal RPCs.
    internal_token: SecretStr = Field(
        default=SecretStr(DEV_INTERNAL_TOKEN), validation_alias="GATEWAY_INTERNAL_TOKEN"
    )
    # Key that signs page tokens (at least 16 bytes), the same on every replica of a service.
    # Empty: derived from internal_token, which the replicas share already.
    page_token_key: SecretStr = Field(
        default=SecretStr(""), validation_alias="GATEWAY_PAGE_TOKEN_KEY"
    )
    # TLS: server certificate and key; a CA makes the server require client certs (mTLS).
    tls_cert_file: str = Field(default="", validation_alias="GATEWAY_TLS_CERT_FILE")
    tls_key_file: str = Field(default="", validation_alias="GATEWAY_TLS_KEY_FILE")
    tls_ca_file: str = Field(default="", validation_alias="GATEWAY_TLS_CA_FILE")
    tls_require_client_cert: bool = Field(
        default=False, validation_alias="GATEWAY_TLS_REQUIRE_CLIENT_CERT"
    )

    def page_tokens(self) -> PageTokens:
        return PageTokens.from_secret(
            self.page_token_key.get_secret_value(), self.internal_token.get_secret_value()
        )

    def check_production_safety(self) -> None:
        """Refuse the public development credential on a listener others can reach."""
        dev_token = self.internal_token.get_secret_value() == DEV_INTERNAL_TOKEN
        if dev_token and self.host not in LOOPBACK_HOSTS:
            raise SystemExit(
                f"refusing to listen on {self.host} with the development internal token: "
                "set GATEWAY_INTERNAL_TOKEN to a secret shared by the suite's services"
            )


class PostgresServiceSettings(ServiceSettings):
    """The knobs of a service that owns PostgreSQL (identity, quota), with its prefix:
    ``<SVC>_DB_PREPARED_STATEMENTS``, ``<SVC>_MIGRATION_DATABASE_URL``."""

    # Server-side prepared statements. Turn off behind PgBouncer in transaction pooling
    # mode (Debian's 1.18 cannot route them: a statement prepared in one transaction is
    # missing on the server connection of the next). On: a direct connection, fastest.
    database_url: str = ""  # SQLAlchemy URL (postgresql+psycopg://...); each service's default
    db_prepared_statements: bool = True
    # Where migrations run (DDL under a transaction-level advisory lock): a direct URL to
    # the primary, bypassing the pooler. Empty: the service's database_url.
    migration_database_url: str = ""

    def migrations_url(self) -> str:
        return self.migration_database_url or self.database_url
