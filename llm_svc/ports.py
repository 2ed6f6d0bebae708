"""The seams of the chat use case: one abstract port per dependency.

The gRPC adapters in :mod:`llm_svc.clients` and the OpenAI adapter in
:mod:`llm_svc.provider` implement them; unit tests subclass them with fakes.
Every method raises :mod:`gateway_common.errors` domain errors only.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from gateway_common.errors import Aborted, DeadlineExceeded, Unavailable
from gateway_common.principal import Principal
from llm_svc.domain import ChatMessage, Completion, Interaction, Reservation, ResolvedModel, Usage


@dataclass(frozen=True)
class ModelPage:
    models: list[dict[str, Any]]  # name, description, provider, global
    next_page_token: str


class IdentityPort(abc.ABC):
    @abc.abstractmethod
    async def authenticate(self, api_key: str, timeout: float) -> Principal: ...

    @abc.abstractmethod
    async def resolve_model(self, tenant_id: str, model: str, timeout: float) -> ResolvedModel: ...

    @abc.abstractmethod
    async def list_models(
        self, api_key: str, tenant_id: str, page_size: int, page_token: str, timeout: float
    ) -> ModelPage: ...


class QuotaPort(abc.ABC):
    @abc.abstractmethod
    async def reserve(
        self, request_id: str, principal: Principal, timeout: float
    ) -> Reservation: ...

    @abc.abstractmethod
    async def commit(self, request_id: str, timeout: float) -> None: ...

    @abc.abstractmethod
    async def release(self, request_id: str, reason: str, timeout: float) -> None: ...


class HistoryPort(abc.ABC):
    @abc.abstractmethod
    async def record(self, interaction: Interaction, timeout: float) -> Interaction:
        """Store it (idempotent on interaction_id); returns what is stored (the first one)."""

    @abc.abstractmethod
    async def get(
        self, api_key: str, tenant_id: str, interaction_id: str, timeout: float
    ) -> Interaction | None:
        """The stored interaction, read with the user's own key; None when absent."""


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed answer: text, then at the end the finish reason and usage."""

    delta: str = ""
    finish_reason: str = ""
    usage: Usage | None = None


class ProviderPort(abc.ABC):
    @abc.abstractmethod
    async def complete(
        self,
        model: ResolvedModel,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Completion: ...

    @abc.abstractmethod
    def stream(
        self,
        model: ResolvedModel,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Chunks as the provider sends them; closing the iterator cancels the call."""


class SpoolPort(abc.ABC):
    """Durable local store of interactions history could not take."""

    @abc.abstractmethod
    async def put(self, interaction: Interaction) -> None: ...

    @abc.abstractmethod
    async def get(self, interaction_id: str) -> Interaction | None: ...


# Failures of a dependency that may pass (a retry later may succeed).
TRANSIENT = (Unavailable, DeadlineExceeded, Aborted)


class CommitSpoolPort(abc.ABC):
    """Durable local store of quota Commits that failed for a reason that may pass;
    a background task retries them until quota answers."""

    @abc.abstractmethod
    async def put(self, request_id: str) -> None: ...
