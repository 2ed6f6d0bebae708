"""Per-minute limits and monthly token budgets at their edges, on the real PostgreSQL
(the server's clock is moved across minute and month boundaries)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway_common import db
from llmgw.quota.v1 import quota_pb2
from quota_svc import metrics, unit_of_work
from quota_svc.counting import CountingService
from quota_svc.mapping import expired_record
from tests.integration.quota.conftest import INTERNAL, Quota, bearer, reason_of, release
from tests.integration.quota.limits_support import (
    charge,
    hold,
    limited_user,
    reserve_request,
    usage,
)

MINUTE_START = datetime(2031, 3, 15, 12, 0, tzinfo=UTC)  # the conftest's BASE_TIME


def _retry_delay(err: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    raise AssertionError("no RetryInfo in the status")


def _quota_failure(err: grpc.aio.AioRpcError) -> error_details_pb2.QuotaFailure:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            qf = error_details_pb2.QuotaFailure()
            detail.Unpack(qf)
            return qf
    raise AssertionError("no QuotaFailure in the status")


async def _refused(q: Quota, req: quota_pb2.ReserveRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await q.internal.Reserve(req, metadata=INTERNAL)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    return err.value


# -- requests per minute ------------------------------------------------------------------


async def test_fourth_in_a_minute_is_refused_until_the_next_minute(quota: Quota) -> None:
    tenant, user = await limited_user(quota, per_minute=3)
    quota.clock.current = MINUTE_START.replace(second=10)
    got = [await hold(quota, tenant, user) for _ in range(3)]
    assert [r.minute_used for r in got] == [1, 2, 3]
    assert got[-1].minute_limit == 3 and got[-1].HasField("minute_limit")
    assert got[-1].minute_reset.ToDatetime(tzinfo=UTC) == MINUTE_START.replace(minute=1)
    err = await _refused(quota, reserve_request(tenant.tenant_id, user))
    assert reason_of(err) == "RATE_LIMITED"
    assert _retry_delay(err) == pytest.approx(50.0)
    assert "per UTC minute" in _quota_failure(err).violations[0].description
    # The last instant of the window is still in it.
    quota.clock.current = MINUTE_START.replace(second=59, microsecond=999_999)
    err = await _refused(quota, reserve_request(tenant.tenant_id, user))
    assert reason_of(err) == "RATE_LIMITED" and _retry_delay(err) == pytest.approx(0.000001)
    # The first instant of the next minute is a new window.
    quota.clock.current = MINUTE_START.replace(minute=1)
    first = await hold(quota, tenant, user)
    assert first.minute_used == 1 and first.used == 4  # the month counted the four served


async def test_the_window_is_fixed_not_sliding(quota: Quota) -> None:
    """Three at 12:00:59 and three at 12:01:00 all pass: the documented burst at a
    boundary (at most 2 x limit within 60 s), never more than limit in one minute."""
    tenant, user = await limited_user(quota, per_minute=3)
    quota.clock.current = MINUTE_START.replace(second=59)
    for _ in range(3):
        await hold(quota, tenant, user)
    quota.clock.current = MINUTE_START.replace(minute=1)
    for _ in range(3):
        await hold(quota, tenant, user)
    assert reason_of(await _refused(quota, reserve_request(tenant.tenant_id, user))) == (
        "RATE_LIMITED"
    )


async def test_a_release_does_not_give_back_the_minute(quota: Quota) -> None:
    """The minute counts admissions (as the providers' rate limits do); the month's
    count is refunded by a release, the minute's is not."""
    tenant, user = await limited_user(quota, per_minute=1)
    r = await hold(quota, tenant, user)
    await release(quota, tenant, user, r.request_id)
    assert (await usage(quota, tenant, user)).used == 0
    assert reason_of(await _refused(quota, reserve_request(tenant.tenant_id, user))) == (
        "RATE_LIMITED"
    )


async def test_a_refusal_replays_with_a_shorter_delay(quota: Quota) -> None:
    tenant, user = await limited_user(quota, per_minute=1)
    await hold(quota, tenant, user)
    req = reserve_request(tenant.tenant_id, user, rid="rl-replay")
    assert _retry_delay(await _refused(quota, req)) == pytest.approx(60.0)
    quota.clock.advance(seconds=20)
    assert _retry_delay(await _refused(quota, req)) == pytest.approx(40.0)


async def test_the_monthly_limit_is_reported_before_the_minute(quota: Quota) -> None:
    tenant, user = await limited_user(quota, monthly=1, per_minute=1)
    await hold(quota, tenant, user)
    err = await _refused(quota, reserve_request(tenant.tenant_id, user))
    assert reason_of(err) == "QUOTA_EXCEEDED"
    assert _retry_delay(err) == pytest.approx(
        (datetime(2031, 4, 1, tzinfo=UTC) - MINUTE_START).total_seconds()
    )


# -- tokens per month ----------------------------------------------------------------------


async def test_the_hold_is_the_bound_and_max_tokens_is_lowered(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=1000)
    r = await hold(quota, tenant, user, base=100, n=2, max_tokens=300)
    assert (r.tokens_reserved, r.max_tokens, r.tokens_used) == (700, 300, 700)
    assert r.token_limit == 1000
    lowered = await hold(quota, tenant, user, base=100, n=2, max_tokens=300)
    assert (lowered.max_tokens, lowered.tokens_reserved, lowered.tokens_used) == (100, 300, 1000)
    err = await _refused(quota, reserve_request(tenant.tenant_id, user, base=0, n=1))
    assert reason_of(err) == "TOKEN_BUDGET_EXHAUSTED"
    assert _retry_delay(err) == pytest.approx(
        (datetime(2031, 4, 1, tzinfo=UTC) - MINUTE_START).total_seconds()
    )


async def test_no_max_asked_gets_what_remains(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=500)
    r = await hold(quota, tenant, user, base=50, n=3, max_tokens=0)
    assert r.max_tokens == 150 and r.tokens_reserved == 500


async def test_budget_exactly_used_then_a_short_answer_makes_room(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=100)
    r = await hold(quota, tenant, user, base=60, n=1, max_tokens=40)
    assert r.tokens_used == 100 and r.max_tokens == 40  # exactly the budget
    # Not even one completion token fits: refused, not lowered to zero.
    err = await _refused(quota, reserve_request(tenant.tenant_id, user, base=0, n=1))
    assert reason_of(err) == "TOKEN_BUDGET_EXHAUSTED"
    done = await charge(quota, tenant, user, r.request_id, prompt=20, completion=10)
    assert done.tokens_reserved == 30 and done.tokens_used == 30  # the rest returned
    u = await usage(quota, tenant, user)
    assert (u.tokens_used, u.token_limit, u.tokens_remaining) == (30, 100, 70)
    again = await hold(quota, tenant, user, base=10, n=1, max_tokens=1000)
    assert again.max_tokens == 60 and again.tokens_used == 100


async def test_a_prompt_alone_over_the_budget_is_refused(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=100)
    err = await _refused(quota, reserve_request(tenant.tenant_id, user, base=100, n=1))
    assert reason_of(err) == "TOKEN_BUDGET_EXHAUSTED"
    # Without completion (embeddings: choices 0) the prompt may use the budget exactly.
    tenant2, user2 = await limited_user(quota, tokens=100)
    r = await hold(quota, tenant2, user2, base=100, n=0)
    assert r.tokens_reserved == 100 and r.max_tokens == 0


async def test_the_month_rolls_over(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=100)
    r = await hold(quota, tenant, user, base=50, n=1, max_tokens=50)
    await charge(quota, tenant, user, r.request_id, 50, 50)
    err = await _refused(quota, reserve_request(tenant.tenant_id, user, base=1, n=1))
    assert reason_of(err) == "TOKEN_BUDGET_EXHAUSTED"
    quota.clock.current = datetime(2031, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    await _refused(quota, reserve_request(tenant.tenant_id, user, base=1, n=1))
    quota.clock.current = datetime(2031, 4, 1, tzinfo=UTC)
    fresh = await hold(quota, tenant, user, base=10, n=1, max_tokens=20)
    assert fresh.tokens_used == 30 and fresh.period_start.ToDatetime(tzinfo=UTC).month == 4
    # A March reservation settled in April changes nothing in April.
    u = await usage(quota, tenant, user)
    assert u.tokens_used == 30


async def test_a_late_settlement_of_last_month_leaves_the_new_month_alone(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=100)
    r = await hold(quota, tenant, user, base=10, n=1, max_tokens=90)
    quota.clock.current = datetime(2031, 4, 1, 0, 0, 1, tzinfo=UTC)
    new = await hold(quota, tenant, user, base=10, n=1, max_tokens=10)
    await charge(quota, tenant, user, r.request_id, 10, 5)
    assert (await usage(quota, tenant, user)).tokens_used == new.tokens_used == 20


async def test_an_answer_over_the_bound_is_charged_and_counted(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=1000)
    before = metrics.TOKENS_OVER_BOUND._value.get()
    r = await hold(quota, tenant, user, base=10, n=1, max_tokens=10)
    done = await charge(quota, tenant, user, r.request_id, prompt=15, completion=12)
    assert done.tokens_used == 27
    assert metrics.TOKENS_OVER_BOUND._value.get() - before == 7


async def test_release_and_expiry_return_the_hold(quota: Quota) -> None:
    tenant, user = await limited_user(quota, tokens=100)
    a = await hold(quota, tenant, user, base=10, n=1, max_tokens=40)
    await release(quota, tenant, user, a.request_id)  # no usage reported: nothing charged
    assert (await usage(quota, tenant, user)).tokens_used == 0
    await hold(quota, tenant, user, base=10, n=1, max_tokens=40)
    assert (await usage(quota, tenant, user)).tokens_used == 50
    engine = db.make_engine(quota.settings.database_url, pool_size=1)
    try:
        counting = CountingService(unit_of_work.factory(engine), quota.clock, expired_record)
        quota.clock.advance(seconds=301)
        assert await counting.settle_expired() >= 1
    finally:
        await engine.dispose()
    assert (await usage(quota, tenant, user)).tokens_used == 0


async def test_plans_show_and_edit_the_new_limits(quota: Quota) -> None:
    tenant = quota.new_tenant()
    created = await quota.public.CreatePlan(
        quota_pb2.CreatePlanRequest(
            plan=quota_pb2.Plan(
                tenant_id=tenant.tenant_id, name="pro", monthly_request_limit=10,
                requests_per_minute_limit=3, monthly_token_limit=5000,
                allowed_models=["gpt-4o-mini"],
            )
        ),
        metadata=bearer(tenant.admin_key),
    )  # fmt: skip
    p = created.plan
    assert (p.requests_per_minute_limit, p.monthly_token_limit) == (3, 5000)
    assert list(p.allowed_models) == ["gpt-4o-mini"]
    cleared = await quota.public.UpdatePlan(
        quota_pb2.UpdatePlanRequest(
            plan=quota_pb2.Plan(plan_id=p.plan_id, monthly_token_limit=10),
            update_mask={"paths": ["requests_per_minute_limit", "monthly_token_limit",
                                   "allowed_models"]},
        ),
        metadata=bearer(tenant.admin_key),
    )  # fmt: skip
    c = cleared.plan
    assert not c.HasField("requests_per_minute_limit") and c.monthly_token_limit == 10
    assert list(c.allowed_models) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quota.public.CreatePlan(
            quota_pb2.CreatePlanRequest(
                plan=quota_pb2.Plan(
                    tenant_id=tenant.tenant_id, name="bad", monthly_request_limit=1,
                    requests_per_minute_limit=-1,
                )
            ),
            metadata=bearer(tenant.admin_key),
        )  # fmt: skip
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_plan_listing_models_refuses_the_others(quota: Quota) -> None:
    tenant, user = await limited_user(quota, models=("gpt-4o-mini", "small"))
    req = reserve_request(tenant.tenant_id, user)
    req.model = "gpt-4o"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quota.internal.Reserve(req, metadata=INTERNAL)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(err.value) == "MODEL_NOT_ALLOWED"
    ok = reserve_request(tenant.tenant_id, user)
    ok.model = "small"
    assert (await quota.internal.Reserve(ok, metadata=INTERNAL)).reservation.used == 1
    # Nothing counted for the refusal; a plan listing none allows every model.
    assert (await usage(quota, tenant, user)).used == 1
    open_tenant, open_user = await limited_user(quota)
    anyone = reserve_request(open_tenant.tenant_id, open_user)
    anyone.model = "whatever"
    await quota.internal.Reserve(anyone, metadata=INTERNAL)
