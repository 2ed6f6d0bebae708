"""One check of every incoming request, before any handler runs (called by the error
boundary), so bad input is INVALID_ARGUMENT in every service and never reaches a store:

- U+0000 in a string: refused, except in the free texts listed in ``NUL_ALLOWED`` (chat
  contents and recorded questions/answers, which history stores escaped); PostgreSQL text
  and jsonb, and FerretDB on PostgreSQL, cannot hold it.
- a ``google.protobuf.Timestamp`` outside 0001-01-01 .. 9999-12-31, or with bad nanos;
- NaN or an infinity in a ``double``/``float`` field or a Struct number (not JSON).

Bytes that do not parse (including a Struct nested past protobuf's recursion limit) are
refused by the boundary itself: see :func:`undecodable`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, message

from gateway_common.errors import InvalidArgument
from gateway_common.protoconv import timestamp_in_range

# Fields whose text (and, for Structs, every string inside) may contain U+0000.
NUL_ALLOWED = frozenset(
    {
        "llmgw.llm.v1.Message.content",
        "llmgw.llm.v1.ChatRequest.parameters",
        "llmgw.llm.v1.ChatStreamRequest.parameters",
        "llmgw.history.v1.Interaction.question",
        "llmgw.history.v1.Interaction.answer",
        "llmgw.history.v1.Interaction.error_reason",
        "llmgw.history.v1.InteractionMetadata.prompt_parameters",
    }
)
_FD = descriptor.FieldDescriptor
_FLOATS = (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT)
_TIMESTAMP = "google.protobuf.Timestamp"


def check_request(request: message.Message) -> None:
    """Raises InvalidArgument naming the first bad field (path like ``model.name``)."""
    _check(request, "", nul_ok=False)


def _check(msg: message.Message, prefix: str, nul_ok: bool) -> None:
    if msg.DESCRIPTOR.full_name == _TIMESTAMP:
        if not timestamp_in_range(msg):  # type: ignore[arg-type]
            raise InvalidArgument.field(
                prefix or "timestamp", "timestamp out of range (years 1 to 9999)"
            )
        return
    transparent = msg.DESCRIPTOR.full_name in _JSON_TYPES  # named by their JSON path
    for field, value in msg.ListFields():
        path = prefix if transparent else (f"{prefix}.{field.name}" if prefix else field.name)
        allowed = nul_ok or field.full_name in NUL_ALLOWED
        if field.is_repeated and not _is_map(field):
            for i, item in enumerate(value):
                _value(field, item, f"{path}[{i}]", allowed)
        elif _is_map(field):
            value_field = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
            for key, item in value.items():
                if isinstance(key, str):
                    _text(key, path, allowed)
                _value(value_field, item, f"{path}.{key}" if _printable(key) else path, allowed)
        else:
            _value(field, value, path, allowed)


# Struct, Value and ListValue are JSON: a bad number in ``parameters`` is ``parameters.x``
# (or ``parameters.list[2]``), never ``parameters.fields.x.number_value``.
_JSON_TYPES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


def _value(field: Any, value: Any, path: str, nul_ok: bool) -> None:
    if field.type == _FD.TYPE_MESSAGE:
        _check(value, path, nul_ok)
    elif field.type == _FD.TYPE_STRING:
        _text(value, path, nul_ok)
    elif field.type in _FLOATS and not math.isfinite(value):
        raise InvalidArgument.field(path, "numbers must be finite (no NaN or infinity)")


def _text(value: str, path: str, nul_ok: bool) -> None:
    if not nul_ok and "\x00" in value:
        raise InvalidArgument.field(path, "must not contain NUL (U+0000) characters")


def _is_map(field: Any) -> bool:
    return bool(
        field.type == _FD.TYPE_MESSAGE
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _printable(key: Any) -> bool:
    return isinstance(key, str) and key.isprintable() and len(key) <= 64


class Undecodable:
    """Stands in for a request whose bytes did not parse."""


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer`` returning :class:`Undecodable` instead of raising, so the boundary
    answers INVALID_ARGUMENT (grpc itself would answer UNKNOWN/INTERNAL)."""
    if deserializer is None:
        return None
    parse = deserializer

    def parse_or_mark(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # noqa: BLE001 - DecodeError, RecursionError, ...
            return Undecodable()

    return parse_or_mark


def undecodable() -> InvalidArgument:
    return InvalidArgument(
        "the request could not be parsed (malformed, or nested too deeply)",
        "MALFORMED_REQUEST",
    )
