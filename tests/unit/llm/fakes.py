"""In-memory fakes of llm_svc's ports (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    NotFound,
    QuotaViolation,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from gateway_common.principal import Principal, Role
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChoiceDelta,
    Completion,
    Deployment,
    Interaction,
    Reservation,
    ReservationState,
    ResolvedModel,
    Target,
    Usage,
)
from llm_svc.ports import (
    HistoryPort,
    IdentityPort,
    ModelPage,
    ProviderPort,
    QuotaPort,
    StreamChunk,
)
from llm_svc.token_bound import Hold

USER = Principal(Role.USER, tenant_id="t1", user_id="u1", key_id="k1")
ADMIN = Principal(Role.TENANT_ADMIN, tenant_id="t1", key_id="k2")
MODEL = ResolvedModel(
    model_id="m1",
    name="demo",
    config_id="c1",
    deployments=(Deployment("d1", "http://provider/v1", "sk-secret", "demo"),),
    token_limit=100,
    extra_parameters={"temperature": 0.2, "presence_penalty": 0.5},
)


class FakeIdentity(IdentityPort):
    def __init__(self) -> None:
        self.keys = {"user-key": USER, "admin-key": ADMIN}
        self.models = {("t1", "demo"): MODEL}

    async def authenticate(self, api_key: str, timeout: float) -> Principal:
        if api_key not in self.keys:
            raise Unauthenticated("invalid API key", "INVALID_API_KEY")
        return self.keys[api_key]

    async def resolve_model(self, tenant_id: str, model: str, timeout: float) -> ResolvedModel:
        found = self.models.get((tenant_id, model))
        if found is None:
            raise NotFound("unknown model", "MODEL_NOT_FOUND")
        return found

    async def list_models(
        self, api_key: str, tenant_id: str, page_size: int, page_token: str, timeout: float
    ) -> ModelPage:
        return ModelPage(
            [
                {"name": n, "description": "", "provider": "x", "global": False}
                for (t, n) in self.models
                if t == tenant_id
            ],
            "",
        )


class FakeQuota(QuotaPort):
    """quota's settlement contract in memory (proven against the real quota service by
    tests/integration/llm/test_quota_contract.py): reservations with leased idempotency
    keys; Settle commits or releases once, storing the record (the outbox); a replay of
    the same transition answers the same; an expired reservation refuses it."""

    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self.states: dict[str, ReservationState] = {}
        self.keys: dict[tuple[str, str, str], str] = {}
        self.records: dict[str, Interaction] = {}  # the outbox: one record per request
        self.calls: list[tuple[str, str]] = []
        self.subscribed = True
        self.settle_error: DomainError | None = None  # quota failing at settlement
        self.pruned: set[str] = set()  # records already moved on to history
        self.holds: dict[str, Hold] = {}  # the token hold each Reserve asked for
        self.grant: int = 0  # the completion cap a token budget grants (0: none imposed)

    @property
    def charged(self) -> int:
        return sum(s is ReservationState.COMMITTED for s in self.states.values())

    @property
    def used(self) -> int:
        counted = (ReservationState.RESERVED, ReservationState.COMMITTED)
        return sum(s in counted for s in self.states.values())

    async def reserve(
        self,
        request_id: str,
        principal: Principal,
        idempotency_key: str,
        timeout: float,
        hold: Hold | None = None,
    ) -> Reservation:
        self.calls.append(("reserve", request_id))
        self.holds[request_id] = hold or Hold()
        lease = (principal.tenant_id, principal.user_id, idempotency_key)
        holder = self.keys.get(lease) if idempotency_key else None
        if holder is not None and holder != request_id:
            if self.states[holder] is ReservationState.COMMITTED:
                return Reservation(holder, "s1", ReservationState.COMMITTED, replayed=True)
            if self.states[holder] is ReservationState.RESERVED:
                raise Aborted("in progress", "IDEMPOTENCY_KEY_IN_PROGRESS")
        if request_id not in self.states:
            if not self.subscribed:
                raise FailedPrecondition("no subscription", "NO_ACTIVE_SUBSCRIPTION")
            if self.used >= self.limit:
                raise ResourceExhausted(
                    "limit reached",
                    "QUOTA_EXCEEDED",
                    [QuotaViolation("subscription:s1", "limit")],
                    {"reset_time": "2030-01-01T00:00:00Z"},
                )
            self.states[request_id] = ReservationState.RESERVED
            if idempotency_key:
                self.keys[lease] = request_id
        expires = datetime.now(UTC) + timedelta(seconds=300)
        return Reservation(
            request_id, "s1", self.states[request_id], expires, max_tokens=self.grant
        )

    async def settle(self, interaction: Interaction, commit: bool, timeout: float) -> None:
        rid = interaction.interaction_id
        self.calls.append(("commit" if commit else "release", rid))
        if self.settle_error is not None:
            raise self.settle_error
        state = self.states.get(rid)
        if state is None:
            raise NotFound("no reservation", "RESERVATION_NOT_FOUND")
        wanted = ReservationState.COMMITTED if commit else ReservationState.RELEASED
        if state is wanted:
            return
        if state is ReservationState.EXPIRED:
            raise FailedPrecondition("expired", "RESERVATION_EXPIRED")
        if state is not ReservationState.RESERVED:
            raise FailedPrecondition("settled", "RESERVATION_SETTLED")
        self.states[rid] = wanted
        self.records[rid] = interaction

    async def settlement(self, request_id: str, timeout: float) -> Interaction | None:
        if request_id not in self.states:
            return None
        return None if request_id in self.pruned else self.records.get(request_id)

    def expire(self) -> None:
        """quota's sweep: open reservations refunded (their error records are quota's)."""
        for rid, state in self.states.items():
            if state is ReservationState.RESERVED:
                self.states[rid] = ReservationState.EXPIRED


class FakeHistory(HistoryPort):
    """What history gives back to llm: stored interactions, read with the user's key."""

    def __init__(self) -> None:
        self.stored: dict[str, Interaction] = {}
        self.down = False

    async def get(
        self, api_key: str, tenant_id: str, interaction_id: str, timeout: float
    ) -> Interaction | None:
        if self.down:
            raise Unavailable("history down", "HISTORY_UNAVAILABLE")
        return self.stored.get(interaction_id)


