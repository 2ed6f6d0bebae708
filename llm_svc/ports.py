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
from llm_svc.domain import (
    ChatMessage,
    Completion,
    Embeddings,
    Interaction,
    Reservation,
    ResolvedModel,
    StreamChunk,
    Target,
)
from llm_svc.token_bound import Hold


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
        self,
        request_id: str,
        principal: Principal,
        idempotency_key: str,
        timeout: float,
        hold: Hold | None = None,
    ) -> Reservation:
        """Counts the request and holds ``hold``'s tokens (its cap lowered to what the
        budget leaves: ``Reservation.max_tokens``); with a key already served, the first
        request's committed reservation (``replayed``)."""

    @abc.abstractmethod
    async def settle(self, interaction: Interaction, commit: bool, timeout: float) -> None:
        """Commits (served) or releases (failed) the reservation ``interaction_id`` and
        stores the record for history, in one transaction; idempotent."""

    @abc.abstractmethod
    async def settlement(self, request_id: str, timeout: float) -> Interaction | None:
        """The record a settlement stored (None once it left the outbox)."""


class HistoryPort(abc.ABC):
    @abc.abstractmethod
    async def get(
        self, api_key: str, tenant_id: str, interaction_id: str, timeout: float
    ) -> Interaction | None:
        """The stored interaction, read with the user's own key; None when absent."""


class ProviderPort(abc.ABC):
    @abc.abstractmethod
    async def complete(
        self,
        target: Target,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Completion: ...

    @abc.abstractmethod
    def stream(
        self,
        target: Target,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Chunks as the provider sends them; closing the iterator cancels the call."""


class EmbedderPort(abc.ABC):
    @abc.abstractmethod
    async def embed(
        self,
        target: Target,
        inputs: tuple[str, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Embeddings:
        """One vector per input, in order, and the tokens the provider counted."""


# Failures of a dependency that may pass (a retry later may succeed).
TRANSIENT = (Unavailable, DeadlineExceeded, Aborted)
