"""Use cases with in-memory fakes: permissions come before storage, refusals
are diagnosed and stored, replays answer with the stored reservation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)
from gateway_common.principal import Principal, Role
from quota_svc import domain
from quota_svc.counting import CountingService, diagnose
from quota_svc.domain import NewPlan, Period, Reservation, ReservationState, Subscription
from quota_svc.ports import (
    DuplicateRequest,
    ExpiryRecorder,
    LedgerRepository,
    Members,
    PlanRepository,
    ReserveCall,
    SettleCall,
    Standing,
    SubscriptionDraft,
    SubscriptionRepository,
    UnitOfWork,
)
from quota_svc.service import PlanService, UsageService
from quota_svc.service_subscriptions import SubscriptionService

NOW = datetime(2031, 3, 15, 12, tzinfo=UTC)
T1, T2 = str(uuid.uuid4()), str(uuid.uuid4())


class Clock:
    def now(self) -> datetime:
        return NOW


class Untouchable(PlanRepository, SubscriptionRepository):  # type: ignore[misc]
    """Storage that must not be reached (permission checks come first)."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__"):
            return object.__getattribute__(self, name)
        raise AssertionError(f"storage reached: {name}")


Untouchable.__abstractmethods__ = frozenset()  # every method fails on purpose


class FakeLedger(LedgerRepository):
    def __init__(self, standings: list[Standing]) -> None:
        self.rows: dict[str, Reservation] = {}
        self._standings = standings
        self.counted = 0
        self.limit = standings[0].limit if standings else 0

    async def reserve(self, call: ReserveCall) -> Reservation | None:
        if call.request_id in self.rows:
            raise DuplicateRequest(call.request_id)
        active = [s for s in self._standings if s.subscription.is_active(call.now)]
        if not active or self.counted >= self.limit:
            return None
        self.counted += 1
        res = Reservation(
            call.request_id, "s", ReservationState.RESERVED, self.counted, self.limit,
            call.period,
        )  # fmt: skip
        self.rows[call.request_id] = res
        return res

    async def standings(self, tenant_id: str, user_id: str) -> list[Standing]:
        # The stored count, as the counting statement left it.
        return [
            Standing(replace(s.subscription, requests_used=self.counted), self.limit)
            for s in self._standings
        ]

    async def store_refusal(self, call: ReserveCall, refusal: Reservation) -> bool:
        self.rows[call.request_id] = refusal
        return True

    async def get(self, request_id: str) -> Reservation | None:
        return self.rows.get(request_id)

    async def by_key(self, tenant_id: str, user_id: str, key: str) -> Reservation | None:
        return None

    async def settle(self, call: SettleCall) -> Reservation | None:
        raise NotImplementedError

    async def settlement(self, request_id: str) -> tuple[Reservation, bytes | None] | None:
        raise NotImplementedError

    async def expire_due(self, now: datetime, batch: int, record: ExpiryRecorder) -> int:
        return 0


def _no_record(reservation: Reservation, created: datetime) -> bytes:
    return b""


class FakeUow(UnitOfWork):
    def __init__(self, ledger: LedgerRepository | None = None) -> None:
        self.plans = Untouchable()  # type: ignore[abstract]
        self.subscriptions = Untouchable()  # type: ignore[abstract]
        self.ledger = ledger or FakeLedger([])

    async def commit(self) -> None:
        return None

    async def rollback(self) -> None:
        return None


class NoMembers(Members):
    """Membership must not be asked before the caller's own rights are checked."""

    async def check(self, tenant_id: str, user_id: str, timeout: float) -> None:
        raise AssertionError("membership asked before the permission check")


def admin(tenant: str) -> Principal:
    return Principal(Role.TENANT_ADMIN, tenant, str(uuid.uuid4()))


def user(tenant: str) -> Principal:
    return Principal(Role.USER, tenant, str(uuid.uuid4()))


async def test_permissions_are_checked_before_storage() -> None:
    uow = FakeUow()
    plans = PlanService(lambda **_: uow, Clock())
    subs = SubscriptionService(lambda **_: uow, Clock(), NoMembers())
    usage = UsageService(lambda **_: uow, Clock())
    pid, sid = str(uuid.uuid4()), str(uuid.uuid4())
    denied = [
        plans.create(admin(T1), NewPlan("", "global", 1, ""), ""),
        plans.create(admin(T1), NewPlan(T2, "theirs", 1, ""), ""),
        plans.get(user(T1), pid),
        plans.list(admin(T1), T2, 0, ""),
        plans.update(user(T1), pid, {"name": "x"}),
        plans.delete(user(T1), pid),
        subs.create(admin(T2), SubscriptionDraft(T1, str(uuid.uuid4()), pid, None, None, "")),
        subs.get(admin(T2), T1, sid),
        subs.list(user(T1), T1, "", False, 0, ""),
        subs.change_plan(admin(T2), T1, sid, pid, ""),
        subs.end(user(T1), T1, sid, None, ""),
        usage.usage(user(T1), T1, "", None),
        usage.usage(user(T1), T1, str(uuid.uuid4()), None),
        usage.usage(admin(T2), T1, "", None),
    ]
    for call in denied:
        with pytest.raises(PermissionDenied):
            await call


