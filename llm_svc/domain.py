"""What a chat is, independent of gRPC, the provider SDK and storage. Standard library only."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway_common.errors import InvalidArgument

MAX_MESSAGES = 256
MAX_TEXT_BYTES = 256 * 1024
MAX_IDEMPOTENCY_KEY = 128
# Keys of the provider request we set ourselves; tenant or request parameters never override them.
RESERVED_PARAMETERS = frozenset({"model", "messages", "stream", "stream_options", "n"})


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
    expires: datetime | None = None  # while reserved: when quota refunds it unsettled
    replayed: bool = False  # the idempotency key was served before: this is that request


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
    truncated: bool = False  # the answer was cut to the size history stores


@dataclass(frozen=True)
class ChatAnswer:
    interaction_id: str
    model: str
    content: str
    finish_reason: str
    usage: Usage
    latency_ms: int


def cut_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` within ``max_bytes`` of UTF-8 (cut on a character boundary), and whether
    it was cut."""
    if len(text) * 4 <= max_bytes:  # fast path: cannot be over
        return text, False
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True


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
