"""Idempotent mutations (AIP-155): a ``request_id`` names one request of one caller.

The id is scoped by the caller's tenant and the method (each service keys its store on
them), and bound to the request's content by a fingerprint: the request message without
its ``request_id``, serialised canonically (JSON with sorted keys, proto field names,
defaults omitted) and hashed with the message's full name, so the same bytes of content
give the same fingerprint on every replica and across methods never collide.

- same id, same content: the first result is replayed;
- same id, other content: INVALID_ARGUMENT (``REQUEST_ID_REUSED``, naming ``request_id``),
  never the first result and never another tenant's data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import Message

from gateway_common.errors import FieldViolation, InvalidArgument

ID_FIELD = "request_id"


@dataclass(frozen=True)
class RequestKey:
    """The caller's request_id ("" = not idempotent) and its request's fingerprint."""

    request_id: str
    fingerprint: str

    def require_same(self, stored_fingerprint: str | None) -> None:
        """Refuse a replay whose content differs from the first request's. A row stored
        before fingerprints existed (None) replays as before."""
        if stored_fingerprint is not None and stored_fingerprint != self.fingerprint:
            raise reused()


def reused() -> InvalidArgument:
    description = "already used for a different request: use a new request_id"
    return InvalidArgument(
        f"request_id: {description}",
        "REQUEST_ID_REUSED",
        [FieldViolation("request_id", description)],
    )


def fingerprint(message: Message, id_field: str = ID_FIELD) -> str:
    """sha256 over the message's full name and its canonical JSON minus ``id_field``."""
    content = type(message)()
    content.CopyFrom(message)
    content.ClearField(id_field)
    body = json.dumps(
        json_format.MessageToDict(content, preserving_proto_field_name=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(message.DESCRIPTOR.full_name.encode())
    digest.update(b"\0")
    digest.update(body.encode())
    return digest.hexdigest()


def request_key(message: Message) -> RequestKey:
    """The key of an incoming request that has a ``request_id`` field."""
    return RequestKey(str(getattr(message, ID_FIELD)), fingerprint(message))
