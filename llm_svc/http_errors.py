"""Domain errors as the HTTP status and ``{"error": {message, type, param, code}}`` body an
OpenAI client expects (the SDKs pick their exception class by the status). The same
errors the gRPC boundary maps to status codes; nothing else (never a stack, SQL or a
secret: an unexpected error is a generic 500). Standard library only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway_common.errors import DomainError, InvalidArgument, ResourceExhausted

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
    out = error(status, exc.message, kind, code, param)
    if isinstance(exc, ResourceExhausted):
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


def quota_exhausted_headers(md: dict[str, str]) -> dict[str, str]:
    """The refusal's quota headers and ``Retry-After``: the seconds to the period's reset."""
    resets = _time(md.get("reset_time", ""))
    limit = _int(md.get("limit", ""))
    headers = quota_headers(limit, 0, resets) if limit is not None else {}
    if resets is not None:
        wait = (resets - datetime.now(UTC)).total_seconds()
        headers["Retry-After"] = str(max(math.ceil(wait), 1))
    return headers


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
