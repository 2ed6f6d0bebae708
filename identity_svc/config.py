"""identity_svc settings: env prefix IDENTITY_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from gateway_common.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", frozen=True, extra="ignore")

    port: int = 50051
    database_url: str = "postgresql+psycopg://gateway:gateway@127.0.0.1:55432/identity"
    db_pool_size: int = 10
