"""Late commit: a Commit of a reservation the settlement already expired (refunded)
charges it again, once; a released one stays refused; a past month's late commit
never touches the new month's counter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway_common import db
from llmgw.quota.v1 import quota_pb2 as R
from quota_svc import unit_of_work
from quota_svc.counting import CountingService
from tests.integration.quota.conftest import (
    INTERNAL,
    Quota,
    Tenant,
    bearer,
    new_plan,
    reason_of,
    reserve,
    subscribe,
)


@pytest.fixture
async def engine(quota: Quota) -> AsyncIterator[AsyncEngine]:
    eng = db.make_engine(quota.settings.database_url, pool_size=1)
    yield eng
    await eng.dispose()


async def _settle(quota: Quota, engine: AsyncEngine) -> int:
    """The sweep of another replica, after the TTL (as the crash test does)."""
    quota.clock.advance(seconds=quota.settings.reservation_ttl_seconds + 1)
    return await CountingService(unit_of_work.factory(engine), quota.clock, 300).settle_expired()


async def _ledger(engine: AsyncEngine, request_id: str) -> tuple[str, str | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT estado, motivo FROM reserva_requisicao WHERE request_id = :r"),
                {"r": request_id},
            )
        ).one()
    return str(row.estado), row.motivo


async def _used(q: Quota, tenant: Tenant, user: str, at: datetime | None = None) -> int:
    req = R.GetUsageRequest(tenant_id=tenant.tenant_id, user_id=user)
    if at is not None:
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(at)
        req.time.CopyFrom(ts)
    return int((await q.public.GetUsage(req, metadata=bearer(tenant.admin_key))).used)


async def _commit(q: Quota, request_id: str) -> R.Reservation:
    reply = await q.internal.Commit(R.CommitRequest(request_id=request_id), metadata=INTERNAL)
    return reply.reservation


async def _setup(q: Quota, limit: int = 5) -> tuple[Tenant, str]:
    tenant = q.new_tenant()
    plan = await new_plan(q, tenant.admin_key, tenant.tenant_id, limit)
    sub = await subscribe(q, tenant, plan)
    return tenant, sub.user_id


async def test_commit_after_expiry_charges_again_once(quota: Quota, engine: AsyncEngine) -> None:
    tenant, user = await _setup(quota)
    await reserve(quota, tenant, user, "late-1")
    assert await _used(quota, tenant, user) == 1
    assert await _settle(quota, engine) >= 1
    assert await _ledger(engine, "late-1") == ("expired", "TTL_EXPIRED")
    assert await _used(quota, tenant, user) == 0

    first = await _commit(quota, "late-1")
    assert first.state == R.RESERVATION_STATE_COMMITTED
    assert await _used(quota, tenant, user) == 1
    assert await _ledger(engine, "late-1") == ("committed", "LATE_COMMIT")

    # Replays (sequential and concurrent) return the same reservation, count nothing.
    again = await _commit(quota, "late-1")
    assert again == first
    replays = await asyncio.gather(*(_commit(quota, "late-1") for _ in range(8)))
    assert all(r == first for r in replays)
    assert await _used(quota, tenant, user) == 1
    # Now committed: a Release is refused, and a second sweep finds nothing of it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quota.internal.Release(R.ReleaseRequest(request_id="late-1"), metadata=INTERNAL)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await _settle(quota, engine)
    assert await _used(quota, tenant, user) == 1


async def test_concurrent_late_commits_count_once(quota: Quota, engine: AsyncEngine) -> None:
    tenant, user = await _setup(quota)
    await reserve(quota, tenant, user, "late-race")
    await _settle(quota, engine)
    replies = await asyncio.gather(*(_commit(quota, "late-race") for _ in range(10)))
    assert {r.state for r in replies} == {R.RESERVATION_STATE_COMMITTED}
    assert await _used(quota, tenant, user) == 1


async def test_late_commit_may_pass_the_limit_by_that_request(
    quota: Quota, engine: AsyncEngine
) -> None:
    tenant, user = await _setup(quota, limit=1)
    await reserve(quota, tenant, user, "over-1")
    await _settle(quota, engine)
    await reserve(quota, tenant, user, "over-2")  # the refunded slot was taken
    await _commit(quota, "over-1")  # it was served: charged anyway
    assert await _used(quota, tenant, user) == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await reserve(quota, tenant, user)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_released_reservation_still_cannot_be_committed(
    quota: Quota, engine: AsyncEngine
) -> None:
    tenant, user = await _setup(quota)
    await reserve(quota, tenant, user, "rel-1")
    await quota.internal.Release(R.ReleaseRequest(request_id="rel-1"), metadata=INTERNAL)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _commit(quota, "rel-1")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(err.value) == "RESERVATION_RELEASED"
    assert (await _ledger(engine, "rel-1"))[0] == "released"
    assert await _used(quota, tenant, user) == 0
    await _settle(quota, engine)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _commit(quota, "rel-1")
    assert reason_of(err.value) == "RESERVATION_RELEASED"


async def test_late_commit_after_month_change_leaves_new_month_alone(
    quota: Quota, engine: AsyncEngine
) -> None:
    tenant, user = await _setup(quota)
    quota.clock.current = datetime(2031, 3, 31, 23, 58, tzinfo=UTC)
    await reserve(quota, tenant, user, "mc-kept")
    await reserve(quota, tenant, user, "mc-late")
    await _commit(quota, "mc-kept")
    quota.clock.current = datetime(2031, 4, 1, 0, 5, tzinfo=UTC)
    await reserve(quota, tenant, user, "apr-1")  # April starts counting from zero
    await _settle(quota, engine)  # mc-late and apr-1 expire; only apr-1's refund lands
    march = datetime(2031, 3, 20, tzinfo=UTC)
    assert await _used(quota, tenant, user, march) == 1
    await reserve(quota, tenant, user, "apr-2")
    assert await _used(quota, tenant, user) == 1

    late = await _commit(quota, "mc-late")
    assert late.state == R.RESERVATION_STATE_COMMITTED
    assert late.period_start.ToDatetime(tzinfo=UTC) == datetime(2031, 3, 1, tzinfo=UTC)
    assert await _used(quota, tenant, user) == 1  # April untouched
    assert await _used(quota, tenant, user, march) == 2  # the ledger counts it in March
    assert await _ledger(engine, "mc-late") == ("committed", "LATE_COMMIT")
    assert await _commit(quota, "mc-late") == late
    assert await _used(quota, tenant, user, march) == 2
