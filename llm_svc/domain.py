"""What a chat is, independent of gRPC, the provider SDK and storage. Standard library only."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway_common.errors import InvalidArgument

MAX_MESSAGES = 256
MAX_TEXT_BYTES = 256 * 1024
MAX_IDEMPOTENCY_KEY = 128
# Keys of the provider request we set ourselves; tenant or request parameters never override them.
RESERVED_PARAMETERS = frozenset({"model", "messages", "stream", "stream_options", "n"})
# Namespaces of the deterministic ids (fixed forever: changing them breaks retries in flight).
_REQUEST_NS = uuid.UUID("5b0f7a1e-8f4c-4b0e-9a4e-6c2f3d1e7a01")
_INTERACTION_NS = uuid.UUID("a7d3c2b1-1e2f-4a5b-8c6d-7e8f9a0b1c02")


class ChatRole(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Outcome(enum.Enum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class ReservationState(enum.Enum):
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ChatMessage:
    role: ChatRole
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""

    @property
    def question(self) -> str:
        """The last message: what history records as the question."""
        return self.messages[-1].content if self.messages else ""

    def validate(self) -> None:
        if not self.model.strip():
            raise InvalidArgument.field("model", "required")
        if not self.messages:
            raise InvalidArgument.field("messages", "at least one message is required")
        if len(self.messages) > MAX_MESSAGES:
            raise InvalidArgument.field("messages", f"at most {MAX_MESSAGES} messages")
        if sum(len(m.content.encode()) for m in self.messages) > MAX_TEXT_BYTES:
            raise InvalidArgument.field("messages", "at most 256 KiB of text in all")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise InvalidArgument.field("temperature", "must be within 0..2")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise InvalidArgument.field("top_p", "must be within 0..1")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise InvalidArgument.field("max_tokens", "must be positive")
        if len(self.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument.field("idempotency_key", "at most 128 characters")


@dataclass(frozen=True)
class ResolvedModel:
    """What identity says the tenant's call to this model needs. ``credential`` is secret."""

    model_id: str
    name: str
    config_id: str
    base_url: str
    credential: str = field(repr=False)
    token_limit: int | None = None
    extra_parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reservation:
    request_id: str
    subscription_id: str
    state: ReservationState


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """The provider's whole answer."""

    content: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True)
class Interaction:
    """One request and its outcome, as history stores it."""

    interaction_id: str
    tenant_id: str
    user_id: str
    subscription_id: str
    model_id: str
    model_name: str
    timestamp: datetime
    question: str
    answer: str
    usage: Usage
    latency_ms: int
    parameters: dict[str, Any]
    outcome: Outcome
    request_id: str
    error_reason: str = ""
    finish_reason: str = ""


@dataclass(frozen=True)
class ChatAnswer:
    interaction_id: str
    model: str
    content: str
    finish_reason: str
    usage: Usage
    latency_ms: int


def request_id_for(tenant_id: str, user_id: str, idempotency_key: str, attempt: int = 0) -> str:
    """The quota request id: derived from the idempotency key (so a retry hits the same
    reservation), else random. ``attempt`` moves past a reservation an earlier failed
    try already released."""
    if not idempotency_key:
        return str(uuid.uuid4())
    name = f"{tenant_id}|{user_id}|{idempotency_key}"
    if attempt:
        name += f"|{attempt}"
    return str(uuid.uuid5(_REQUEST_NS, name))


def interaction_id_for(request_id: str) -> str:
    """One interaction per reservation, so replays of the record are no-ops."""
    return str(uuid.uuid5(_INTERACTION_NS, request_id))


def provider_parameters(request: ChatRequest, model: ResolvedModel) -> dict[str, Any]:
    """The tenant's defaults, under the request's own parameters, under its explicit fields;
    ``max_tokens`` capped by the tenant's token limit."""
    merged: dict[str, Any] = {}
    for source in (model.extra_parameters, request.parameters):
        for key, value in source.items():
            if key not in RESERVED_PARAMETERS:
                merged[key] = _integral(value)
    explicit = {"temperature": request.temperature, "top_p": request.top_p}
    merged.update({k: v for k, v in explicit.items() if v is not None})
    if request.max_tokens is not None:
        merged["max_tokens"] = request.max_tokens
    limit = model.token_limit
    if limit is not None and limit > 0:
        asked = merged.get("max_tokens")
        merged["max_tokens"] = min(asked, limit) if isinstance(asked, int) else limit
    return merged


def _integral(value: Any) -> Any:
    """JSON Struct numbers are floats; 1000.0 means the integer the provider expects."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
