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
MAX_IMAGES = 16
MAX_STOP = 4
MAX_CHOICES = 8


class ChatRole(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    DEVELOPER = "developer"
    TOOL = "tool"


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
class ImagePart:
    """An image by URL or data URL; ``detail`` is "", "auto", "low" or "high"."""

    url: str
    detail: str = ""


ContentPart = str | ImagePart  # a text part, or an image


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class ChatMessage:
    role: ChatRole
    content: str = ""
    parts: tuple[ContentPart, ...] = ()  # when set, ``content`` is empty
    name: str = ""
    tool_calls: tuple[ToolCall, ...] = ()  # assistant messages
    tool_call_id: str = ""  # tool messages
    refusal: str = ""  # assistant messages

    @property
    def text(self) -> str:
        """The message's text: its content, or its text parts joined by newlines."""
        if not self.parts:
            return self.content
        return "\n".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))

    def text_bytes(self) -> int:
        size = len(self.text.encode()) + len(self.refusal.encode())
        return size + sum(len(c.arguments.encode()) for c in self.tool_calls)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None  # a JSON Schema object
    strict: bool | None = None


@dataclass(frozen=True)
class ToolChoice:
    """``mode`` is "none", "auto" or "required"; or ``function`` names one tool."""

    mode: str = ""
    function: str = ""


