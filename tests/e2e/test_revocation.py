"""Finding 11 with real processes: a second replica of identity (same database), llm,
quota and history (the last three asking identity #2), all with 60 s key caches, next to
the suite's own. A revoked key, a deleted user's key and a deleted tenant's keys are
refused by every replica within the revocation bound, and no Chat is charged after it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from gateway_common.revocation import FeedTiming
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.llm.v1 import llm_pb2, llm_pb2_grpc
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from tests.e2e.conftest import Suite
from tests.e2e.world import Tenant, bearer, key_id_of, make_tenant, user_key
from tests.support import ServiceProcess, free_port, service_env, wait_serving

BOUND = FeedTiming().max_staleness  # the documented default, GATEWAY_REVOCATION_BOUND_SECONDS
SLACK = 0.75  # process scheduling on a loaded 2-core machine
Probe = Callable[[], Awaitable[grpc.StatusCode]]


@contextlib.asynccontextmanager
async def _second_replicas(
    suite: Suite, log_dir: Path
) -> AsyncIterator[dict[str, grpc.aio.Channel]]:
    """identity #2, and llm, quota and history #2 asking identity #2: channels to them."""
    ports = {name: free_port() for name in ("identity", "llm", "quota", "history")}
    env = {**suite.env, "IDENTITY_AUTH_CACHE_TTL_SECONDS": "60", "LLM_AUTH_CACHE_SECONDS": "60"}
    env |= {"QUOTA_IDENTITY_CACHE_SECONDS": "60", "HISTORY_AUTH_CACHE_SECONDS": "60"}
    env["LLM_HTTP_PORT"] = str(free_port())  # the first llm holds the suite's HTTP port
    for name, port in ports.items():
        env[f"{name.upper()}_PORT"] = str(port)
        env[f"{name.upper()}_METRICS_PORT"] = "0"
        if name != "identity":
            env[f"{name.upper()}_IDENTITY_TARGET"] = f"127.0.0.1:{ports['identity']}"
    procs: list[ServiceProcess] = []
    try:
        for name in ("identity", "quota", "history", "llm"):
            own = {**env, **service_env(name)}  # each replica presents its service's token
            procs.append(ServiceProcess(f"{name}_svc", own, log_dir).start())
            await wait_serving(f"127.0.0.1:{ports[name]}", timeout=60)
        channels = {n: grpc.aio.insecure_channel(f"127.0.0.1:{p}") for n, p in ports.items()}
        try:
            yield channels
        finally:
            for channel in channels.values():
                await channel.close()
    finally:
        for proc in procs:
            proc.stop()


async def _code(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _chat(channel: grpc.aio.Channel, t: Tenant, key: str) -> Probe:
    request = llm_pb2.ChatRequest(
        model=t.model, messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="hi")]
    )
    stub = llm_pb2_grpc.LlmServiceStub(channel)
    return lambda: _code(stub.Chat(request, metadata=bearer(key), timeout=10))


def _usage(channel: grpc.aio.Channel, t: Tenant, key: str) -> Probe:
    request = quota_pb2.GetUsageRequest(tenant_id=t.tenant_id, user_id=t.user_id)
    stub = quota_pb2_grpc.QuotaServiceStub(channel)
    return lambda: _code(stub.GetUsage(request, metadata=bearer(key), timeout=10))


def _history(channel: grpc.aio.Channel, t: Tenant, key: str) -> Probe:
    request = history_pb2.ListInteractionsRequest(tenant_id=t.tenant_id, page_size=1)
    stub = history_pb2_grpc.HistoryServiceStub(channel)
    return lambda: _code(stub.ListInteractions(request, metadata=bearer(key), timeout=10))


async def _admin_key(suite: Suite, tenant_id: str) -> str:
    reply = await irpc.IdentityServiceStub(suite.channel("identity")).CreateApiKey(
        ipb.CreateApiKeyRequest(tenant_id=tenant_id, role=ipb.ROLE_TENANT_ADMIN),
        metadata=bearer(suite.admin_key),
    )
    return str(reply.secret)


@pytest.mark.timeout(240)
async def test_revoked_and_deleted_keys_stop_everywhere_within_the_bound(
    suite: Suite, log_dir: Path
) -> None:
    revoked_t, user_t, tenant_t = [await make_tenant(suite) for _ in range(3)]
    revoked_admin, tenant_admin = [
        await _admin_key(suite, t.tenant_id) for t in (revoked_t, tenant_t)
    ]
    admin = bearer(suite.admin_key)
    identity = irpc.IdentityServiceStub(suite.channel("identity"))
    async with _second_replicas(suite, log_dir) as second:
        pairs = [(suite.channel(n), second[n]) for n in ("llm", "quota", "history")]
        chats: list[Probe] = []  # the probes that charge (the deleted tenant has no usage)
        probes: list[Probe] = []
        for llm, quota, history in zip(*pairs, strict=True):
            chats += [_chat(llm, t, t.user_key) for t in (revoked_t, user_t)]
            probes += [_chat(llm, tenant_t, tenant_t.user_key)]
            probes += [_usage(quota, revoked_t, revoked_admin)]
            probes += [_usage(quota, tenant_t, tenant_admin)]
            probes += [_history(history, revoked_t, revoked_admin)]
            probes += [_history(history, tenant_t, tenant_admin)]
        probes = chats + probes
        for _ in range(2):  # warm every cache (the feeds sync within a poll)
            assert [await p() for p in probes] == [grpc.StatusCode.OK] * len(probes)
            await asyncio.sleep(1.0)
        used = {t.tenant_id: await t.used() for t in (revoked_t, user_t)}
        for key in (revoked_t.user_key, revoked_admin):
            await identity.RevokeApiKey(
                ipb.RevokeApiKeyRequest(key_id=await key_id_of(suite, key)), metadata=admin
            )
        await identity.DeleteUser(
            ipb.DeleteUserRequest(tenant_id=user_t.tenant_id, user_id=user_t.user_id),
            metadata=admin,
        )
        await identity.DeleteTenant(
            ipb.DeleteTenantRequest(tenant_id=tenant_t.tenant_id, cascade=True), metadata=admin
        )
        changed = time.monotonic()
        chats_accepted = 0
        while True:
            codes = [await p() for p in probes]
            elapsed = time.monotonic() - changed
            if all(code == grpc.StatusCode.UNAUTHENTICATED for code in codes):
                break
            assert elapsed < BOUND + SLACK, f"still accepted after {elapsed:.2f} s: {codes}"
            chats_accepted += codes[: len(chats)].count(grpc.StatusCode.OK)
            await asyncio.sleep(0.05)
        took = time.monotonic() - changed
        charged = {t.tenant_id: await t.used() for t in (revoked_t, user_t)}
        await asyncio.sleep(1.0)
        assert all([await p() == grpc.StatusCode.UNAUTHENTICATED for p in probes])
        # Nothing is charged once refused; before, only the Chats accepted within the bound.
        assert {t.tenant_id: await t.used() for t in (revoked_t, user_t)} == charged
        assert sum(charged.values()) - sum(used.values()) <= chats_accepted
        print(f"refused by every replica after {took:.2f} s ({chats_accepted} chats accepted)")
    # Keys nobody touched still work through the suite.
    other = await make_tenant(suite)
    fresh = await user_key(suite, other.tenant_id, other.user_id)
    assert await _chat(suite.channel("llm"), other, fresh)() == grpc.StatusCode.OK
