"""Quota's domain: plans, subscriptions, reservations, monthly periods and the
rules that do not need storage. Standard library only."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway_common.errors import InvalidArgument

MAX_PLAN_NAME = 200
MAX_LIMIT = 1_000_000_000
MAX_TOKEN_LIMIT = 10**15
MAX_REASON = 500
MAX_REQUEST_ID = 200


class Clock(Protocol):
    """Where "now" comes from; tests move it across month boundaries."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ReservationState(enum.Enum):
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"
    # Stored refusal: the first answer was an error, so a replay repeats it.
    REFUSED = "refused"


# motivo of a reservation left open past expira_em and refunded by the sweep (which
# records the request as an error in the same transaction).
EXPIRED_REASON = "RESERVATION_EXPIRED"
MAX_IDEMPOTENCY_KEY = 200
# The outbox topic of interaction records (delivered to history).
RECORD_TOPIC = "interaction"


class Refusal(enum.Enum):
    """Why Reserve said no; the value is the ErrorInfo reason."""

    NO_ACTIVE_SUBSCRIPTION = "NO_ACTIVE_SUBSCRIPTION"
    SUBSCRIPTION_NOT_STARTED = "SUBSCRIPTION_NOT_STARTED"
    SUBSCRIPTION_ENDED = "SUBSCRIPTION_ENDED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    TOKEN_BUDGET_EXHAUSTED = "TOKEN_BUDGET_EXHAUSTED"
    RATE_LIMITED = "RATE_LIMITED"
    MODEL_NOT_ALLOWED = "MODEL_NOT_ALLOWED"  # PERMISSION_DENIED: the plan lists others


MAX_TOKEN_BOUND = 1_000_000_000
MAX_CHOICES = 128
MAX_ALLOWED_MODELS = 100
MAX_MODEL_NAME = 200


@dataclass(frozen=True)
class Period:
    """A calendar month in a time zone, as UTC instants [start, end)."""

    start: datetime
    end: datetime


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; empty means UTC; unknown -> INVALID_ARGUMENT."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(
            f"time_zone: unknown IANA time zone {name!r}", "INVALID_TIME_ZONE"
        ) from None


