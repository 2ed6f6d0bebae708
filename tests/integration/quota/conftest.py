"""Fixtures of quota's integration tests: one fresh, migrated database for the
session, an in-process server with a fake authenticator, fake memberships and a movable clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from gateway_common.errors import NotFound, Unauthenticated
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal, Role
from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from quota_svc import migrate
from quota_svc.bootstrap import build
from quota_svc.config import QuotaSettings
from quota_svc.ports import Members
from tests.support import (
    as_service,
    fresh_pg_database,
    running_server,
    service_env,
    sqlalchemy_url,
)


class FakeAuthenticator(Authenticator):
    """Identity's answers without identity: api key -> principal."""

    def __init__(self) -> None:
        self.keys: dict[str, Principal] = {}

    async def authenticate(self, api_key: str, timeout: float = 5.0) -> Principal:
        try:
            return self.keys[api_key]
        except KeyError:
            raise Unauthenticated("invalid API key", "INVALID_API_KEY") from None


class FakeMembers(Members):
    """Identity's memberships without identity: the (tenant, user) pairs that exist."""

    def __init__(self) -> None:
        self.pairs: set[tuple[str, str]] = set()

    async def check(self, tenant_id: str, user_id: str, timeout: float) -> None:
        if (tenant_id, user_id) not in self.pairs:
            raise NotFound("no such user in this tenant", "USER_NOT_FOUND")


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class Tenant:
    """A tenant with an admin key, and helpers for its users' keys."""

    tenant_id: str
    admin_key: str
    auth: FakeAuthenticator

    def user_key(self, user_id: str) -> str:
        key = f"user-{user_id}"
        self.auth.keys[key] = Principal(Role.USER, self.tenant_id, user_id, key_id=key)
        return key


@dataclass
class Quota:
    public: quota_pb2_grpc.QuotaServiceAsyncStub
    internal: quota_pb2_grpc.QuotaInternalServiceAsyncStub
    auth: FakeAuthenticator
    clock: MovableClock
    settings: QuotaSettings
    members: FakeMembers
    platform_key: str = "platform"

    def new_tenant(self, time_zone: str = "UTC") -> Tenant:
        tenant_id = str(uuid.uuid4())
        key = f"admin-{tenant_id}"
        self.auth.keys[key] = Principal(
            Role.TENANT_ADMIN, tenant_id, str(uuid.uuid4()), key_id=key, time_zone=time_zone
        )
        return Tenant(tenant_id, key, self.auth)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


INTERNAL = as_service("llm")  # quota's one internal caller


@pytest.fixture(scope="session")
def quota_dsn() -> Iterator[str]:
    with fresh_pg_database("quota") as dsn:
        migrate.upgrade(dsn)
        yield dsn


@pytest.fixture(scope="session")
def quota_settings(quota_dsn: str) -> QuotaSettings:
    return QuotaSettings(
        database_url=sqlalchemy_url(quota_dsn),
        **service_env("quota"),
        db_pool_size=5,
        settle_interval_seconds=0,  # tests settle explicitly
        relay_enabled=False,  # tests deliver the outbox explicitly (test_outbox.py)
        reservation_ttl_seconds=300,
    )


@pytest.fixture(scope="session")
async def quota(quota_settings: QuotaSettings) -> AsyncIterator[Quota]:
    auth = FakeAuthenticator()
    auth.keys["platform"] = Principal(Role.PLATFORM_ADMIN, key_id="platform")
    clock = MovableClock(datetime(2031, 3, 15, 12, 0, tzinfo=UTC))
    members = FakeMembers()
    spec = build(quota_settings, authenticator=auth, members=members, clock=clock)
    async with running_server(quota_settings, spec) as (_, channel):
        yield Quota(
            quota_pb2_grpc.QuotaServiceStub(channel),
            quota_pb2_grpc.QuotaInternalServiceStub(channel),
            auth,
            clock,
            quota_settings,
            members,
        )


BASE_TIME = datetime(2031, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> None:
    """Each test starts mid-March 2031 (tests move the clock freely)."""
    if "quota" in request.fixturenames:
        request.getfixturevalue("quota").clock.current = BASE_TIME


async def new_plan(q: Quota, key: str, tenant_id: str = "", limit: int = 100) -> str:
    reply = await q.public.CreatePlan(
        quota_pb2.CreatePlanRequest(
            plan=quota_pb2.Plan(
                tenant_id=tenant_id, name=f"plan-{uuid.uuid4().hex[:8]}",
                monthly_request_limit=limit,
            )
        ),
        metadata=bearer(key),
    )  # fmt: skip
    return reply.plan.plan_id


async def subscribe(
    q: Quota, tenant: Tenant, plan_id: str, user_id: str = "", **extra: object
) -> quota_pb2.Subscription:
    user_id = user_id or str(uuid.uuid4())
    q.members.pairs.add((tenant.tenant_id, user_id))  # a user of the tenant, as in identity
    reply = await q.public.CreateSubscription(
        quota_pb2.CreateSubscriptionRequest(
            tenant_id=tenant.tenant_id, user_id=user_id,
            plan_id=plan_id, **extra,  # type: ignore[arg-type]
        ),
        metadata=bearer(tenant.admin_key),
    )  # fmt: skip
    return reply.subscription


async def reserve(
    q: Quota, tenant: Tenant, user_id: str, request_id: str = "", time_zone: str = ""
) -> quota_pb2.Reservation:
    reply = await q.internal.Reserve(
        quota_pb2.ReserveRequest(
            request_id=request_id or uuid.uuid4().hex, tenant_id=tenant.tenant_id,
            user_id=user_id, time_zone=time_zone,
        ),
        metadata=INTERNAL,
    )  # fmt: skip
    return reply.reservation


def reason_of(err: grpc.aio.AioRpcError) -> str:
    info = error_info(err)
    assert info is not None, "no ErrorInfo in the status"
    return str(info.reason)


def settle_request(
    tenant: Tenant | str, user_id: str, request_id: str, commit: bool = True, reason: str = ""
) -> quota_pb2.SettleRequest:
    tenant_id = tenant if isinstance(tenant, str) else tenant.tenant_id
    return quota_pb2.SettleRequest(
        request_id=request_id,
        action=quota_pb2.SETTLE_ACTION_COMMIT if commit else quota_pb2.SETTLE_ACTION_RELEASE,
        reason=reason,
        interaction=history_pb2.Interaction(
            interaction_id=request_id,
            tenant_id=tenant_id,
            user_id=user_id,
            question="q",
            answer="a" if commit else "",
            status=history_pb2.INTERACTION_STATUS_OK
            if commit
            else history_pb2.INTERACTION_STATUS_ERROR,
        ),
    )


async def commit(q: Quota, tenant: Tenant, user_id: str, request_id: str) -> quota_pb2.Reservation:
    reply = await q.internal.Settle(settle_request(tenant, user_id, request_id), metadata=INTERNAL)
    return reply.reservation


async def release(
    q: Quota, tenant: Tenant, user_id: str, request_id: str, reason: str = ""
) -> quota_pb2.Reservation:
    req = settle_request(tenant, user_id, request_id, commit=False, reason=reason)
    return (await q.internal.Settle(req, metadata=INTERNAL)).reservation
