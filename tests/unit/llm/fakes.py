"""In-memory fakes of llm_svc's ports (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from gateway_common.errors import (
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
    Completion,
    Interaction,
    Reservation,
    ReservationState,
    ResolvedModel,
    Usage,
)
from llm_svc.ports import (
    CommitSpoolPort,
    HistoryPort,
    IdentityPort,
    ModelPage,
    ProviderPort,
    QuotaPort,
    SpoolPort,
    StreamChunk,
)

USER = Principal(Role.USER, tenant_id="t1", user_id="u1", key_id="k1")
ADMIN = Principal(Role.TENANT_ADMIN, tenant_id="t1", key_id="k2")
MODEL = ResolvedModel(
    model_id="m1",
    name="demo",
    config_id="c1",
    base_url="http://provider/v1",
    credential="sk-secret",
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
    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self.states: dict[str, ReservationState] = {}
        self.calls: list[tuple[str, str]] = []
        self.subscribed = True
        self.commit_error: DomainError | None = None
        self.commits_applied = 0  # state changes to committed (a replay adds none)

    @property
    def charged(self) -> int:
        return sum(s is ReservationState.COMMITTED for s in self.states.values())

    @property
    def used(self) -> int:
        counted = (ReservationState.RESERVED, ReservationState.COMMITTED)
        return sum(s in counted for s in self.states.values())

    async def reserve(self, request_id: str, principal: Principal, timeout: float) -> Reservation:
        self.calls.append(("reserve", request_id))
        if request_id not in self.states:
            if not self.subscribed:
                raise FailedPrecondition("no subscription", "NO_ACTIVE_SUBSCRIPTION")
            if self.used >= self.limit:
                raise ResourceExhausted(
                    "limit reached",
                    "QUOTA_EXCEEDED",
                    [QuotaViolation("user:u1", "limit")],
                    {"reset_time": "2030-01-01T00:00:00Z"},
                )
            self.states[request_id] = ReservationState.RESERVED
        return Reservation(request_id, "s1", self.states[request_id])

    async def commit(self, request_id: str, timeout: float) -> None:
        """Like quota: idempotent; a late commit of an expired one charges it; a released
        one is refused; ``commit_error`` simulates quota failing."""
        self.calls.append(("commit", request_id))
        if self.commit_error is not None:
            raise self.commit_error
        state = self.states.get(request_id)
        if state is None:
            raise NotFound("no reservation", "RESERVATION_NOT_FOUND")
        if state is ReservationState.RELEASED:
            raise FailedPrecondition("released", "RESERVATION_RELEASED")
        if state is not ReservationState.COMMITTED:
            self.commits_applied += 1
        self.states[request_id] = ReservationState.COMMITTED

    async def release(self, request_id: str, reason: str, timeout: float) -> None:
        self.calls.append(("release", request_id))
        self.states[request_id] = ReservationState.RELEASED


class FakeHistory(HistoryPort):
    def __init__(self) -> None:
        self.stored: dict[str, Interaction] = {}
        self.records = 0
        self.down = False
        self.reject: set[str] = set()

    async def record(self, interaction: Interaction, timeout: float) -> Interaction:
        if self.down:
            raise Unavailable("history down", "HISTORY_UNAVAILABLE")
        if interaction.interaction_id in self.reject:
            from gateway_common.errors import InvalidArgument

            raise InvalidArgument("bad record")
        self.records += 1
        return self.stored.setdefault(interaction.interaction_id, interaction)

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

    async def complete(
        self,
        model: ResolvedModel,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Completion:
        self.calls.append({"model": model.name, "parameters": parameters, "timeout": timeout})
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.error:
            raise self.error
        answer = "Echo: " + messages[-1].content
        return Completion(answer, "stop", Usage(len(messages[-1].content.split()), 2))

    async def stream(
        self,
        model: ResolvedModel,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> AsyncGenerator[StreamChunk, None]:
        self.calls.append({"model": model.name, "parameters": parameters, "stream": True})
        if self.error:
            raise self.error
        try:
            words = ("Echo: " + messages[-1].content).split(" ")
            for i, w in enumerate(words):
                yield StreamChunk(delta=w if i == 0 else " " + w)
                self.stream_started.set()
                if self.pause:
                    await asyncio.sleep(self.pause)
            yield StreamChunk(finish_reason="stop")
            yield StreamChunk(usage=Usage(3, len(words)))
        finally:
            self.closed = True


class MemoryCommits(CommitSpoolPort):
    def __init__(self) -> None:
        self.items: list[str] = []

    async def put(self, request_id: str) -> None:
        self.items.append(request_id)


class MemorySpool(SpoolPort):
    def __init__(self) -> None:
        self.items: dict[str, Interaction] = {}

    async def put(self, interaction: Interaction) -> None:
        self.items[interaction.interaction_id] = interaction

    async def get(self, interaction_id: str) -> Interaction | None:
        return self.items.get(interaction_id)


def request(text: str = "hello world", key: str = "", **kw: Any) -> ChatRequest:
    from llm_svc.domain import ChatRole

    return ChatRequest(
        model=kw.pop("model", "demo"),
        messages=(ChatMessage(ChatRole.USER, text),),
        idempotency_key=key,
        **kw,
    )