def period_of(instant: datetime, tz_name: str) -> Period:
    """The calendar month containing ``instant`` in ``tz_name``."""
    tz = zone(tz_name)
    local = instant.astimezone(tz)
    start = datetime(local.year, local.month, 1, tzinfo=tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    end = datetime(year, month, 1, tzinfo=tz)
    return Period(start.astimezone(UTC), end.astimezone(UTC))


def minute_of(instant: datetime) -> Period:
    """The fixed UTC minute containing ``instant``: [hh:mm:00, hh:mm+1:00). Fixed, not
    sliding: one counter per subscription row, updated by the Reserve statement itself
    (a sliding window would need a row per request). At most ``limit`` requests start in
    any calendar minute; across a boundary a burst may reach 2 x limit within 60 s."""
    start = instant.astimezone(UTC).replace(second=0, microsecond=0)
    return Period(start, start + timedelta(minutes=1))


@dataclass(frozen=True)
class Plan:
    plan_id: str
    tenant_id: str  # "" for a global plan
    name: str
    monthly_request_limit: int
    description: str
    create_time: datetime
    update_time: datetime
    requests_per_minute_limit: int | None = None  # None: no per-minute limit
    monthly_token_limit: int | None = None  # None: no token budget
    allowed_models: tuple[str, ...] = ()  # empty: every model of the tenant

    @property
    def is_global(self) -> bool:
        return not self.tenant_id


@dataclass(frozen=True)
class NewPlan:
    tenant_id: str
    name: str
    monthly_request_limit: int
    description: str
    requests_per_minute_limit: int | None = None
    monthly_token_limit: int | None = None
    allowed_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    tenant_id: str
    user_id: str
    plan_id: str
    start_time: datetime
    end_time: datetime | None
    requests_used: int  # requisicoes_utilizadas_mes, for period_start
    period_start: datetime  # the period requests_used belongs to
    time_zone: str
    create_time: datetime
    update_time: datetime
    minute_start: datetime | None = None  # the minute window requests_this_minute counts
    requests_this_minute: int = 0
    tokens_used: int = 0  # tokens_utilizados_mes, for period_start

    def is_active(self, now: datetime) -> bool:
        return self.start_time <= now and (self.end_time is None or now < self.end_time)

    def used_in(self, period: Period) -> int:
        """The stored count if it belongs to ``period``; a new month starts at zero."""
        return self.requests_used if self.period_start == period.start else 0


@dataclass(frozen=True)
class SubscriptionView:
    """A subscription with its usage in the period containing "now"."""

    subscription: Subscription
    period: Period
    used: int


@dataclass(frozen=True)
class Reservation:
    request_id: str
    subscription_id: str
    state: ReservationState
    used: int  # count of the period after the Reserve (or the Release)
    limit: int
    period: Period
    reason: str = ""  # refusal reason or release motive
    tenant_id: str = ""
    user_id: str = ""
    expires: datetime | None = None  # while reserved: when the sweep refunds it
    minute_limit: int | None = None
    minute_used: int = 0
    minute_reset: datetime | None = None
    token_limit: int | None = None
    tokens_used: int = 0  # of the period, after this call
    tokens_reserved: int = 0  # the hold (once settled: the tokens charged)
    max_tokens: int = 0  # completion cap granted per choice; 0: none imposed
    tokens_excess: int = 0  # at settlement: tokens charged beyond a true upper bound

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int
    period: Period
    tokens_used: int = 0
    token_limit: int | None = None

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def tokens_remaining(self) -> int | None:
        return None if self.token_limit is None else max(self.token_limit - self.tokens_used, 0)


def parse_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument.field(field, "must be a UUID") from None


def optional_uuid(value: str, field: str) -> str:
    return parse_uuid(value, field) if value else ""


def request_id(value: str, *, required: bool) -> str:
    """Caller-chosen idempotency key; optional for admin mutations."""
    value = value.strip()
    if not value:
        if required:
            raise InvalidArgument.field("request_id", "is required")
        return ""
    if len(value) > MAX_REQUEST_ID:
        raise InvalidArgument.field("request_id", f"at most {MAX_REQUEST_ID} characters")
    return value


def idempotency_key(value: str) -> str:
    if len(value) > MAX_IDEMPOTENCY_KEY:
        raise InvalidArgument.field("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters")
    return value


def validate_plan_fields(name: str, limit: int) -> None:
    if not name.strip() or len(name) > MAX_PLAN_NAME:
        raise InvalidArgument.field("plan.name", f"1..{MAX_PLAN_NAME} characters")
    if not 0 <= limit <= MAX_LIMIT:
        raise InvalidArgument.field("plan.monthly_request_limit", f"0..{MAX_LIMIT}")


def validate_limits(per_minute: int | None, tokens: int | None, models: tuple[str, ...]) -> None:
    """The optional limits of a plan (None: no limit)."""
    if per_minute is not None and not 0 <= per_minute <= MAX_LIMIT:
        raise InvalidArgument.field("plan.requests_per_minute_limit", f"0..{MAX_LIMIT}")
    if tokens is not None and not 0 <= tokens <= MAX_TOKEN_LIMIT:
        raise InvalidArgument.field("plan.monthly_token_limit", f"0..{MAX_TOKEN_LIMIT}")
    if len(models) > MAX_ALLOWED_MODELS:
        raise InvalidArgument.field("plan.allowed_models", f"at most {MAX_ALLOWED_MODELS}")
    for m in models:
        if not m.strip() or len(m) > MAX_MODEL_NAME or "\x00" in m:
            raise InvalidArgument.field(
                "plan.allowed_models", f"names of 1..{MAX_MODEL_NAME} characters, no NUL"
            )


def model_name(value: str) -> str:
    if len(value) > MAX_MODEL_NAME or "\x00" in value:
        raise InvalidArgument.field("model", f"at most {MAX_MODEL_NAME} characters, no NUL")
    return value


def token_hold(prompt_bound: int, choices: int, max_tokens: int) -> tuple[int, int, int]:
    """Reserve's token inputs, validated: (prompt bound, choices, max tokens)."""
    if not 0 <= prompt_bound <= MAX_TOKEN_BOUND:
        raise InvalidArgument.field("prompt_token_bound", f"0..{MAX_TOKEN_BOUND}")
    if not 0 <= choices <= MAX_CHOICES:
        raise InvalidArgument.field("choices", f"0..{MAX_CHOICES}")
    if not 0 <= max_tokens <= MAX_TOKEN_BOUND:
        raise InvalidArgument.field("max_tokens", f"0..{MAX_TOKEN_BOUND}")
    return prompt_bound, choices, max_tokens


def validate_reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise InvalidArgument.field("reason", f"at most {MAX_REASON} characters")
    return reason


def expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)