@dataclass(frozen=True)
class ResponseFormat:
    """``type`` is "text", "json_object" or "json_schema" (then name and schema)."""

    type: str
    name: str = ""
    description: str = ""
    schema: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] = field(default_factory=dict)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    max_completion_tokens: int | None = None
    reasoning_effort: str = ""
    user: str = ""

    @property
    def question(self) -> str:
        """The last user message's text: what history records as the question."""
        for message in reversed(self.messages):
            if message.role is ChatRole.USER:
                return message.text
        return ""

    def validate(self) -> None:
        """The shape of the request; the chat parameters are checked by
        :func:`llm_svc.chat_schema.check_request`."""
        if not self.model.strip():
            raise InvalidArgument.field("model", "required")
        if not self.messages:
            raise InvalidArgument.field("messages", "at least one message is required")
        if len(self.messages) > MAX_MESSAGES:
            raise InvalidArgument.field("messages", f"at most {MAX_MESSAGES} messages")
        if sum(m.text_bytes() for m in self.messages) > MAX_TEXT_BYTES:
            raise InvalidArgument.field("messages", "at most 256 KiB of text in all")
        if len(self.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument.field("idempotency_key", "at most 128 characters")


MAX_EMBED_INPUTS = 2048
MAX_DIMENSIONS = 65536


@dataclass(frozen=True)
class EmbedRequest:
    """Texts to turn into vectors (OpenAI's embeddings call)."""

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str = ""
    idempotency_key: str = ""
    base64: bool = False  # the HTTP door's encoding_format (the vectors are the same)

    def validate(self) -> None:
        if not self.model.strip():
            raise InvalidArgument.field("model", "required")
        if not self.inputs or len(self.inputs) > MAX_EMBED_INPUTS:
            raise InvalidArgument.field("input", f"1 to {MAX_EMBED_INPUTS} texts")
        for i, text in enumerate(self.inputs):
            if not text or "\x00" in text:
                raise InvalidArgument.field(f"input[{i}]", "a non-empty text without NUL")
        if sum(len(t.encode()) for t in self.inputs) > MAX_TEXT_BYTES:
            raise InvalidArgument.field("input", "at most 256 KiB of text in all")
        if self.dimensions is not None and not 1 <= self.dimensions <= MAX_DIMENSIONS:
            raise InvalidArgument.field("dimensions", f"within 1..{MAX_DIMENSIONS}")
        if len(self.user) > 256 or "\x00" in self.user:
            raise InvalidArgument.field("user", "up to 256 characters, no NUL")
        if len(self.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument.field("idempotency_key", "at most 128 characters")


@dataclass(frozen=True)
class Embeddings:
    """The provider's vectors, one per input in order, and the tokens it counted."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage


@dataclass(frozen=True)
class EmbedAnswer:
    interaction_id: str
    model: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    latency_ms: int


@dataclass(frozen=True)
class Deployment:
    """One provider deployment of a model configuration. ``credential`` is secret."""

    deployment_id: str
    base_url: str  # empty: LLM_DEFAULT_PROVIDER_URL
    credential: str = field(repr=False)
    upstream_model: str = ""  # the provider's own name of the model
    priority: int = 0  # lowest first
    weight: int = 1  # share among equal priorities
    attempt_timeout: float | None = None  # seconds one attempt may take; None: no own limit


@dataclass(frozen=True)
class ResolvedModel:
    """What identity says the tenant's call to this model needs."""

    model_id: str
    name: str
    config_id: str
    deployments: tuple[Deployment, ...] = ()  # by priority (identity's order)
    token_limit: int | None = None
    extra_parameters: dict[str, Any] = field(default_factory=dict)
    # Request parameters outside the chat schema this configuration lets through.
    allowed_extras: frozenset[str] = frozenset()
    # The tenant's other models to try, in order, when every deployment fails retryably.
    fallback_models: tuple[str, ...] = ()
    fallback_on_context_length: bool = False
    # Prices per million tokens in nanos of the platform currency (None: no price).
    input_price_nanos: int | None = None
    output_price_nanos: int | None = None

    def cost_nanos(self, usage: Usage) -> int:
        """What ``usage`` costs at this model's prices: round(prompt x input price +
        completion x output price), prices per million tokens (half up, in integers)."""
        spent = usage.prompt_tokens * (self.input_price_nanos or 0)
        spent += usage.completion_tokens * (self.output_price_nanos or 0)
        return (spent + 500_000) // 1_000_000


@dataclass(frozen=True)
class Target:
    """One attempt's destination: the model it serves and the deployment called."""

    model: ResolvedModel
    deployment: Deployment

    @property
    def upstream_model(self) -> str:
        return self.deployment.upstream_model or self.model.name


@dataclass(frozen=True)
class Attempt:
    """One provider call of a request, as history records it (tentativas)."""

    deployment_id: str
    model: str  # the tenant's model it served
    status: str  # "OK" or the failure's reason
    http_status: int = 0
    latency_ms: int = 0


@dataclass(frozen=True)
class Reservation:
    request_id: str
    subscription_id: str
    state: ReservationState
    expires: datetime | None = None  # while reserved: when quota refunds it unsettled
    replayed: bool = False  # the idempotency key was served before: this is that request
    # The monthly count after this Reserve (what the HTTP door's x-quota-* headers say).
    limit: int = 0
    remaining: int = 0
    resets: datetime | None = None  # end of the period counted
    # The per-minute window and the token budget after this Reserve (x-ratelimit-*).
    minute_limit: int | None = None
    minute_used: int = 0
    minute_reset: datetime | None = None
    token_limit: int | None = None
    tokens_used: int = 0
    max_tokens: int = 0  # the completion cap granted per choice (0: none imposed)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens
    reasoning_tokens: int = 0  # of completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Choice:
    """One of the provider's answers (a request with ``n`` gets several)."""

    index: int = 0
    content: str = ""
    refusal: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = ""
    logprobs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Completion:
    """The provider's whole answer: ``content`` and ``finish_reason`` are the first
    choice's; ``choices`` holds every choice (empty: just the first, text only)."""

    content: str
    finish_reason: str
    usage: Usage
    choices: tuple[Choice, ...] = ()

    @classmethod
    def of(cls, choices: tuple[Choice, ...], usage: Usage) -> Completion:
        first = choices[0] if choices else Choice()
        return cls(first.content, first.finish_reason, usage, choices)

    def all_choices(self) -> tuple[Choice, ...]:
        return self.choices or (Choice(0, self.content, finish_reason=self.finish_reason),)


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed tool call: ``id`` and ``name`` come in its first piece."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True)
class ChoiceDelta:
    """A streamed piece of one choice."""

    index: int = 0
    content: str = ""
    refusal: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str = ""

    @property
    def is_plain_text(self) -> bool:
        """Text of the first choice only: what the stream's ``delta`` event carries."""
        return self.index == 0 and not self.refusal and not self.tool_calls

    @property
    def carries(self) -> bool:
        return bool(self.content or self.refusal or self.tool_calls)


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed answer: choice deltas, and at the end the usage."""

    choices: tuple[ChoiceDelta, ...] = ()
    usage: Usage | None = None


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
    deployment_id: str = ""  # the deployment that answered (empty: none did)
    answered_model: str = ""  # the model that answered (a fallback's name when one did)
    attempts: tuple[Attempt, ...] = ()  # every provider call, in order
    cost_nanos: int = 0  # at the prices of the model that answered, when it answered


@dataclass(frozen=True)
class ChatAnswer:
    interaction_id: str
    model: str
    content: str
    finish_reason: str
    usage: Usage
    latency_ms: int
    choices: tuple[Choice, ...] = ()  # every choice; empty: the one above, text only


def cut_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` within ``max_bytes`` of UTF-8 (cut on a character boundary), and whether
    it was cut."""
    if len(text) * 4 <= max_bytes:  # fast path: cannot be over
        return text, False
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", "ignore"), True
