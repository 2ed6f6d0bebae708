"""Finding 11 through real gRPC servers: two identity replicas on one database and two
identity clients (the Authenticator llm, quota and history use), every cache long-lived
(60 s). A revoked key, a deleted user's key and a deleted tenant's key are refused by
every replica and every client within the revocation bound; a client whose feed fails
stops trusting its cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway_common.errors import Unauthenticated
from gateway_common.identity_client import Authenticator
from gateway_common.revocation import FeedTiming
from identity_svc.bootstrap import build
from identity_svc.config import IdentitySettings
from llmgw.identity.v1 import identity_pb2 as pb
from llmgw.identity.v1 import identity_pb2_grpc
from tests.integration.identity.conftest import Client
from tests.support import SERVICE_TOKENS, as_service, running_server

LONG_TTL = 60.0  # a cache that only a revocation can empty in time
TIMING = FeedTiming()  # the documented defaults: poll 0.5 s, bound 1.5 s
SLACK = 0.5  # scheduling on a loaded 2-core machine


@contextlib.asynccontextmanager
async def _replica(settings: IdentitySettings, engine: AsyncEngine) -> AsyncIterator[Client]:
    async with running_server(settings, build(settings, engine=engine)) as (_, channel):
        yield Client(
            identity_pb2_grpc.IdentityServiceStub(channel),  # type: ignore[arg-type]
            identity_pb2_grpc.IdentityInternalServiceStub(channel),  # type: ignore[arg-type]
            channel,
            "",
        )


async def _accepted(who: Client | Authenticator, key: str) -> bool:
    try:
        if isinstance(who, Authenticator):
            await who.authenticate(key, timeout=5)
        else:
            await who.stub.Authenticate(pb.AuthenticateRequest(api_key=key), timeout=5)
    except (grpc.aio.AioRpcError, Unauthenticated):
        return False
    return True


async def _warm(everyone: list[Client | Authenticator], keys: list[str]) -> None:
    """Every cache holds every key (the feeds have synced, so caches are trusted)."""
    for _ in range(2):
        for who in everyone:
            for key in keys:
                assert await _accepted(who, key)
        await asyncio.sleep(TIMING.interval * 2)


@pytest.fixture
def long_cache(settings: IdentitySettings) -> IdentitySettings:
    return settings.model_copy(update={"auth_cache_ttl_seconds": LONG_TTL})


async def test_revocations_reach_every_replica_and_client_within_the_bound(
    client: Client, long_cache: IdentitySettings, engine: AsyncEngine
) -> None:
    tenant, doomed_tenant = await client.tenant(), await client.tenant()
    keeper, leaver = await client.user(tenant.tenant_id), await client.user(tenant.tenant_id)
    gone = await client.user(doomed_tenant.tenant_id)
    revoked_key = await client.key(tenant.tenant_id, pb.ROLE_USER, keeper.user_id)
    kept_key = await client.key(tenant.tenant_id, pb.ROLE_USER, keeper.user_id)
    leaver_key = await client.key(tenant.tenant_id, pb.ROLE_USER, leaver.user_id)
    tenant_key = await client.key(doomed_tenant.tenant_id, pb.ROLE_USER, gone.user_id)
    async with _replica(long_cache, engine) as one, _replica(long_cache, engine) as two:
        clients = [
            Authenticator(replica.channel, SERVICE_TOKENS["llm"], ttl=LONG_TTL, timing=TIMING)
            for replica in (one, two)
        ]
        everyone: list[Client | Authenticator] = [one, two, *clients]
        try:
            await _warm(everyone, [revoked_key, kept_key, leaver_key, tenant_key])
            key_id = await one.stub.Authenticate(pb.AuthenticateRequest(api_key=revoked_key))
            admin = (("authorization", f"Bearer {client.admin_key}"),)
            await one.stub.RevokeApiKey(
                pb.RevokeApiKeyRequest(key_id=key_id.principal.key_id), metadata=admin
            )
            await two.stub.DeleteUser(
                pb.DeleteUserRequest(tenant_id=tenant.tenant_id, user_id=leaver.user_id),
                metadata=admin,
            )
            await one.stub.DeleteTenant(
                pb.DeleteTenantRequest(tenant_id=doomed_tenant.tenant_id, cascade=True),
                metadata=admin,
            )
            changed = time.monotonic()
            dead = [revoked_key, leaver_key, tenant_key]
            while any([await _accepted(w, k) for w in everyone for k in dead]):
                assert time.monotonic() - changed < TIMING.max_staleness + SLACK
                await asyncio.sleep(0.05)
            took = time.monotonic() - changed
            # Refused for good (no cache resurrects them), and the other key still works.
            await asyncio.sleep(TIMING.interval * 2)
            assert not any([await _accepted(w, k) for w in everyone for k in dead])
            assert all([await _accepted(w, kept_key) for w in everyone])
            print(f"revocations refused everywhere after {took:.2f} s")
        finally:
            for authenticator in clients:
                await authenticator.close()


async def test_a_client_whose_feed_fails_asks_identity_every_time(
    client: Client, long_cache: IdentitySettings, engine: AsyncEngine
) -> None:
    tenant = await client.tenant()
    user = await client.user(tenant.tenant_id)
    key = await client.key(tenant.tenant_id, pb.ROLE_USER, user.user_id)
    async with _replica(long_cache, engine) as one:
        # A wrong internal token: ListRevocations is refused, the feed never syncs.
        blind = Authenticator(one.channel, "not-the-token", ttl=LONG_TTL, timing=TIMING)
        try:
            for _ in range(3):
                assert await _accepted(blind, key)
                await asyncio.sleep(TIMING.interval)
            assert not blind.feed.trusted()
            principal = await blind.authenticate(key)
            admin = (("authorization", f"Bearer {client.admin_key}"),)
            await one.stub.RevokeApiKey(
                pb.RevokeApiKeyRequest(key_id=principal.key_id), metadata=admin
            )
            # The replica that revoked forgot at once; the blind client cached nothing.
            assert not await _accepted(blind, key)
        finally:
            await blind.close()


async def test_list_revocations_is_internal_and_checks_its_input(client: Client) -> None:
    request = pb.ListRevocationsRequest(after_sequence=0, page_size=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.internal.ListRevocations(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    token = as_service("quota")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.internal.ListRevocations(
            pb.ListRevocationsRequest(after_sequence=-1), metadata=token, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    tenant = await client.tenant()
    await client.call("DeleteTenant", pb.DeleteTenantRequest(tenant_id=tenant.tenant_id))
    page = await client.internal.ListRevocations(
        pb.ListRevocationsRequest(after_sequence=0, page_size=500), metadata=token, timeout=5
    )
    last = page.revocations[-1]
    assert (last.kind, last.target_id) == (pb.REVOCATION_KIND_TENANT, tenant.tenant_id)
    sequences = [r.sequence for r in page.revocations]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
