"""Reading credentials from call metadata."""

from __future__ import annotations

from collections.abc import Iterable

from gateway_common.errors import Unauthenticated

AUTHORIZATION = "authorization"
REQUEST_ID = "x-request-id"

Metadata = Iterable[tuple[str, str | bytes]]


def metadata_value(metadata: Metadata | None, key: str) -> str:
    for k, v in metadata or ():
        if k == key:
            return v.decode() if isinstance(v, bytes) else v
    return ""


def bearer_token(metadata: Metadata | None) -> str:
    """The API key of ``authorization: Bearer <key>``; UNAUTHENTICATED when absent."""
    value = metadata_value(metadata, AUTHORIZATION).strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "missing credential: send 'authorization: Bearer <api key>'", "MISSING_CREDENTIAL"
        )
    return token.strip()
