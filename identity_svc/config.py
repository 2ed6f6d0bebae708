"""identity_svc settings: env prefix IDENTITY_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from gateway_common.settings import PostgresServiceSettings


class IdentitySettings(PostgresServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", frozen=True, extra="ignore")
    service_name: ClassVar[str] = "identity"

    port: int = 50051
    database_url: str = "postgresql+psycopg://gateway:gateway@127.0.0.1:55432/identity"
    db_pool_size: int = 10
    # Apply the Alembic migrations before serving (under an advisory lock).
    migrate_on_start: bool = True
    # Key ring for configuracao_llm.chave_api: "kid1:base64key,kid2:base64key"; the first
    # encrypts, all decrypt. Keys are 16/24/32 random bytes (32 recommended).
    encryption_keys: SecretStr = SecretStr("")
    # Use the public development key when encryption_keys is empty. None (default) = only
    # when listening on a loopback address, i.e. a local `make run`; never in a container.
    allow_dev_key: bool | None = None
    # Verified API keys are cached this long; a revoked key, a deleted user or tenant is
    # forgotten sooner, within GATEWAY_REVOCATION_BOUND_SECONDS (the revocation feed).
    auth_cache_ttl_seconds: float = 2.0
    auth_cache_max_entries: int = 100_000
    # Revocation events are kept this long for the feed's pollers (ListRevocations).
    revocation_retention_seconds: float = 3600.0
    # ResolveModel answers (on Chat's hot path) are cached this long.
    resolve_cache_ttl_seconds: float = 2.0
    resolve_cache_max_entries: int = 10_000
    # The platform currency model prices (llm_modelo.preco_*_milhao) are in: one for all.
    currency: str = Field(default="USD", validation_alias="GATEWAY_CURRENCY")
    # The audit outbox (and system events): delivered to history by a relay in each replica
    # (gateway_common.audit_outbox, the settlement's mechanism; see README).
    history_target: str = "127.0.0.1:50053"  # history_svc, for RecordAdjustments
    history_timeout_seconds: float = 5.0  # per delivery call
    relay_enabled: bool = True  # run the audit relays in this replica
    relay_batch: int = 200  # events per delivery call
    relay_idle_seconds: float = 0.2  # pause when nothing is due
    relay_backoff_seconds: float = 0.5  # first retry delay (doubles per attempt)
    relay_backoff_max_seconds: float = 30.0  # longest retry delay
    outbox_retention_seconds: float = 3600.0  # delivered events kept, then pruned

    def dev_key_allowed(self) -> bool:
        if self.allow_dev_key is not None:
            return self.allow_dev_key
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"
