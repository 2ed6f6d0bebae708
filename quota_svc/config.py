"""quota_svc settings: env prefix QUOTA_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from gateway_common.settings import ServiceSettings


class QuotaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUOTA_", frozen=True, extra="ignore")

    port: int = 50052
    database_url: str = "postgresql+psycopg://gateway:gateway@127.0.0.1:55432/quota"
    db_pool_size: int = 10
    identity_target: str = "127.0.0.1:50051"  # identity_svc address, for Authenticate
