"""Interactions, the queries over them and their invariants. Standard library only."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway_common.errors import InvalidArgument

MAX_ID_CHARS = 128


class Status(enum.Enum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class GroupBy(enum.Enum):
    DAY = "dia"  # the document field each key is read from
    USER = "usuario_id"
    MODEL = "llm_id"


@dataclass(frozen=True)
class Metadata:
    tokens_used: int = 0
    response_time_ms: int = 0
    prompt_parameters: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Interaction:
    interaction_id: str
    tenant_id: str
    user_id: str
    timestamp: dt.datetime  # UTC, millisecond precision (what BSON dates keep)
    subscription_id: str = ""
    model_id: str = ""
    model_name: str = ""
    question: str = ""
    answer: str = ""
    metadata: Metadata = field(default_factory=Metadata)
    status: Status = Status.OK
    error_reason: str = ""
    request_id: str = ""

    @property
    def day(self) -> str:
        """The UTC calendar day, stored precomputed so any server can group by it."""
        return self.timestamp.strftime("%Y-%m-%d")

    def normalized(self, max_text_bytes: int) -> Interaction:
        """Checked and canonical (UUID spelled lower case, time in UTC to the millisecond)."""
        for name in ("tenant_id", "user_id"):
            if not getattr(self, name):
                raise InvalidArgument.field(f"interaction.{name}", "required")
        for name in ("tenant_id", "user_id", "subscription_id", "model_id", "request_id"):
            if len(getattr(self, name)) > MAX_ID_CHARS:
                raise InvalidArgument.field(
                    f"interaction.{name}", f"at most {MAX_ID_CHARS} characters"
                )
        for name in ("question", "answer"):
            if len(getattr(self, name).encode("utf-8")) > max_text_bytes:
                raise InvalidArgument.field(
                    f"interaction.{name}", f"at most {max_text_bytes} bytes of UTF-8"
                )
        _check_counts(self.metadata)
        return _replace(self, canonical_id(self.interaction_id), utc_millis(self.timestamp))


def _check_counts(meta: Metadata) -> None:
    for name in ("tokens_used", "response_time_ms", "prompt_tokens", "completion_tokens"):
        if getattr(meta, name) < 0:
            raise InvalidArgument.field(f"interaction.metadata.{name}", "must not be negative")


def _replace(item: Interaction, interaction_id: str, timestamp: dt.datetime) -> Interaction:
    meta = item.metadata
    if not meta.tokens_used:
        # tokens_utilizados is prompt + completion when the recorder left it out.
        meta = Metadata(
            meta.prompt_tokens + meta.completion_tokens,
            meta.response_time_ms,
            meta.prompt_parameters,
            meta.prompt_tokens,
            meta.completion_tokens,
        )
    return Interaction(
        interaction_id=interaction_id,
        tenant_id=item.tenant_id,
        user_id=item.user_id,
        timestamp=timestamp,
        subscription_id=item.subscription_id,
        model_id=item.model_id,
        model_name=item.model_name,
        question=item.question,
        answer=item.answer,
        metadata=meta,
        status=item.status,
        error_reason=item.error_reason,
        request_id=item.request_id,
    )


def canonical_id(value: str, field_name: str = "interaction.interaction_id") -> str:
    if not value:
        raise InvalidArgument.field(field_name, "required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument.field(field_name, "must be a UUID") from None


def utc_millis(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    when = when.astimezone(dt.UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def to_millis(when: dt.datetime) -> int:
    return int(utc_millis(when).timestamp() * 1000)


def from_millis(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(frozen=True)
class Filter:
    """Which interactions a List, Search or Stats call looks at; always one tenant."""

    tenant_id: str
    user_id: str = ""
    model_id: str = ""
    start: dt.datetime | None = None  # inclusive
    end: dt.datetime | None = None  # exclusive
    text: str = ""  # search keyword(s)

    def scope(self) -> dict[str, Any]:
        """What a page token is bound to."""
        return {
            "t": self.tenant_id,
            "u": self.user_id,
            "m": self.model_id,
            "s": to_millis(self.start) if self.start else None,
            "e": to_millis(self.end) if self.end else None,
            "q": self.text,
        }


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last row seen: (timestamp desc, interaction_id desc)."""

    timestamp: dt.datetime
    interaction_id: str


@dataclass(frozen=True)
class Page:
    items: list[Interaction]
    next_page_token: str  # empty on the last page


@dataclass(frozen=True)
class Bucket:
    """Sums for one key; the mean latency is latency_ms_sum / interactions."""

    key: str
    interactions: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_sum: int = 0
    errors: int = 0

    @property
    def average_latency_ms(self) -> float:
        return self.latency_ms_sum / self.interactions if self.interactions else 0.0

    def __add__(self, other: Bucket) -> Bucket:
        return Bucket(
            self.key,
            self.interactions + other.interactions,
            self.tokens + other.tokens,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.latency_ms_sum + other.latency_ms_sum,
            self.errors + other.errors,
        )


@dataclass(frozen=True)
class Stats:
    buckets: list[Bucket]
    total: Bucket
