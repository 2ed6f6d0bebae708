"""identity's internal RPCs through a real server: each answers only the service it names."""

from __future__ import annotations

import uuid

import grpc
import pytest

from gateway_common.status import error_info
from llmgw.identity.v1 import identity_pb2 as pb
from tests.integration.identity.conftest import Client
from tests.support import SERVICE_TOKENS, as_service

C = grpc.StatusCode


async def _refused(call: object) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info(caught.value)
    return caught.value.code(), info.reason if info else "", caught.value.details() or ""


async def test_resolve_model_answers_llm_only(client: Client):
    tid = (await client.tenant()).tenant_id
    for caller in ("quota", "history", "identity"):
        code, reason, _ = await _refused(client.resolve(tid, "any", SERVICE_TOKENS[caller]))
        assert (code, reason) == (C.PERMISSION_DENIED, "CALLER_NOT_ALLOWED"), caller
    for token in ("", "not-a-service"):
        code, reason, _ = await _refused(client.resolve(tid, "any", token))
        assert (code, reason) == (C.UNAUTHENTICATED, "INTERNAL_ONLY")
    code, reason, _ = await _refused(client.resolve(tid, "no-such-model"))  # llm gets through
    assert (code, reason) == (C.NOT_FOUND, "MODEL_NOT_FOUND")


async def test_membership_answers_quota_the_same_for_strangers_and_nobody(client: Client):
    a, b = (await client.tenant()).tenant_id, (await client.tenant()).tenant_id
    user_a = (await client.user(a)).user_id

    def check(tenant_id: str, user_id: str, caller: str = "quota") -> object:
        req = pb.CheckMembershipRequest(tenant_id=tenant_id, user_id=user_id)
        return client.internal.CheckMembership(req, metadata=as_service(caller), timeout=10)

    await check(a, user_a)  # type: ignore[misc]
    strangers = [await _refused(check(b, user_a)), await _refused(check(a, str(uuid.uuid4())))]
    assert strangers == [(C.NOT_FOUND, "USER_NOT_FOUND", "no such user in this tenant")] * 2
    code, _, _ = await _refused(check(a, "not-a-uuid"))
    assert code == C.INVALID_ARGUMENT
    for caller in ("llm", "history"):
        code, reason, _ = await _refused(check(a, user_a, caller))
        assert (code, reason) == (C.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
