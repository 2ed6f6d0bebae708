"""llm_svc settings: env prefix LLM_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from gateway_common.settings import ServiceSettings


class LlmSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", frozen=True, extra="ignore")

    port: int = 50054
    identity_target: str = "127.0.0.1:50051"
    quota_target: str = "127.0.0.1:50052"
    history_target: str = "127.0.0.1:50053"
    spool_dir: str = ".local/spool"  # durable spool of interactions history could not take
