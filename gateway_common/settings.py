"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway_common import service_auth
from gateway_common.egress import EgressPolicy
from gateway_common.pagination import PageTokens
from gateway_common.revocation import FeedTiming

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class ServiceSettings(BaseSettings):
    """Knobs common to the four services. Env names get the service's prefix,
    e.g. ``IDENTITY_PORT``; the shared ones below also read ``GATEWAY_*``."""

    # hide_input_in_errors: a refused value (a token where a digest belongs) is not logged.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)
    # The name this service is known by to the others (service_auth.SERVICES).
    service_name: ClassVar[str] = ""

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
    # This service's own credential, presented to the others' internal RPCs (x-service-token).
    # Empty: the public development token of this service (refused off loopback).
    service_token: SecretStr = Field(
        default=SecretStr(""), validation_alias="GATEWAY_SERVICE_TOKEN"
    )
    # The callers of this service's internal RPCs: "llm=<sha256 hex>,quota=<sha256 hex>" (the
    # digest of each caller's GATEWAY_SERVICE_TOKEN); each RPC allows some of them by name.
    # Default: every service's development token (refused off loopback). Empty: nobody.
    accepted_service_tokens: str = Field(
        default_factory=service_auth.dev_accepted,
        validation_alias="GATEWAY_ACCEPTED_SERVICE_TOKENS",
    )
    # Key that signs page tokens (at least 16 bytes), the same on every replica of a service.
    # Empty: derived from service_token, which the replicas of a service share already.
    page_token_key: SecretStr = Field(
        default=SecretStr(""), validation_alias="GATEWAY_PAGE_TOKEN_KEY"
    )
    # Revoked keys and deleted users or tenants stop working in every cache within
    # revocation_bound_seconds: caches poll identity's revocation feed every
    # revocation_poll_seconds and are bypassed (every call asks identity) while the last
    # good poll started longer ago than the bound (gateway_common/revocation.py).
    revocation_poll_seconds: float = Field(
        default=0.5, gt=0, validation_alias="GATEWAY_REVOCATION_POLL_SECONDS"
    )
    revocation_bound_seconds: float = Field(
        default=1.5, gt=0, validation_alias="GATEWAY_REVOCATION_BOUND_SECONDS"
    )
    # TLS: server certificate and key; a CA makes the server require client certs (mTLS).
    tls_cert_file: str = Field(default="", validation_alias="GATEWAY_TLS_CERT_FILE")
    tls_key_file: str = Field(default="", validation_alias="GATEWAY_TLS_KEY_FILE")
    tls_ca_file: str = Field(default="", validation_alias="GATEWAY_TLS_CA_FILE")
    tls_require_client_cert: bool = Field(
        default=False, validation_alias="GATEWAY_TLS_REQUIRE_CLIENT_CERT"
    )

    @field_validator("accepted_service_tokens")
    @classmethod
    def _accepted_parse(cls, value: str) -> str:
        service_auth.parse_accepted(value)  # a malformed entry stops the service at start
        return value

    def service_credential(self) -> str:
        """The token this service presents: its own, else its development token."""
        return self.service_token.get_secret_value() or service_auth.dev_token(self.service_name)

    def callers(self) -> service_auth.Callers:
        return service_auth.Callers.parse(self.accepted_service_tokens)

    def revocation_timing(self) -> FeedTiming:
        return FeedTiming(self.revocation_poll_seconds, self.revocation_bound_seconds)

    # Provider destinations the platform allows beyond public addresses: CIDR ranges and host
    # names (gateway_common/egress.py). Read by identity (base URLs) and llm (connections).
    egress_allow: str = Field(default="", validation_alias="GATEWAY_EGRESS_ALLOW")

    def egress_policy(self) -> EgressPolicy:
        try:
            return EgressPolicy.parse(self.egress_allow)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None

    def page_tokens(self) -> PageTokens:
        return PageTokens.from_secret(
            self.page_token_key.get_secret_value(), self.service_credential()
        )

    def check_production_safety(self) -> None:
        """Refuse the public development credentials on a listener others can reach."""
        if self.host in LOOPBACK_HOSTS:
            return
        dev = {service_auth.digest(service_auth.dev_token(s)): s for s in service_auth.SERVICES}
        token = self.service_token.get_secret_value()
        if not token or service_auth.digest(token) in dev:
            raise SystemExit(
                f"refusing to listen on {self.host} with the development service token: "
                "set GATEWAY_SERVICE_TOKEN to this service's own secret"
            )
        accepted = service_auth.parse_accepted(self.accepted_service_tokens)
        public = sorted(name for d, name in accepted.items() if d.hex() in dev)
        if public:
            raise SystemExit(
                f"refusing to listen on {self.host}: GATEWAY_ACCEPTED_SERVICE_TOKENS accepts "
                f"the development token of {', '.join(public)}; list each real caller's "
                "name=<sha256 hex of its GATEWAY_SERVICE_TOKEN>"
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
