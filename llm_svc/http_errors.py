"""Domain errors as the HTTP status and ``{"error": {message, type, param, code}}`` body an
OpenAI client expects (the SDKs pick their exception class by the status). The same
errors the gRPC boundary maps to status codes; nothing else (never a stack, SQL or a
secret: an unexpected error is a generic 500). Standard library only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_common.errors import DomainError, InvalidArgument, ResourceExhausted
from llm_svc.domain import Reservation

# gRPC code name -> (HTTP status, OpenAI error type)
_STATUS = {
    "INVALID_ARGUMENT": (400, "invalid_request_error"),
    "UNAUTHENTICATED": (401, "invalid_request_error"),
    "PERMISSION_DENIED": (403, "permission_error"),
    # No usable subscription: the key may not call (yet, or any more).
    "FAILED_PRECONDITION": (403, "permission_error"),
    "NOT_FOUND": (404, "invalid_request_error"),
    "ALREADY_EXISTS": (409, "conflict_error"),
    "ABORTED": (409, "conflict_error"),
    "RESOURCE_EXHAUSTED": (429, "insufficient_quota"),
    "UNAVAILABLE": (503, "server_error"),
    "DEADLINE_EXCEEDED": (504, "timeout_error"),
    "UNIMPLEMENTED": (501, "server_error"),
}
# Our reasons under the codes OpenAI's clients know.
_CODES = {
    "INVALID_API_KEY": "invalid_api_key",
    "MISSING_CREDENTIAL": "invalid_api_key",
    "MODEL_NOT_FOUND": "model_not_found",
    "QUOTA_EXCEEDED": "insufficient_quota",
    "TOKEN_BUDGET_EXHAUSTED": "insufficient_quota",
    "RATE_LIMITED": "rate_limit_exceeded",
}


@dataclass(frozen=True)
class HttpError:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, message: str, kind: str, code: str, param: str | None = None) -> HttpError:
    return HttpError(
        status, {"error": {"message": message, "type": kind, "param": param, "code": code}}
    )


def from_domain(exc: DomainError) -> HttpError:
    status, kind = _STATUS.get(exc.code_name, (500, "server_error"))
    param = None
    if isinstance(exc, InvalidArgument) and exc.violations:
        param = exc.violations[0].field
    code = _CODES.get(exc.reason, exc.reason.lower())
    if exc.reason == "RATE_LIMITED":
        kind = "requests"  # OpenAI's type for a requests-per-minute 429
    out = error(status, exc.message, kind, code, param)
    if isinstance(exc, ResourceExhausted) and exc.reason == "RATE_LIMITED":
        out.headers.update(rate_limited_headers(exc))
        out.headers["x-should-retry"] = "true"  # the next minute admits it
    elif isinstance(exc, ResourceExhausted):
        if exc.reason == "TOKEN_BUDGET_EXHAUSTED":  # the month's tokens, not its requests
            md = exc.metadata
            out.headers.update(_window("tokens", md.get("limit", ""), 0, md))
            out.headers.update(_retry_after(_time(md.get("reset_time", ""))))
        else:
            out.headers.update(quota_exhausted_headers(exc.metadata))
        # The month's limit: the SDKs' automatic retries (they retry 429s) cannot help.
        out.headers["x-should-retry"] = "false"
    elif status == 503:
        out.headers["Retry-After"] = "1"
    return out


def internal() -> HttpError:
    return error(500, "internal error", "server_error", "internal_error")


def quota_headers(limit: int, remaining: int, resets: datetime | None) -> dict[str, str]:
    """The monthly quota, as ``x-quota-*`` (OpenAI's ``x-ratelimit-*`` names are kept
    for the per-minute window)."""
    headers = {"x-quota-limit-requests": str(limit), "x-quota-remaining-requests": str(remaining)}
    if resets is not None:
        headers["x-quota-reset-requests"] = resets.astimezone(UTC).isoformat()
    return headers


def ratelimit_headers(r: Reservation) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers of an admitted call: requests for the plan's
    per-minute window, tokens for its monthly token budget (each when the plan has one);
    resets as durations (``17s``, ``297h5m3s``), as OpenAI sends them."""
    headers: dict[str, str] = {}
    now = datetime.now(UTC)
    if r.minute_limit is not None:
        headers["x-ratelimit-limit-requests"] = str(r.minute_limit)
        headers["x-ratelimit-remaining-requests"] = str(max(r.minute_limit - r.minute_used, 0))
        if r.minute_reset is not None:
            headers["x-ratelimit-reset-requests"] = duration(r.minute_reset - now)
    if r.token_limit is not None:
        headers["x-ratelimit-limit-tokens"] = str(r.token_limit)
        headers["x-ratelimit-remaining-tokens"] = str(max(r.token_limit - r.tokens_used, 0))
        if r.resets is not None:
            headers["x-ratelimit-reset-tokens"] = duration(r.resets - now)
    return headers


def rate_limited_headers(exc: ResourceExhausted) -> dict[str, str]:
    """A per-minute refusal: the window's headers and ``Retry-After`` (its RetryInfo)."""
    headers = _window("requests", exc.metadata.get("limit", ""), 0, exc.metadata)
    wait = exc.retry_delay if exc.retry_delay is not None else 1.0
    headers["Retry-After"] = str(max(math.ceil(wait), 1))
    return headers


def _window(kind: str, limit: str, remaining: int, md: dict[str, str]) -> dict[str, str]:
    headers = {f"x-ratelimit-limit-{kind}": limit, f"x-ratelimit-remaining-{kind}": str(remaining)}
    resets = _time(md.get("reset_time", ""))
    if resets is not None:
        headers[f"x-ratelimit-reset-{kind}"] = duration(resets - datetime.now(UTC))
    return headers


def duration(left: timedelta) -> str:
    """A wait as OpenAI's headers write it (Go's duration format): ``1m0s``, ``0.25s``."""
    seconds = max(left.total_seconds(), 0.0)
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    secs = seconds - hours * 3600 - minutes * 60
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def quota_exhausted_headers(md: dict[str, str]) -> dict[str, str]:
    """The refusal's quota headers and ``Retry-After``: the seconds to the period's reset."""
    resets = _time(md.get("reset_time", ""))
    limit = _int(md.get("limit", ""))
    headers = quota_headers(limit, 0, resets) if limit is not None else {}
    headers.update(_retry_after(resets))
    return headers


def _retry_after(resets: datetime | None) -> dict[str, str]:
    if resets is None:
        return {}
    wait = (resets - datetime.now(UTC)).total_seconds()
    return {"Retry-After": str(max(math.ceil(wait), 1))}


def _time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