async def test_invalid_arguments_before_storage() -> None:
    uow = FakeUow()
    platform = Principal(Role.PLATFORM_ADMIN)
    plans = PlanService(lambda **_: uow, Clock())
    for bad in (NewPlan("", "", 1, ""), NewPlan("", "ok", -1, ""), NewPlan("x", "ok", 1, "")):
        with pytest.raises(InvalidArgument):
            await plans.create(platform, bad, "")
    with pytest.raises(InvalidArgument):
        await plans.update(platform, str(uuid.uuid4()), {"nope": 1})


def _standing(start: datetime, end: datetime | None, used: int, limit: int) -> Standing:
    sub = Subscription(
        "sub-1", T1, "u", "p", start, end, used, datetime(2031, 3, 1, tzinfo=UTC), "UTC", NOW, NOW
    )
    return Standing(sub, limit)


def _call(now: datetime = NOW) -> ReserveCall:
    period = domain.period_of(now, "UTC")
    return ReserveCall("r", T1, str(uuid.uuid4()), now, period, "UTC", now + timedelta(minutes=5))


@pytest.mark.parametrize(
    ("standings", "reason"),
    [
        ([], "NO_ACTIVE_SUBSCRIPTION"),
        ([_standing(NOW + timedelta(days=1), None, 0, 5)], "SUBSCRIPTION_NOT_STARTED"),
        ([_standing(NOW - timedelta(days=9), NOW - timedelta(days=1), 0, 5)], "SUBSCRIPTION_ENDED"),
        ([_standing(NOW - timedelta(days=9), None, 5, 5)], "QUOTA_EXCEEDED"),
        ([_standing(NOW - timedelta(days=9), None, 0, 0)], "QUOTA_EXCEEDED"),
    ],
)
def test_diagnosis(standings: list[Standing], reason: str) -> None:
    refusal = diagnose(standings, _call())
    assert refusal is not None and refusal.reason == reason
    assert refusal.period.end == datetime(2031, 4, 1, tzinfo=UTC)


def test_diagnosis_retries_when_a_slot_freed() -> None:
    assert diagnose([_standing(NOW - timedelta(days=9), None, 4, 5)], _call()) is None
    # Last month's full count does not block a new month.
    april = datetime(2031, 4, 2, tzinfo=UTC)
    assert diagnose([_standing(NOW - timedelta(days=9), None, 5, 5)], _call(april)) is None


async def test_refusals_are_stored_and_replayed() -> None:
    ledger = FakeLedger([_standing(NOW - timedelta(days=9), None, 0, 1)])
    counting = CountingService(lambda **_: FakeUow(ledger), Clock(), _no_record)
    ok, replayed = await counting.reserve("a", T1, str(uuid.uuid4()), "")
    assert ok.used == 1 and not replayed
    assert (await counting.reserve("a", T1, str(uuid.uuid4()), "")) == (ok, False)
    with pytest.raises(ResourceExhausted) as err:
        await counting.reserve("b", T1, str(uuid.uuid4()), "")
    assert err.value.metadata["reset_time"] == "2031-04-01T00:00:00+00:00"
    assert err.value.violations[0].subject == "subscription:sub-1"
    ledger.limit = 10  # room now, but "b" keeps its first answer
    with pytest.raises(ResourceExhausted):
        await counting.reserve("b", T1, str(uuid.uuid4()), "")
    with pytest.raises(InvalidArgument):
        await counting.reserve("c", T1, str(uuid.uuid4()), "Nowhere/Zone")


async def test_no_subscription_refusal_is_failed_precondition() -> None:
    counting = CountingService(lambda **_: FakeUow(FakeLedger([])), Clock(), _no_record)
    with pytest.raises(FailedPrecondition) as err:
        await counting.reserve("x", T1, str(uuid.uuid4()), "")
    assert err.value.reason == "NO_ACTIVE_SUBSCRIPTION"


def test_reservation_remaining_never_negative() -> None:
    period = Period(NOW, NOW)
    res = Reservation("r", "s", ReservationState.RESERVED, 7, 5, period)
    assert res.remaining == 0
