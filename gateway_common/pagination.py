"""Opaque keyset page tokens, bound to the query they continue.

A token is base64url(JSON) of the last row's sort key plus a digest of the
filters; a token replayed with other filters, or tampered with, is refused
with INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from gateway_common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def clamp_page_size(
    size: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    if size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(size or default, maximum)


def _scope_digest(scope: dict[str, Any]) -> str:
    raw = json.dumps(scope, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_token(key: list[Any], scope: dict[str, Any]) -> str:
    body = json.dumps({"k": key, "s": _scope_digest(scope)}, default=str).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_token(token: str, scope: dict[str, Any]) -> list[Any] | None:
    """The sort key the token continues after; None for an empty token."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, digest = body["k"], body["s"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidArgument.field("page_token", "malformed page token") from None
    if not isinstance(key, list) or digest != _scope_digest(scope):
        raise InvalidArgument.field("page_token", "page token does not match this query")
    return key
