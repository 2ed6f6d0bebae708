"""Interactions, the queries over them and their invariants. Standard library only."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from gateway_common.errors import FieldViolation, InvalidArgument

MAX_ID_CHARS = 128


class Status(enum.Enum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class Outcome(enum.Enum):
    """What recording one interaction of a batch did."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    ERASED = "erased"  # its user was erased after it happened: dropped
    REJECTED = "rejected"  # refused for its content; a retry will not help


class GroupBy(enum.Enum):
    DAY = "dia"  # the document field each key is read from
    USER = "usuario_id"
    MODEL = "llm_id"


@dataclass(frozen=True)
class Attempt:
    """One provider call of the request (tentativas): which deployment, for which model,
    how it ended ("OK" or the failure's reason), its HTTP status and latency."""

    deployment_id: str
    model: str = ""
    status: str = ""
    http_status: int = 0
    latency_ms: int = 0


MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class Metadata:
    tokens_used: int = 0
    response_time_ms: int = 0
    prompt_parameters: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    deployment_id: str = ""  # implantacao_id: the deployment that answered
    answered_model: str = ""  # modelo_resposta: the model that answered
    attempts: tuple[Attempt, ...] = ()  # tentativas
    cost_nanos: int = 0  # metadados.custo_nanos, written by llm at the price then in force


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
    finish_reason: str = ""  # stop, length, tool_calls, content_filter, cancelled
    answer_truncated: bool = False  # the answer was cut to the stored size limit

    @property
    def day(self) -> str:
        """The UTC calendar day, stored precomputed so any server can group by it."""
        return self.timestamp.strftime("%Y-%m-%d")

    def normalized(self, max_text_bytes: int) -> Interaction:
        """Checked and canonical (UUID spelled lower case, time in UTC to the millisecond)."""
        for name in ("tenant_id", "user_id"):
            if not getattr(self, name):
                raise _invalid(f"interaction.{name}", "required", "FIELD_REQUIRED")
        for name in ("tenant_id", "user_id", "subscription_id", "model_id", "request_id"):
            if len(getattr(self, name)) > MAX_ID_CHARS:
                raise _invalid(
                    f"interaction.{name}", f"at most {MAX_ID_CHARS} characters", "FIELD_TOO_LONG"
                )
        for name in ("question", "answer"):
            if len(getattr(self, name).encode("utf-8")) > max_text_bytes:
                raise _invalid(
                    f"interaction.{name}",
                    f"at most {max_text_bytes} bytes of UTF-8",
                    "FIELD_TOO_LONG",
                )
        _check_counts(self.metadata)
        _check_keys(self.metadata.prompt_parameters, "interaction.metadata.prompt_parameters", 0)
        meta = self.metadata
        if not meta.tokens_used:
            # tokens_utilizados is prompt + completion when the recorder left it out.
            meta = replace(meta, tokens_used=meta.prompt_tokens + meta.completion_tokens)
        return replace(
            self,
            interaction_id=canonical_id(self.interaction_id),
            timestamp=utc_millis(self.timestamp),
            metadata=meta,
        )


MAX_PARAMETER_DEPTH = 32


def _invalid(name: str, description: str, reason: str) -> InvalidArgument:
    return InvalidArgument(
        f"{name}: {description}", reason, violations=[FieldViolation(name, description)]
    )


def _check_counts(meta: Metadata) -> None:
    for name in (
        "tokens_used",
        "response_time_ms",
        "prompt_tokens",
        "completion_tokens",
        "cost_nanos",
    ):
        if getattr(meta, name) < 0:
            raise _invalid(f"interaction.metadata.{name}", "must not be negative", "NEGATIVE_COUNT")
    if len(meta.attempts) > MAX_ATTEMPTS:
        raise _invalid(
            "interaction.metadata.attempts", f"at most {MAX_ATTEMPTS}", "TOO_MANY_ATTEMPTS"
        )
    texts = [meta.deployment_id, meta.answered_model]
    texts += [t for a in meta.attempts for t in (a.deployment_id, a.model, a.status)]
    if any(len(t) > MAX_ID_CHARS for t in texts):
        raise _invalid(
            "interaction.metadata.attempts", f"at most {MAX_ID_CHARS} characters", "FIELD_TOO_LONG"
        )


