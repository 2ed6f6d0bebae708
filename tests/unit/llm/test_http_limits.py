"""The HTTP door's x-ratelimit-* headers (the per-minute window and the token budget) and
its 429s for the new limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway_common.errors import QuotaViolation, ResourceExhausted
from llm_svc import http_errors
from llm_svc.domain import Reservation, ReservationState


def test_duration_is_written_as_openai_does() -> None:
    assert http_errors.duration(timedelta(seconds=17)) == "17s"
    assert http_errors.duration(timedelta(seconds=60)) == "1m0s"
    assert http_errors.duration(timedelta(seconds=0.25)) == "0.25s"
    assert http_errors.duration(timedelta(hours=297, minutes=5, seconds=3)) == "297h5m3s"
    assert http_errors.duration(timedelta(seconds=-3)) == "0s"


def test_admitted_call_reports_both_windows() -> None:
    now = datetime.now(UTC)
    r = Reservation(
        "r", "s", ReservationState.RESERVED, limit=100, remaining=90,
        resets=now + timedelta(days=3), minute_limit=3, minute_used=1,
        minute_reset=now + timedelta(seconds=30), token_limit=1000, tokens_used=250,
    )  # fmt: skip
    h = http_errors.ratelimit_headers(r)
    assert h["x-ratelimit-limit-requests"] == "3" and h["x-ratelimit-remaining-requests"] == "2"
    assert h["x-ratelimit-reset-requests"].endswith("s")
    assert h["x-ratelimit-limit-tokens"] == "1000"
    assert h["x-ratelimit-remaining-tokens"] == "750"
    assert h["x-ratelimit-reset-tokens"].startswith("7")  # 71h59m...
    bare = Reservation("r", "s", ReservationState.RESERVED)
    assert http_errors.ratelimit_headers(bare) == {}


def test_rate_limited_is_a_retryable_429_with_retry_after() -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=42)).isoformat()
    exc = ResourceExhausted(
        "per-minute request limit reached", "RATE_LIMITED",
        [QuotaViolation("subscription:s", "3 requests per UTC minute")],
        {"limit": "3", "used": "3", "reset_time": reset, "window": "minute"},
        retry_delay=41.2,
    )  # fmt: skip
    out = http_errors.from_domain(exc)
    assert out.status == 429 and out.body["error"]["code"] == "rate_limit_exceeded"
    assert out.body["error"]["type"] == "requests"
    assert out.headers["Retry-After"] == "42" and out.headers["x-should-retry"] == "true"
    assert out.headers["x-ratelimit-limit-requests"] == "3"
    assert out.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-quota-limit-requests" not in out.headers


def test_token_budget_exhausted_is_not_retryable() -> None:
    reset = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    exc = ResourceExhausted(
        "monthly token budget reached", "TOKEN_BUDGET_EXHAUSTED", [],
        {"limit": "1000", "used": "990", "reset_time": reset, "window": "month"},
        retry_delay=172800.0,
    )  # fmt: skip
    out = http_errors.from_domain(exc)
    assert out.status == 429 and out.body["error"]["code"] == "insufficient_quota"
    assert out.headers["x-should-retry"] == "false"
    assert out.headers["x-ratelimit-limit-tokens"] == "1000"
    assert out.headers["x-ratelimit-remaining-tokens"] == "0"
    assert int(out.headers["Retry-After"]) > 172000
