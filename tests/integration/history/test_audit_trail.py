"""historico_ajustes and logs_sistema through history's gRPC API on the real store:
idempotent batches, Portuguese documents, scoped and paginated lists, erasure clearing
personal values, llm's best-effort writer."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest

from gateway_common.audit import Actor, AuditEvent, Change
from gateway_common.audit_proto import adjustment_out, value_in
from gateway_common.system_events import Severity, SystemEvent
from gateway_common.system_events_rpc import HistoryEventWriter
from history_svc.mongo_audit import ADJUSTMENTS
from llmgw.history.v1 import audit_pb2 as apb
from llmgw.history.v1 import history_pb2
from tests.integration.history.conftest import Api, bearer
from tests.support import SERVICE_TOKENS, as_service

T0 = dt.datetime(2021, 5, 1, 12, tzinfo=dt.UTC)  # before any erasure of the tests
ADMIN = Actor("k-aa", "tenant_admin", "tenant-a")


def event(n: int, **kw: object) -> AuditEvent:
    fields: dict[str, object] = {
        "service": "quota",
        "resource": "subscription",
        "resource_id": f"s{n}",
        "action": "plan_changed",
        "actor": ADMIN,
        "tenant_id": "tenant-a",
        "user_id": "user-a1",
        "changes": (Change("plan", {"name": "A", "limit": 1}, {"name": "B", "limit": 2}),),
        "time": T0 + dt.timedelta(seconds=n),
        "event_id": str(uuid.uuid4()),
    }
    fields.update(kw)
    return AuditEvent(**fields)  # type: ignore[arg-type]


async def record(api: Api, *events: AuditEvent, caller: str = "quota") -> list[int]:
    reply = await api.internal.RecordAdjustments(
        apb.RecordAdjustmentsRequest(adjustments=[adjustment_out(e) for e in events]),
        metadata=as_service(caller),
    )
    return [r.outcome for r in reply.results]


async def listed(api: Api, key: str, **filters: object) -> list[apb.Adjustment]:
    out: list[apb.Adjustment] = []
    token = ""
    while True:
        reply = await api.public.ListAdjustments(
            apb.ListAdjustmentsRequest(page_size=2, page_token=token, **filters),  # type: ignore[arg-type]
            metadata=bearer(key),
        )
        out += reply.adjustments
        token = reply.next_page_token
        if not token:
            return out


async def test_batches_are_idempotent_and_stored_in_portuguese(api: Api) -> None:
    first, second = event(1), event(2)
    bad = apb.Adjustment(adjustment_id="x")  # no resource, action or time
    reply = await api.internal.RecordAdjustments(
        apb.RecordAdjustmentsRequest(adjustments=[adjustment_out(first), bad]),
        metadata=as_service("identity"),
    )
    assert [r.outcome for r in reply.results] == [
        apb.ENTRY_OUTCOME_CREATED,
        apb.ENTRY_OUTCOME_REJECTED,
    ]
    assert await record(api, first, second) == [
        apb.ENTRY_OUTCOME_DUPLICATE,
        apb.ENTRY_OUTCOME_CREATED,
    ]
    doc = await api.collection.database[ADJUSTMENTS].find_one({"_id": first.event_id})
    assert doc["acao"] == "plan_changed" and doc["recurso"] == "subscription"
    assert doc["autor"] == {
        "chave_id": "k-aa", "papel": "tenant_admin", "distribuidor_id": "tenant-a",
        "usuario_id": "",
    }  # fmt: skip
    assert doc["alteracoes"][0]["antes"] == {"name": "A", "limit": 1}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await record(api, event(3), caller="llm")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_lists_are_scoped_filtered_paginated_and_oldest_first(api: Api) -> None:
    events = [event(n) for n in range(5)]
    events.append(event(9, tenant_id="tenant-b", user_id="user-b1"))
    events.append(event(6, resource="user", action="updated", user_id="user-a2"))
    await record(api, *reversed(events))
    mine = await listed(api, "key-admin-a")
    assert [e.resource_id for e in mine] == ["s0", "s1", "s2", "s3", "s4", "s6"]
    assert {e.tenant_id for e in await listed(api, "key-platform")} == {"tenant-a", "tenant-b"}
    only = await listed(api, "key-admin-a", user_id="user-a2", resource="user")
    assert [e.resource_id for e in only] == ["s6"]
    window = await listed(
        api,
        "key-platform",
        tenant_id="tenant-a",
        action="plan_changed",
        start_time=adjustment_out(events[1]).time,
        end_time=adjustment_out(events[3]).time,
    )
    assert [e.resource_id for e in window] == ["s1", "s2"]
    plan = mine[0].changes[0]
    assert (value_in(plan.before), value_in(plan.after)) == (
        {"name": "A", "limit": 1},
        {"name": "B", "limit": 2},
    )
    for key, tenant in (("key-admin-a", "tenant-b"), ("key-user-a1", "")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await listed(api, key, tenant_id=tenant)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_erasure_is_recorded_once_and_clears_personal_values(api: Api) -> None:
    personal = (Change("email", "a@x", "b@x", personal=True), Change("role", "x", "y"))
    before = event(1, resource="user", action="updated", changes=personal)
    await record(api, before)
    erase = history_pb2.DeleteUserInteractionsRequest(
        tenant_id="tenant-a", user_id="user-a1", request_id="erase-1"
    )
    for _ in range(2):  # a replay records nothing more
        await api.public.DeleteUserInteractions(erase, metadata=bearer("key-admin-a"))
    late = event(2, resource="user", action="updated", changes=personal)  # delivered after
    await record(api, late)
    found = await listed(api, "key-admin-a", user_id="user-a1")
    erased = [e for e in found if e.action == "erased"]
    assert len(erased) == 1 and erased[0].service == "history"
    assert erased[0].request_id == "erase-1" and erased[0].actor.key_id == "k-aa"
    for e in (x for x in found if x.action == "updated"):
        changes = {c.field: (value_in(c.before), value_in(c.after)) for c in e.changes}
        assert changes == {"email": (None, None), "role": ("x", "y")}


async def test_system_events_from_llm_listed_by_platform_admins_only(api: Api) -> None:
    writer = HistoryEventWriter(api.channel, SERVICE_TOKENS["llm"], 5.0)
    events = [
        SystemEvent("llm", "circuit_open", Severity.WARNING, {"deployment_id": "d1"}),
        SystemEvent("llm", "circuit_closed", Severity.INFO, {"deployment_id": "d1"}),
    ]
    await writer.write(events)
    await writer.write(events)  # idempotent per event id
    reply = await api.public.ListSystemEvents(
        apb.ListSystemEventsRequest(service="llm"), metadata=bearer("key-platform")
    )
    assert sorted(e.event for e in reply.events) == ["circuit_closed", "circuit_open"]  # once each
    assert reply.events[0].details["deployment_id"] == "d1"
    warnings = await api.public.ListSystemEvents(
        apb.ListSystemEventsRequest(min_severity=apb.SEVERITY_WARNING),
        metadata=bearer("key-platform"),
    )
    assert [e.event for e in warnings.events if e.service == "llm"] == ["circuit_open"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.public.ListSystemEvents(
            apb.ListSystemEventsRequest(), metadata=bearer("key-admin-a")
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
