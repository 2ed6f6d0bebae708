"""Finding 11 with real processes: a second identity replica (same database) and a second
llm replica (asking that identity), both with 60 s key caches, next to the suite's own.
A revoked key, a deleted user's key and a deleted tenant's key are refused by both llm
replicas within the revocation bound, and no Chat is charged after it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway_common.revocation import FeedTiming
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.e2e.conftest import Suite
from tests.e2e.world import Tenant, bearer, key_id_of, make_tenant, user_key
from tests.support import ServiceProcess, free_port, wait_serving

BOUND = FeedTiming().max_staleness  # the documented default, GATEWAY_REVOCATION_BOUND_SECONDS
SLACK = 0.75  # process scheduling on a loaded 2-core machine


@contextlib.asynccontextmanager
async def _second_replicas(suite: Suite, log_dir: Path) -> AsyncIterator[grpc.aio.Channel]:
    """identity #2 and llm #2 (which asks identity #2); a channel to llm #2."""
    identity_port, llm_port = free_port(), free_port()
    env = {
        **suite.env,
        "IDENTITY_PORT": str(identity_port),
        "IDENTITY_METRICS_PORT": "0",
        "IDENTITY_AUTH_CACHE_TTL_SECONDS": "60",
        "LLM_PORT": str(llm_port),
        "LLM_METRICS_PORT": "0",
        "LLM_IDENTITY_TARGET": f"127.0.0.1:{identity_port}",
        "LLM_AUTH_CACHE_SECONDS": "60",
    }
    procs = [ServiceProcess("identity_svc", env, log_dir).start()]
    try:
        await wait_serving(f"127.0.0.1:{identity_port}", timeout=60)
        procs.append(ServiceProcess("llm_svc", env, log_dir).start())
        await wait_serving(f"127.0.0.1:{llm_port}", timeout=60)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{llm_port}") as channel:
            yield channel
    finally:
        for proc in procs:
            proc.stop()


async def _chat(llm: llm_pb2_grpc.LlmServiceStub, t: Tenant, key: str) -> grpc.StatusCode:
    request = llm_pb2.ChatRequest(
        model=t.model, messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="hi")]
    )
    try:
        await llm.Chat(request, metadata=bearer(key), timeout=10)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.timeout(180)
async def test_revoked_and_deleted_keys_stop_everywhere_within_the_bound(
    suite: Suite, log_dir: Path
) -> None:
    revoked_t, user_t, tenant_t = [await make_tenant(suite) for _ in range(3)]
    admin = bearer(suite.admin_key)
    identity = irpc.IdentityServiceStub(suite.channel("identity"))
    async with _second_replicas(suite, log_dir) as channel:
        llms = [revoked_t.llm, llm_pb2_grpc.LlmServiceStub(channel)]
        dead = [(revoked_t, revoked_t.user_key), (user_t, user_t.user_key)]
        dead.append((tenant_t, tenant_t.user_key))
        for _ in range(2):  # warm every cache (the feeds sync within a poll)
            for llm in llms:
                for t, key in dead:
                    assert await _chat(llm, t, key) == grpc.StatusCode.OK
            await asyncio.sleep(1.0)
        used = {t.tenant_id: await t.used() for t, _ in dead[:2]}
        await identity.RevokeApiKey(
            ipb.RevokeApiKeyRequest(key_id=await key_id_of(suite, revoked_t.user_key)),
            metadata=admin,
        )
        await identity.DeleteUser(
            ipb.DeleteUserRequest(tenant_id=user_t.tenant_id, user_id=user_t.user_id),
            metadata=admin,
        )
        await identity.DeleteTenant(
            ipb.DeleteTenantRequest(tenant_id=tenant_t.tenant_id, cascade=True), metadata=admin
        )
        changed = time.monotonic()
        accepted_late = 0
        while True:
            codes = [await _chat(llm, t, key) for llm in llms for t, key in dead]
            elapsed = time.monotonic() - changed
            if all(code == grpc.StatusCode.UNAUTHENTICATED for code in codes):
                break
            assert elapsed < BOUND + SLACK, f"still accepted after {elapsed:.2f} s: {codes}"
            accepted_late += codes.count(grpc.StatusCode.OK)
            await asyncio.sleep(0.05)
        took = time.monotonic() - changed
        charged = {t.tenant_id: await t.used() for t, _ in dead[:2]}
        await asyncio.sleep(1.0)
        for llm in llms:
            for t, key in dead:
                assert await _chat(llm, t, key) == grpc.StatusCode.UNAUTHENTICATED
        # Nothing is charged once refused; before, only the calls accepted in the bound.
        assert {t.tenant_id: await t.used() for t, _ in dead[:2]} == charged
        assert sum(charged.values()) - sum(used.values()) <= accepted_late
        print(f"refused by both llm replicas after {took:.2f} s ({accepted_late} accepted)")
    # The keys that were not touched still work through the suite.
    other = await make_tenant(suite)
    fresh = await user_key(suite, other.tenant_id, other.user_id)
    assert await _chat(other.llm, other, fresh) == grpc.StatusCode.OK
