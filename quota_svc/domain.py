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


@dataclass(frozen=True)
class Plan:
    plan_id: str
    tenant_id: str  # "" for a global plan
    name: str
    monthly_request_limit: int
    description: str
    create_time: datetime
    update_time: datetime

    @property
    def is_global(self) -> bool:
        return not self.tenant_id


@dataclass(frozen=True)
class NewPlan:
    tenant_id: str
    name: str
    monthly_request_limit: int
    description: str


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

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int
    period: Period

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


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


def validate_reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise InvalidArgument.field("reason", f"at most {MAX_REASON} characters")
    return reason


def expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)
