"""Protobuf <-> Python values, with one error rule: a value the client sent that cannot be
converted is INVALID_ARGUMENT naming the field, never an exception that becomes INTERNAL.

Every service's mapping module uses these instead of calling ``ToDatetime``/``MessageToDict``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from gateway_common.errors import InvalidArgument

# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
MIN_SECONDS = -62_135_596_800
MAX_SECONDS = 253_402_300_799


def timestamp_in_range(value: timestamp_pb2.Timestamp) -> bool:
    return MIN_SECONDS <= value.seconds <= MAX_SECONDS and 0 <= value.nanos < 1_000_000_000


def to_timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def optional_timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if value is None else to_timestamp(value)


def timestamp_value(value: timestamp_pb2.Timestamp, field: str) -> datetime:
    """An aware UTC datetime; INVALID_ARGUMENT when outside Timestamp's range."""
    if not timestamp_in_range(value):
        raise InvalidArgument.field(field, "timestamp out of range (years 1 to 9999)")
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument.field(field, "timestamp out of range (years 1 to 9999)") from None


def from_timestamp(message: Any, field: str, path: str = "") -> datetime | None:
    """The timestamp ``field`` of ``message``; None when unset. ``path`` names it in errors."""
    if not message.HasField(field):
        return None
    return timestamp_value(getattr(message, field), path or field)


def struct_to_dict(value: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """A Struct as a JSON-compatible dict; NaN and infinities (not JSON) are refused."""
    out: dict[str, Any] = json_format.MessageToDict(value)
    _check_finite(out, field)
    return out


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _check_finite(value: Any, field: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument.field(field, "numbers must be finite (no NaN or infinity)")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item, field)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item, field)
