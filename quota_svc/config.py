"""quota_svc settings: env prefix QUOTA_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from gateway_common.settings import PostgresServiceSettings


class QuotaSettings(PostgresServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUOTA_", frozen=True, extra="ignore")
    service_name: ClassVar[str] = "quota"

    port: int = 50052
    database_url: str = "postgresql+psycopg://gateway:gateway@127.0.0.1:55432/quota"
    db_pool_size: int = 10  # connections kept open; Reserve/Commit use one each, briefly
    db_max_overflow: int = 10  # extra connections under bursts
    identity_target: str = "127.0.0.1:50051"  # identity_svc address, for Authenticate
    identity_cache_seconds: float = 2.0  # how long a resolved API key is trusted
    # An open reservation neither committed nor released after this is released
    # (refunded) by the settlement rule; see quota_svc/README.md.
    reservation_ttl_seconds: float = 300.0
    settle_interval_seconds: float = 5.0  # how often each replica sweeps; 0 = no sweeper
    settle_batch: int = 500  # rows per settlement statement
    # Settlement outbox: delivery of interaction records to history (see README).
    history_target: str = "127.0.0.1:50053"  # history_svc address, for RecordInteractions
    history_timeout_seconds: float = 5.0  # per delivery call
    relay_enabled: bool = True  # run the outbox relay in this replica
    relay_batch: int = 200  # records per RecordInteractions call
    relay_idle_seconds: float = 0.05  # pause when nothing is due
    relay_lease_seconds: float = 30.0  # a claimed record is retried by any replica after this
    relay_max_rejections: int = 5  # content refusals before a record is a dead letter
    relay_backoff_seconds: float = 0.5  # first retry delay (doubles per attempt)
    relay_backoff_max_seconds: float = 60.0  # longest retry delay
    outbox_retention_seconds: float = 86400.0  # delivered records kept for idempotent replays
    migrate_on_start: bool = True  # apply Alembic migrations (under an advisory lock)
