"""history_svc settings: env prefix HISTORY_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gateway_common.settings import ServiceSettings


class HistorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HISTORY_", frozen=True, extra="ignore")
    service_name: ClassVar[str] = "history"

    port: int = 50053
    # MONGO_URL is honoured too, so the same suite runs against a real MongoDB.
    mongo_url: str = Field(default="mongodb://127.0.0.1:27027/", validation_alias="MONGO_URL")
    database: str = "llmgw_history"
    identity_target: str = "127.0.0.1:50051"  # identity_svc address, for Authenticate
    auth_cache_seconds: float = 2.0  # how long a resolved API key is trusted
    # Question and answer limit: GATEWAY_MAX_TEXT_BYTES (gateway_common/settings.py).
    default_page_size: int = 20
    max_page_size: int = 200
    max_page_bytes: int = 3 * 1024 * 1024  # a list/search page stops before this (gRPC: 4 MiB)
    max_query_chars: int = 200  # search keyword length
    search_max_seconds: float = 5.0  # store time of a search (maxTimeMS), within its deadline
    search_per_tenant: int = 2  # concurrent searches of one tenant per replica
    search_total: int = 8  # concurrent searches in all per replica
    search_share: float = 0.25  # of the time, at most, for all keyword scans of a replica
    max_stats_days: int = 366  # longest GetUsageStats range
    mongo_timeout_ms: int = 3000  # server selection / connect timeout
