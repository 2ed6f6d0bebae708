"""Descriptor-driven fuzzing of every RPC of the four services, as separate processes.

Every field of every request message (found through the generated descriptors, nested
messages included) is filled, one at a time, with hostile values: NUL characters, huge
strings, out-of-range integers and times, NaN and infinities, unknown enum values, Structs
nested past protobuf's recursion limit, forged page tokens. The rest of the request is a
plausible one (the fuzz tenant's ids), so each hostile value reaches as deep as it can.

No answer may be INTERNAL, UNKNOWN or UNIMPLEMENTED (a bug or a leak), and every call must
end by its deadline (nothing hangs): a bad value is a clear status such as INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, message_factory

from history_svc.servicer import HistoryInternalServicer
from identity_svc.servicer import IdentityInternalServicer
from llmgw.history.v1 import history_pb2
from llmgw.identity.v1 import identity_pb2
from llmgw.llm.v1 import llm_pb2
from llmgw.quota.v1 import quota_pb2
from quota_svc.servicer import QuotaInternalServicer
from tests.e2e.world import make_tenant
from tests.support import as_service

pytestmark = pytest.mark.e2e

FD = descriptor.FieldDescriptor
DEADLINE = 10.0
SLACK = 5.0  # the client's own deadline handling; a hang would be far past it
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNIMPLEMENTED}
INTERNAL = {  # each internal RPC is fuzzed as the service it allows, so the handler runs
    "llmgw.identity.v1.IdentityInternalService": IdentityInternalServicer,
    "llmgw.quota.v1.QuotaInternalService": QuotaInternalServicer,
    "llmgw.history.v1.HistoryInternalService": HistoryInternalServicer,
}
MODULES = {"identity": identity_pb2, "quota": quota_pb2, "history": history_pb2, "llm": llm_pb2}
MAX_DEPTH = 3
HUGE = "x" * 300_000
INT_LIMITS = {
    FD.TYPE_INT32: (2**31 - 1, -(2**31)),
    FD.TYPE_SINT32: (2**31 - 1, -(2**31)),
    FD.TYPE_SFIXED32: (2**31 - 1, -(2**31)),
    FD.TYPE_INT64: (2**63 - 1, -(2**63)),
    FD.TYPE_SINT64: (2**63 - 1, -(2**63)),
    FD.TYPE_SFIXED64: (2**63 - 1, -(2**63)),
    FD.TYPE_UINT32: (2**32 - 1, 0),
    FD.TYPE_FIXED32: (2**32 - 1, 0),
    FD.TYPE_UINT64: (2**64 - 1, 0),
    FD.TYPE_FIXED64: (2**64 - 1, 0),
}


def _forged(key: list[Any], mac: str = "") -> str:
    body = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
    return f"{body}.{mac}" if mac else body


FORGED_TOKENS = [
    _forged(["9999-12-31T23:59:59+00:00", "not-a-uuid"]),  # the unsigned format of before
    _forged({"k": [10**20, "x"], "s": "0" * 16}),  # type: ignore[arg-type]
    _forged([10**20, "x"], "AAAAAAAAAAAAAAAAAAAAAA"),
    _forged(["x"], "!!!"),
    "a.b.c",
]


@dataclass(frozen=True)
class Case:
    service: str  # identity, quota, history, llm
    method: descriptor.MethodDescriptor
    path: str  # field path, e.g. "model.name"
    label: str  # which hostile value
    payload: bytes

    def __str__(self) -> str:
        return f"{self.method.full_name} {self.path}={self.label}"


# --- hostile values -------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _length_delimited(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def deep_struct(depth: int) -> bytes:
    """A Struct ``{"a": {"a": ...}}`` ``depth`` levels deep, as wire bytes (the Python
    runtime refuses to build one past its recursion limit)."""
    inner = b""
    for _ in range(depth):
        entry = _length_delimited(1, b"a") + _length_delimited(2, _length_delimited(5, inner))
        inner = _length_delimited(1, entry)  # Struct.fields, Value.struct_value = 5
    return inner


def _wrap(numbers: list[int], body: bytes) -> bytes:
    for number in reversed(numbers):
        body = _length_delimited(number, body)
    return body


def scalar_values(field: descriptor.FieldDescriptor) -> Iterator[tuple[str, Any]]:
    if field.type == FD.TYPE_STRING:
        yield "nul", "a\x00b"
        yield "huge", HUGE
        yield "not-an-id", "../../' OR 1=1; --"
        if field.name.endswith("page_token"):
            for i, token in enumerate(FORGED_TOKENS):
                yield f"forged-token-{i}", token
    elif field.type in INT_LIMITS:
        high, low = INT_LIMITS[field.type]
        yield "max", high
        yield "min", low
        if low < 0:
            yield "minus-one", -1
    elif field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        yield "nan", float("nan")
        yield "inf", float("inf")
    elif field.type == FD.TYPE_ENUM:
        yield "unknown-enum", 12345


def message_values(field: descriptor.FieldDescriptor) -> Iterator[tuple[str, Any]]:
    name = field.message_type.full_name
    if name == "google.protobuf.Timestamp":
        yield "time-far-future", {"seconds": 2**62}
        yield "time-before-year-1", {"seconds": -62_135_596_801}
        yield "time-bad-nanos", {"seconds": 0, "nanos": -5}
    elif name == "google.protobuf.Struct":
        yield "struct-nan", {"x": float("nan"), "y": {"z": float("-inf")}}
        yield "struct-nul", {"k\x00": "v\x00"}
        yield "struct-huge", {"big": HUGE}
    elif name == "google.protobuf.FieldMask":
        yield "mask-nul", ["name\x00"]
        yield "mask-unknown", ["no_such_field", HUGE[:5000]]


# --- requests --------------------------------------------------------------------------


def _base(msg: Any, ids: dict[str, str], depth: int = 0) -> None:
    """Plausible ids in every field named like one (the fuzz tenant's)."""
    for field in msg.DESCRIPTOR.fields:
        if field.type == FD.TYPE_STRING and not field.is_repeated and field.name in ids:
            setattr(msg, field.name, ids[field.name])
        elif (
            field.type == FD.TYPE_MESSAGE
            and not field.is_repeated
            and depth < MAX_DEPTH
            and not field.message_type.full_name.startswith("google.protobuf.")
        ):
            _base(getattr(msg, field.name), ids, depth + 1)


def _set(msg: Any, field: descriptor.FieldDescriptor, value: Any) -> None:
    kind = field.message_type.full_name if field.type == FD.TYPE_MESSAGE else ""
    if kind == "google.protobuf.Timestamp":
        target = getattr(msg, field.name).add() if field.is_repeated else getattr(msg, field.name)
        target.seconds = value["seconds"]
        target.nanos = value.get("nanos", 0)
    elif kind == "google.protobuf.Struct":
        target = getattr(msg, field.name).add() if field.is_repeated else getattr(msg, field.name)
        target.update(value)
    elif kind == "google.protobuf.FieldMask":
        getattr(msg, field.name).paths.extend(value)
    elif field.is_repeated:
        getattr(msg, field.name).append(value)
    else:
        setattr(msg, field.name, value)


def _mutations(
    cls: type[Any], ids: dict[str, str], prefix: list[descriptor.FieldDescriptor], depth: int
) -> Iterator[tuple[str, str, bytes]]:
    """(path, label, serialized request) per field and hostile value, one field at a time."""
    holder_desc = prefix[-1].message_type if prefix else cls.DESCRIPTOR
    for field in holder_desc.fields:
        chain = [*prefix, field]
        path = ".".join(f.name for f in chain)
        values = list(scalar_values(field)) if field.type != FD.TYPE_MESSAGE else []
        if field.type == FD.TYPE_MESSAGE:
            values = list(message_values(field))
            if field.message_type.full_name == "google.protobuf.Struct":
                base = cls()
                _base(base, ids)
                deep = _wrap([f.number for f in chain], deep_struct(200))
                yield path, "struct-deep", base.SerializeToString() + deep
        for label, value in values:
            request = cls()
            _base(request, ids)
            holder = request
            for step in prefix:
                holder = getattr(holder, step.name)
                if step.is_repeated:
                    holder = holder.add()
            _set(holder, field, value)
            yield path, label, request.SerializeToString()
        nested = field.type == FD.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry
        if (
            nested
            and depth < MAX_DEPTH
            and not field.message_type.full_name.startswith("google.protobuf.")
        ):
            yield from _mutations(cls, ids, chain, depth + 1)


def cases(ids: dict[str, str]) -> list[Case]:
    out: list[Case] = []
    for service, module in MODULES.items():
        for svc in module.DESCRIPTOR.services_by_name.values():
            for method in svc.methods:
                cls = message_factory.GetMessageClass(method.input_type)
                out.append(Case(service, method, "", "empty", b""))
                for path, label, payload in _mutations(cls, ids, [], 0):
                    out.append(Case(service, method, path, label, payload))
    return out


# --- the test --------------------------------------------------------------------------


async def _call(channel: grpc.aio.Channel, case: Case, admin_key: str) -> tuple[str, float]:
    """The status code name the server answered, and how long it took."""
    path = f"/{case.method.containing_service.full_name}/{case.method.name}"
    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {admin_key}"),)
    servicer = INTERNAL.get(case.method.containing_service.full_name)
    if servicer is not None:
        caller = min(getattr(servicer, case.method.name).allowed_callers)
        metadata += as_service(caller)
    started = time.monotonic()
    try:
        if case.method.server_streaming:
            stream = channel.unary_stream(path)(case.payload, timeout=DEADLINE, metadata=metadata)
            async for _ in stream:
                pass
        else:
            await channel.unary_unary(path)(case.payload, timeout=DEADLINE, metadata=metadata)
        code = "OK"
    except grpc.aio.AioRpcError as err:
        code = err.code().name
    return code, time.monotonic() - started


async def test_no_hostile_value_reaches_internal_unknown_or_a_hang(suite):
    tenant = await make_tenant(suite, limit=1_000_000)
    ids = {
        "tenant_id": tenant.tenant_id,
        "user_id": tenant.user_id,
        "model": tenant.model,
        "model_name": tenant.model,
    }
    all_cases = cases(ids)
    methods = {c.method.full_name for c in all_cases}
    assert len(methods) >= 40, methods  # every RPC of the four services has fields to fuzz
    failures: list[str] = []
    gate = asyncio.Semaphore(8)

    async def run(case: Case) -> None:
        async with gate:
            code, took = await _call(suite.channel(case.service), case, suite.admin_key)
        if code in {c.name for c in FORBIDDEN} or code == "DEADLINE_EXCEEDED":
            failures.append(f"{case} -> {code}")
        elif took > DEADLINE + SLACK:
            failures.append(f"{case} -> {code} after {took:.1f}s")

    await asyncio.gather(*(run(c) for c in all_cases))
    assert not failures, f"{len(failures)} of {len(all_cases)} calls:\n" + "\n".join(
        sorted(failures)[:80]
    )


def test_the_fuzzer_reaches_every_rpc_and_field_kind():
    """The generator itself: every RPC, and every kind of hostile value, is produced."""
    ids = {"tenant_id": "t", "user_id": "u"}
    made = cases(ids)
    per_service = {
        m.full_name
        for mod in MODULES.values()
        for s in mod.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    }
    assert {c.method.full_name for c in made} == per_service
    labels = {c.label for c in made}
    for wanted in (
        "nul",
        "huge",
        "max",
        "nan",
        "unknown-enum",
        "time-far-future",
        "struct-deep",
        "struct-nan",
        "forged-token-0",
        "mask-nul",
    ):
        assert wanted in labels, wanted