def _check_keys(value: Any, where: str, depth: int) -> None:
    """Keys a document store cannot hold ($-prefixed, dotted) are refused, not half-stored."""
    if depth > MAX_PARAMETER_DEPTH:
        raise _invalid(where, f"nested deeper than {MAX_PARAMETER_DEPTH}", "PARAMETERS_TOO_DEEP")
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.startswith("$") or "." in key:
                raise _invalid(where, f"key {key[:40]!r} has '$' or '.'", "INVALID_PARAMETER_KEY")
            _check_keys(inner, where, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_keys(inner, where, depth + 1)


def canonical_id(value: str, field_name: str = "interaction.interaction_id") -> str:
    if not value:
        raise _invalid(field_name, "required", "FIELD_REQUIRED")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid(field_name, "must be a UUID", "INVALID_ID") from None


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
    day: str = ""  # only this UTC day ("YYYY-MM-DD"): an equality FerretDB pushes down to SQL

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
    cost_nanos: int = 0  # metadados.custo_nanos summed (0 where a record has none)

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
            self.cost_nanos + other.cost_nanos,
        )


@dataclass(frozen=True)
class Stats:
    buckets: list[Bucket]
    total: Bucket


@dataclass(frozen=True)
class RecordResult:
    """The result of one interaction of a RecordInteractions batch."""

    interaction_id: str
    outcome: Outcome
    reason: str = ""  # for REJECTED
    message: str = ""


@dataclass(frozen=True)
class Erasure:
    """A tombstone: interactions of the user at or before ``erase_time`` are never stored."""

    tenant_id: str
    user_id: str
    erase_time: dt.datetime

    def covers(self, item: Interaction) -> bool:
        return item.timestamp <= self.erase_time


def erasure_key(tenant_id: str, user_id: str) -> str:
    """A tombstone's key: one per (tenant, user), unambiguous whatever the ids hold."""
    return json.dumps([tenant_id, user_id], separators=(",", ":"))


@dataclass(frozen=True, order=True)
class DayKey:
    """The key of one usage rollup: a user's interactions with one model on one UTC day."""

    tenant_id: str
    user_id: str
    model_id: str
    day: str  # "YYYY-MM-DD"

    @classmethod
    def of(cls, item: Interaction) -> DayKey:
        return cls(item.tenant_id, item.user_id, item.model_id, item.day)

    def document_id(self) -> str:
        """Unambiguous whatever the ids hold (like erasure_key)."""
        return json.dumps(
            [self.tenant_id, self.user_id, self.model_id, self.day], separators=(",", ":")
        )


@dataclass(frozen=True)
class RebuildReport:
    """What a rollup rebuild found: keys whose stored rollup differed from the raw documents."""

    keys_checked: int = 0
    missing: list[DayKey] = field(default_factory=list)  # raw data, no rollup
    stale: list[DayKey] = field(default_factory=list)  # rollup with other sums
    orphans: list[DayKey] = field(default_factory=list)  # rollup, no raw data

    @property
    def differences(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.orphans)


DAY = dt.timedelta(days=1)


def day_of(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d")


def midnight(when: dt.datetime) -> dt.datetime:
    when = when.astimezone(dt.UTC)
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def whole_days(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The whole UTC days inside ``[start, end)`` as ``[first midnight, last midnight)``."""
    first = midnight(start)
    if first < start:
        first += DAY
    last = midnight(end)
    return (first, last) if first < last else None


def days_between(first: dt.datetime, last: dt.datetime) -> list[str]:
    """Each UTC day from midnight ``first`` (inclusive) to midnight ``last`` (exclusive)."""
    out, day = [], first
    while day < last:
        out.append(day_of(day))
        day += DAY
    return out


def split_range(
    start: dt.datetime, end: dt.datetime
) -> tuple[list[tuple[dt.datetime, dt.datetime]], tuple[dt.datetime, dt.datetime] | None]:
    """``[start, end)`` as (partial pieces, each inside one UTC day; whole days or None)."""
    whole = whole_days(start, end)
    if whole is None:
        cut = midnight(end)
        pieces = [(start, cut), (cut, end)] if start < cut < end else [(start, end)]
        return pieces, None
    first, last = whole
    pieces = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return pieces, whole
