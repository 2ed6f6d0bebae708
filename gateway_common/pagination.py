"""Opaque keyset page tokens, signed with a server key and bound to the query they continue.

A token is ``base64url(JSON body) "." base64url(HMAC-SHA256(key, scope + body))``. Only a
server holding the key can mint one, so a forged or edited token, or one replayed with other
filters, is refused with INVALID_ARGUMENT before anything reaches a store. The key comes from
settings (``GATEWAY_PAGE_TOKEN_KEY``, or derived from the service's own token), so every
replica of a service accepts the tokens of the others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gateway_common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAC_BYTES = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_US = int((datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) / timedelta(microseconds=1))
_MAX_US = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH) / timedelta(microseconds=1))
T = TypeVar("T")
Position = tuple[datetime, str]  # (sort time, id): a keyset position


def clamp_page_size(
    size: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    if size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(size or default, maximum)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def _bad(description: str) -> InvalidArgument:
    return InvalidArgument(
        f"page_token: {description}",
        "INVALID_PAGE_TOKEN",
        violations=[FieldViolation("page_token", description)],
    )


class PageTokens:
    """Mints and checks page tokens with one server key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("page token key must hold at least 16 bytes")
        self._key = key

    @classmethod
    def from_secret(cls, page_token_key: str, service_token: str) -> PageTokens:
        """The configured key, else one derived from the service's own token (which its
        replicas share)."""
        if page_token_key:
            return cls(page_token_key.encode())
        derived = hmac.new(service_token.encode(), b"llmgw page tokens v1", hashlib.sha256)
        return cls(derived.digest())

    @classmethod
    def ephemeral(cls) -> PageTokens:
        """A random key: tokens valid in this process only (tests, tools)."""
        return cls(secrets.token_bytes(32))

    def _mac(self, body: bytes, scope: dict[str, Any]) -> bytes:
        bound = json.dumps(scope, sort_keys=True, default=str).encode() + b"\n" + body
        return hmac.new(self._key, bound, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, key: list[Any], scope: dict[str, Any]) -> str:
        body = json.dumps(key, separators=(",", ":"), default=str).encode()
        return f"{_b64(body)}.{_b64(self._mac(body, scope))}"

    def decode(self, token: str, scope: dict[str, Any]) -> list[Any] | None:
        """The sort key the token continues after; None for an empty token."""
        if not token:
            return None
        body_text, _, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            raise _bad("malformed page token") from None
        if not hmac.compare_digest(mac, self._mac(body, scope)):
            raise _bad("not a page token of this query")
        try:
            key = json.loads(body)
        except ValueError:
            raise _bad("malformed page token") from None
        if not isinstance(key, list):
            raise _bad("malformed page token")
        return key

    def encode_position(self, position: Position, scope: dict[str, Any]) -> str:
        when, item_id = position
        if when.tzinfo is None:  # a store's naive UTC time
            when = when.replace(tzinfo=UTC)
        micros = (when - _EPOCH) // timedelta(microseconds=1)
        return self.encode([micros, item_id], scope)

    def decode_position(self, token: str, scope: dict[str, Any]) -> Position | None:
        key = self.decode(token, scope)
        if key is None:
            return None
        if (
            len(key) != 2
            or not isinstance(key[0], int)
            or not isinstance(key[1], str)
            or not _MIN_US <= key[0] <= _MAX_US
        ):
            raise _bad("malformed page token")
        return _EPOCH + timedelta(microseconds=key[0]), key[1]

    def decode_strings(self, token: str, scope: dict[str, Any], count: int) -> list[str] | None:
        """A key of ``count`` strings (e.g. (name, id)); INVALID_ARGUMENT otherwise."""
        key = self.decode(token, scope)
        if key is None:
            return None
        if len(key) != count or not all(isinstance(k, str) for k in key):
            raise _bad("malformed page token")
        return [str(k) for k in key]

    def next_page(
        self,
        rows: Sequence[T],
        size: int,
        position: Callable[[T], Position],
        scope: dict[str, Any],
    ) -> tuple[list[T], str]:
        """``rows`` holds up to size + 1 rows: the extra one says another page exists."""
        if len(rows) <= size:
            return list(rows), ""
        return list(rows[:size]), self.encode_position(position(rows[size - 1]), scope)
