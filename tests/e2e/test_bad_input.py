"""Bad input through the public interfaces of the running suite (hardening finding 5): each
case answered INTERNAL, UNKNOWN or UNAVAILABLE before; each is INVALID_ARGUMENT now, with
the field named, and nothing reaches a store."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.llm.v1 import llm_pb2
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from tests.e2e.conftest import Suite
from tests.e2e.test_fuzz import deep_struct
from tests.e2e.world import bearer, make_tenant

pytestmark = pytest.mark.e2e
C = grpc.StatusCode


async def invalid(call: object) -> tuple[str, str]:
    """(reason, first bad field) of an INVALID_ARGUMENT answer."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    err = caught.value
    assert err.code() == C.INVALID_ARGUMENT, (err.code(), err.details())
    info = error_info(err)
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    field = ""
    for detail in status.details if status is not None else ():
        if detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
            field = bad.field_violations[0].field
    return (info.reason if info else ""), field


def unsigned_token(key: object) -> str:
    """A cursor in the format of the first version: base64 JSON, anyone could mint it."""
    raw = json.dumps({"k": key, "s": "0" * 16}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_nul_in_names_ids_and_the_chat_model(suite: Suite):
    admin = bearer(suite.admin_key)
    idn = irpc.IdentityServiceStub(suite.channel("identity"))
    tenant = ipb.Tenant(name="evil\x00tenant")
    _, field = await invalid(
        idn.CreateTenant(ipb.CreateTenantRequest(tenant=tenant), metadata=admin)
    )
    assert field == "tenant.name"
    named = ipb.CreateTenantRequest(tenant=ipb.Tenant(name="ok"), request_id="a\x00")
    _, field = await invalid(idn.CreateTenant(named, metadata=admin))
    assert field == "request_id"
    t = await make_tenant(suite)
    _, field = await invalid(t.chat("hi", model="model\x00name"))  # was UNAVAILABLE
    assert field == "model"
    hist = history_pb2_grpc.HistoryServiceStub(suite.channel("history"))
    req = history_pb2.ListInteractionsRequest(tenant_id=t.tenant_id, user_id="u\x00")
    _, field = await invalid(hist.ListInteractions(req, metadata=admin))
    assert field == "user_id"


async def test_out_of_range_times(suite: Suite):
    admin = bearer(suite.admin_key)
    t = await make_tenant(suite)
    idn = irpc.IdentityServiceStub(suite.channel("identity"))
    key = ipb.CreateApiKeyRequest(tenant_id=t.tenant_id, user_id=t.user_id, role=ipb.ROLE_USER)
    key.expire_time.seconds = 10**13  # year ~318,000
    _, field = await invalid(idn.CreateApiKey(key, metadata=admin))
    assert field == "expire_time"
    hist = history_pb2_grpc.HistoryServiceStub(suite.channel("history"))
    req = history_pb2.GetUsageStatsRequest(tenant_id=t.tenant_id, group_by=history_pb2.GROUP_BY_DAY)
    req.start_time.seconds = -(10**12)
    req.end_time.GetCurrentTime()
    _, field = await invalid(hist.GetUsageStats(req, metadata=admin))
    assert field == "start_time"


async def test_nan_and_deep_structs_in_parameters(suite: Suite):
    t = await make_tenant(suite)
    params = struct_pb2.Struct()
    params.update({"temperature": float("nan")})
    _, field = await invalid(t.chat("hi", parameters=params))
    assert field.startswith("parameters")
    # A Struct past protobuf's recursion limit: was UNKNOWN naming DecodeError.
    request = llm_pb2.ChatRequest(
        model=t.model, messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="x")]
    )
    payload = request.SerializeToString() + b"\x32" + _len(deep_struct(150))
    call = suite.channel("llm").unary_unary("/llmgw.llm.v1.LlmService/Chat")
    reason, _ = await invalid(call(payload, metadata=bearer(t.user_key), timeout=10))
    assert reason == "MALFORMED_REQUEST"


def _len(body: bytes) -> bytes:
    n, out = len(body), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + body


async def test_forged_page_tokens_are_refused_and_real_ones_work(suite: Suite):
    admin = bearer(suite.admin_key)
    t = await make_tenant(suite)
    quo = quota_pb2_grpc.QuotaServiceStub(suite.channel("quota"))
    for i in range(2):
        await quo.CreatePlan(
            quota_pb2.CreatePlanRequest(
                plan=quota_pb2.Plan(tenant_id=t.tenant_id, name=f"p{i}", monthly_request_limit=5)
            ),
            metadata=admin,
        )
    # A ListPlans cursor whose id is not a UUID (was INTERNAL).
    forged = unsigned_token(["2026-01-01T00:00:00+00:00", "not-a-uuid"])
    req = quota_pb2.ListPlansRequest(tenant_id=t.tenant_id, page_size=1, page_token=forged)
    reason, field = await invalid(quo.ListPlans(req, metadata=admin))
    assert (reason, field) == ("INVALID_PAGE_TOKEN", "page_token")
    # History's cursor with an out-of-range time (was INTERNAL).
    hist = history_pb2_grpc.HistoryServiceStub(suite.channel("history"))
    bad = history_pb2.ListInteractionsRequest(
        tenant_id=t.tenant_id, page_token=unsigned_token([10**20, "x"])
    )
    reason, _ = await invalid(hist.ListInteractions(bad, metadata=admin))
    assert reason == "INVALID_PAGE_TOKEN"
    # A token the server minted continues the list; edited by one character it is refused.
    first = await quo.ListPlans(
        quota_pb2.ListPlansRequest(tenant_id=t.tenant_id, page_size=1), metadata=admin
    )
    assert first.next_page_token
    nxt = quota_pb2.ListPlansRequest(
        tenant_id=t.tenant_id, page_size=1, page_token=first.next_page_token
    )
    second = await quo.ListPlans(nxt, metadata=admin)
    assert second.plans and second.plans[0].plan_id != first.plans[0].plan_id
    token = first.next_page_token
    # The first character carries 6 bits of the body (the last one may be padding bits only).
    edited = ("B" if token[0] != "B" else "C") + token[1:]
    nxt.page_token = edited
    reason, _ = await invalid(quo.ListPlans(nxt, metadata=admin))
    assert reason == "INVALID_PAGE_TOKEN"