class FakeProvider(ProviderPort):
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error: DomainError | None = None
        self.pause = 0.0
        self.stream_started = asyncio.Event()
        self.closed = False
        self.failing: dict[str, DomainError] = {}  # deployment id -> its failure
        self.fail_mid_stream: DomainError | None = None  # after the first delta

    def _called(self, target: Target, **extra: Any) -> None:
        self.calls.append(
            {
                "model": target.model.name,
                "deployment": target.deployment.deployment_id,
                "upstream": target.upstream_model,
                **extra,
            }
        )
        failure = self.failing.get(target.deployment.deployment_id)
        if failure is not None:
            raise failure

    async def complete(
        self,
        target: Target,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Completion:
        self._called(target, parameters=parameters, timeout=timeout)
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.error:
            raise self.error
        answer = "Echo: " + messages[-1].content
        return Completion(answer, "stop", Usage(len(messages[-1].content.split()), 2))

    async def stream(
        self,
        target: Target,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> AsyncGenerator[StreamChunk, None]:
        self._called(target, parameters=parameters, stream=True)
        if self.error:
            raise self.error
        try:
            words = ("Echo: " + messages[-1].content).split(" ")
            for i, w in enumerate(words):
                yield StreamChunk((ChoiceDelta(content=w if i == 0 else " " + w),))
                self.stream_started.set()
                if self.fail_mid_stream is not None:
                    raise self.fail_mid_stream
                if self.pause:
                    await asyncio.sleep(self.pause)
            yield StreamChunk((ChoiceDelta(finish_reason="stop"),))
            yield StreamChunk(usage=Usage(3, len(words)))
        finally:
            self.closed = True


def request(text: str = "hello world", key: str = "", **kw: Any) -> ChatRequest:
    from llm_svc.domain import ChatRole

    return ChatRequest(
        model=kw.pop("model", "demo"),
        messages=(ChatMessage(ChatRole.USER, text),),
        idempotency_key=key,
        **kw,
    )
