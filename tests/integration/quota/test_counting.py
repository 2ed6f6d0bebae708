"""Reserve and Settle through a real gRPC server on PostgreSQL: codes, ErrorInfo
reasons, QuotaFailure, replays, month boundaries, expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway_common import db
from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2
from llmgw.quota.v1 import quota_pb2
from quota_svc import unit_of_work
from quota_svc.counting import CountingService
from quota_svc.mapping import expired_record
from tests.integration.quota.conftest import (
    INTERNAL,
    Quota,
    bearer,
    commit,
    new_plan,
    reason_of,
    release,
    reserve,
    subscribe,
)
from tests.support import as_service

R = quota_pb2


async def _usage(q: Quota, tenant, user_id: str) -> quota_pb2.GetUsageResponse:
    return await q.public.GetUsage(
        R.GetUsageRequest(tenant_id=tenant.tenant_id, user_id=user_id),
        metadata=bearer(tenant.admin_key),
    )


async def _setup(q: Quota, limit: int):
    tenant = q.new_tenant()
    plan = await new_plan(q, tenant.admin_key, tenant.tenant_id, limit)
    sub = await subscribe(q, tenant, plan)
    return tenant, sub


async def test_internal_rpcs_need_the_service_credential(quota: Quota) -> None:
    tenant, sub = await _setup(quota, 5)
    req = R.ReserveRequest(request_id="x", tenant_id=tenant.tenant_id, user_id=sub.user_id)
    for md in ((), (("x-service-token", "wrong"),), bearer(tenant.admin_key)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await quota.internal.Reserve(req, metadata=md)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason_of(err.value) == "INTERNAL_ONLY"
    for caller in ("history", "quota", "identity"):  # known services, but not quota's caller
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await quota.internal.Reserve(req, metadata=as_service(caller))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason_of(err.value) == "CALLER_NOT_ALLOWED"


async def test_limit_reached_is_resource_exhausted_with_quota_failure(quota: Quota) -> None:
    tenant, sub = await _setup(quota, 2)
    first = await reserve(quota, tenant, sub.user_id)
    assert (first.used, first.limit, first.remaining) == (1, 2, 1)
    assert first.state == R.RESERVATION_STATE_RESERVED
    await reserve(quota, tenant, sub.user_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await reserve(quota, tenant, sub.user_id)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info(err.value)
    assert info is not None
    assert info.reason == "QUOTA_EXCEEDED" and info.domain == "quota.llmgw"
    assert info.metadata["reset_time"] == "2031-04-01T00:00:00+00:00"
    assert info.metadata["limit"] == "2"
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    failures = [d for d in status.details if d.Is(error_details_pb2.QuotaFailure.DESCRIPTOR)]
    qf = error_details_pb2.QuotaFailure()
    failures[0].Unpack(qf)
    assert qf.violations[0].subject == f"subscription:{sub.subscription_id}"
    assert (await _usage(quota, tenant, sub.user_id)).used == 2


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("none", "NO_ACTIVE_SUBSCRIPTION"),
        ("future", "SUBSCRIPTION_NOT_STARTED"),
        ("ended", "SUBSCRIPTION_ENDED"),
    ],
)
async def test_no_active_subscription_is_failed_precondition(
    quota: Quota, setup: str, reason: str
) -> None:
    tenant = quota.new_tenant()
    user = str(uuid.uuid4())
    plan = await new_plan(quota, tenant.admin_key, tenant.tenant_id, 10)
    if setup == "future":
        start = datetime(2031, 5, 1, tzinfo=UTC)
        await subscribe(quota, tenant, plan, user, start_time=_ts(start))
    if setup == "ended":
        sub = await subscribe(quota, tenant, plan, user, start_time=_ts(datetime(2031, 1, 1)))
        await quota.public.EndSubscription(
            R.EndSubscriptionRequest(
                tenant_id=tenant.tenant_id, subscription_id=sub.subscription_id
            ),
            metadata=bearer(tenant.admin_key),
        )
        quota.clock.advance(seconds=1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await reserve(quota, tenant, user)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(err.value) == reason


def _ts(value: datetime):
    from quota_svc.mapping import ts

    return ts(value if value.tzinfo else value.replace(tzinfo=UTC))


async def test_invalid_arguments(quota: Quota) -> None:
    tenant, sub = await _setup(quota, 2)
    bad = [
        R.ReserveRequest(request_id="", tenant_id=tenant.tenant_id, user_id=sub.user_id),
        R.ReserveRequest(request_id="a", tenant_id="nope", user_id=sub.user_id),
        R.ReserveRequest(
            request_id="b", tenant_id=tenant.tenant_id, user_id=sub.user_id, time_zone="Mars/X"
        ),
    ]
    for req in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await quota.internal.Reserve(req, metadata=INTERNAL)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await commit(quota, tenant, sub.user_id, "unknown-1")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(err.value) == "RESERVATION_NOT_FOUND"


async def test_replays_change_nothing_and_return_the_first_answer(quota: Quota) -> None:
    tenant, sub = await _setup(quota, 3)
    user = sub.user_id
    first = await reserve(quota, tenant, user, "rid-a")
    again = await reserve(quota, tenant, user, "rid-a")
    assert again == first and (await _usage(quota, tenant, user)).used == 1
    c1 = await commit(quota, tenant, user, "rid-a")
    c2 = await commit(quota, tenant, user, "rid-a")
    assert c1 == c2 and c1.state == R.RESERVATION_STATE_COMMITTED
    # Reserve replayed after the commit still answers, and still counts once.
    assert (await reserve(quota, tenant, user, "rid-a")).request_id == "rid-a"
    await reserve(quota, tenant, user, "rid-b")
    r1 = await release(quota, tenant, user, "rid-b", "provider 503")
    r2 = await release(quota, tenant, user, "rid-b")
    assert r1.state == r2.state == R.RESERVATION_STATE_RELEASED
    assert r1.used == 1
    assert (await _usage(quota, tenant, user)).used == 1
    # Crossed transitions are refused with a clear reason.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await commit(quota, tenant, user, "rid-b")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(err.value) == "RESERVATION_RELEASED"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await release(quota, tenant, user, "rid-a")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(err.value) == "RESERVATION_COMMITTED"
    # A refusal is stored: replaying it repeats it even after room was made.
    await reserve(quota, tenant, user, "rid-c")
    await reserve(quota, tenant, user, "rid-d")
    with pytest.raises(grpc.aio.AioRpcError):
        await reserve(quota, tenant, user, "rid-e")
    await release(quota, tenant, user, "rid-d")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await reserve(quota, tenant, user, "rid-e")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await _usage(quota, tenant, user)).used == 2


async def test_month_boundary_starts_from_zero(quota: Quota) -> None:
    tenant, sub = await _setup(quota, 2)
    user = sub.user_id
    quota.clock.current = datetime(2031, 3, 31, 23, 59, 59, tzinfo=UTC)
    await reserve(quota, tenant, user, "mb-1")
    await reserve(quota, tenant, user, "mb-2")
    with pytest.raises(grpc.aio.AioRpcError):
        await reserve(quota, tenant, user)
    quota.clock.current = datetime(2031, 4, 1, 0, 0, 0, tzinfo=UTC)
    april = await reserve(quota, tenant, user, "mb-3")
    assert (april.used, april.remaining) == (1, 1)
    assert april.period_start.ToDatetime(tzinfo=UTC) == datetime(2031, 4, 1, tzinfo=UTC)
    assert april.period_end.ToDatetime(tzinfo=UTC) == datetime(2031, 5, 1, tzinfo=UTC)
    # Releasing a March reservation in April does not refund April's count.
    await release(quota, tenant, user, "mb-1")
    usage = await _usage(quota, tenant, user)
    assert (usage.used, usage.limit) == (1, 2)
    march = await quota.public.GetUsage(
        R.GetUsageRequest(
            tenant_id=tenant.tenant_id, user_id=user, time=_ts(datetime(2031, 3, 10))
        ),
        metadata=bearer(tenant.admin_key),
    )
    assert march.used == 1  # mb-2 still counted in March (mb-1 refunded)
    assert march.period_end.ToDatetime(tzinfo=UTC) == datetime(2031, 4, 1, tzinfo=UTC)


async def test_month_follows_the_tenant_time_zone(quota: Quota) -> None:
    tenant, sub = await _setup(quota, 5)
    # 02:00 UTC on 1 April is still March in São Paulo (UTC-3).
    quota.clock.current = datetime(2031, 4, 1, 2, 0, tzinfo=UTC)
    res = await reserve(quota, tenant, sub.user_id, time_zone="America/Sao_Paulo")
    assert res.period_start.ToDatetime(tzinfo=UTC) == datetime(2031, 3, 1, 3, tzinfo=UTC)
    assert res.period_end.ToDatetime(tzinfo=UTC) == datetime(2031, 4, 1, 3, tzinfo=UTC)
    quota.clock.current = datetime(2031, 4, 1, 3, 0, tzinfo=UTC)
    res = await reserve(quota, tenant, sub.user_id, time_zone="America/Sao_Paulo")
    assert res.used == 1


async def test_open_reservation_is_expired_refunded_and_recorded_as_an_error(
    quota: Quota,
) -> None:
    """The crash test: a caller reserves and dies; the reservation is refunded and its
    error record goes into the outbox in the same transaction; a Settle arriving after
    that is refused (the request stays uncharged)."""
    tenant, sub = await _setup(quota, 5)
    user = sub.user_id
    await reserve(quota, tenant, user, "crash-1")
    kept = await reserve(quota, tenant, user, "crash-2")
    await commit(quota, tenant, user, "crash-2")
    assert kept.used == 2
    engine = db.make_engine(quota.settings.database_url, pool_size=1)
    # A separate CountingService = the sweep of another (restarted) replica.
    counting = CountingService(unit_of_work.factory(engine), quota.clock, expired_record, 300)
    quota.clock.advance(seconds=299)
    assert await counting.settle_expired() == 0
    quota.clock.advance(seconds=2)
    assert await counting.settle_expired() >= 1
    assert (await _usage(quota, tenant, user)).used == 1
    stored = await quota.internal.GetSettlement(
        R.GetSettlementRequest(request_id="crash-1"), metadata=INTERNAL
    )
    assert stored.reservation.state == R.RESERVATION_STATE_EXPIRED
    assert stored.interaction.status == history_pb2.INTERACTION_STATUS_ERROR
    assert stored.interaction.error_reason == "RESERVATION_EXPIRED"
    assert (stored.interaction.tenant_id, stored.interaction.user_id) == (tenant.tenant_id, user)
    for late in (commit, release):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await late(quota, tenant, user, "crash-1")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(err.value) == "RESERVATION_EXPIRED"
    assert (await _usage(quota, tenant, user)).used == 1
    await engine.dispose()
