"""Periods, time zones and validation rules (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway_common.errors import InvalidArgument
from quota_svc import domain


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "tz", "start", "end"),
    [
        (utc(2031, 3, 15, 12), "", utc(2031, 3, 1), utc(2031, 4, 1)),
        (utc(2031, 3, 31, 23, 59, 59), "UTC", utc(2031, 3, 1), utc(2031, 4, 1)),
        (utc(2031, 4, 1), "UTC", utc(2031, 4, 1), utc(2031, 5, 1)),
        (utc(2031, 12, 31, 23), "UTC", utc(2031, 12, 1), utc(2032, 1, 1)),
        (utc(2032, 2, 29, 12), "UTC", utc(2032, 2, 1), utc(2032, 3, 1)),  # leap year
        # Still March in São Paulo (UTC-3) at 02:00 UTC on 1 April.
        (utc(2031, 4, 1, 2), "America/Sao_Paulo", utc(2031, 3, 1, 3), utc(2031, 4, 1, 3)),
        # Already April in Tokyo (UTC+9) at 16:00 UTC on 31 March.
        (utc(2031, 3, 31, 16), "Asia/Tokyo", utc(2031, 3, 31, 15), utc(2031, 4, 30, 15)),
        # DST: Berlin is UTC+1 on 1 March, UTC+2 on 1 April.
        (utc(2031, 3, 20), "Europe/Berlin", utc(2031, 2, 28, 23), utc(2031, 3, 31, 22)),
        # DST in the southern hemisphere: Sydney UTC+11 in January, UTC+10 in May.
        (utc(2031, 4, 15), "Australia/Sydney", utc(2031, 3, 31, 13), utc(2031, 4, 30, 14)),
    ],
)
def test_period_is_the_calendar_month_in_the_zone(instant, tz, start, end) -> None:
    period = domain.period_of(instant, tz)
    assert (period.start, period.end) == (start, end)
    assert period.start <= instant < period.end


def test_unknown_zone_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.period_of(utc(2031, 1, 1), "Mars/Olympus")
    assert err.value.reason == "INVALID_TIME_ZONE"
    with pytest.raises(InvalidArgument):
        domain.zone("../../etc/passwd")


def test_usage_of_a_new_month_starts_at_zero() -> None:
    now = utc(2031, 3, 2)
    sub = domain.Subscription(
        "s", "t", "u", "p", utc(2031, 1, 1), None, 7, utc(2031, 2, 1), "UTC", now, now
    )
    assert sub.used_in(domain.period_of(utc(2031, 2, 10), "UTC")) == 7
    assert sub.used_in(domain.period_of(now, "UTC")) == 0
    assert sub.is_active(now) and not sub.is_active(utc(2030, 12, 31))


def test_validation() -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_plan_fields(" ", 1)
    with pytest.raises(InvalidArgument):
        domain.validate_plan_fields("x" * 201, 1)
    with pytest.raises(InvalidArgument):
        domain.validate_plan_fields("ok", -1)
    domain.validate_plan_fields("ok", 0)
    with pytest.raises(InvalidArgument):
        domain.request_id("", required=True)
    assert domain.request_id("", required=False) == ""
    with pytest.raises(InvalidArgument):
        domain.parse_uuid("not-a-uuid", "user_id")
    with pytest.raises(InvalidArgument):
        domain.validate_reason("x" * 501)
