"""llm_svc settings: env prefix LLM_ (shared knobs also read GATEWAY_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gateway_common.settings import ServiceSettings
from llm_svc.breaker import BreakerSettings
from llm_svc.routing import RoutingSettings


class LlmSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", frozen=True, extra="ignore")
    service_name: ClassVar[str] = "llm"

    port: int = 50054
    # llm serves no internal RPC, so it accepts no service's credential.
    accepted_service_tokens: str = Field(
        default="", validation_alias="GATEWAY_ACCEPTED_SERVICE_TOKENS"
    )
    identity_target: str = "127.0.0.1:50051"
    quota_target: str = "127.0.0.1:50052"
    history_target: str = "127.0.0.1:50053"
    # Least time a failed call's release (Settle) gets, even past the caller's deadline.
    settle_timeout_seconds: float = 3.0
    # Kept from the caller's deadline so a provider timeout can still be settled in time.
    provider_margin_seconds: float = 0.25
    # Provider base URL when a configuration names none.
    default_provider_url: str = Field(default="https://api.openai.com/v1")
    auth_cache_seconds: float = 2.0  # how long a key's principal is cached
    resolve_cache_seconds: float = 2.0  # how long a (tenant, model) resolution is cached
    # The OpenAI-compatible HTTP door (llm_svc/README.md, "The HTTP door"): off with
    # LLM_HTTP_ENABLED=false. Same host as gRPC unless LLM_HTTP_HOST says otherwise.
    http_enabled: bool = True
    http_port: int = 8080
    http_host: str = ""
    http_max_body_bytes: int = 4 * 1024 * 1024  # 413 past it (gRPC's message limit)
    # A call's deadline when the client sends no X-Request-Timeout (and the most it may ask).
    http_timeout_seconds: float = 120.0
    # Calls handled at once; past it 503 with Retry-After (overload is never a 429).
    http_max_in_flight: int = 2048
    # Routing over a model's deployments (llm_svc/README.md, "Deployments, retries and
    # fallbacks"): attempts per model (its fallbacks get as many each), the longest
    # Retry-After waited for (longer: that deployment is skipped), the least time an
    # attempt is started with.
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_after_max_seconds: float = 2.0
    min_attempt_seconds: float = 0.05
    # Circuit breaker per deployment: opens after this many failures in a row, or at this
    # failure ratio over the window (with at least breaker_min_calls calls in it); after
    # the cooldown, one probe call decides (half-open).
    breaker_consecutive_failures: int = 5
    breaker_failure_ratio: float = 0.5
    breaker_min_calls: int = 20
    breaker_window_seconds: float = 30.0
    breaker_cooldown_seconds: float = 10.0

    def routing_settings(self) -> RoutingSettings:
        return RoutingSettings(
            self.max_attempts, self.retry_after_max_seconds, self.min_attempt_seconds
        )

    def breaker_settings(self) -> BreakerSettings:
        return BreakerSettings(
            consecutive_failures=self.breaker_consecutive_failures,
            failure_ratio=self.breaker_failure_ratio,
            min_calls=self.breaker_min_calls,
            window_seconds=self.breaker_window_seconds,
            cooldown_seconds=self.breaker_cooldown_seconds,
        )
