"""The storage seams the use cases depend on. The SQL adapters implement them;
unit tests subclass them with in-memory fakes."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from gateway_common.audit import AuditLog
from gateway_common.idempotency import RequestKey
from gateway_common.unit_of_work import UnitOfWork as SharedUnitOfWork
from quota_svc.domain import NewPlan, Period, Plan, Reservation, Subscription

PageKey = tuple[datetime, str]  # (criado_em, id): keyset position
R = TypeVar("R")
# What a request_id recorded, and the fingerprint of its request (None: before 0003).
Recorded = tuple[R, str | None]


@dataclass(frozen=True)
class SubscriptionDraft:
    tenant_id: str
    user_id: str
    plan_id: str
    start_time: datetime | None
    end_time: datetime | None
    request_id: str
    # Filled by the use case: the current period and the zone it was computed in.
    period_start: datetime | None = None
    time_zone: str = "UTC"
    fingerprint: str = ""  # of the request (gateway_common.idempotency)


@dataclass(frozen=True)
class PlanEvent:
    """One line of historico_plano."""

    subscription_id: str
    tenant_id: str
    kind: str  # "change_plan" | "end"
    old_plan_id: str
    new_plan_id: str
    end_time: datetime | None
    requests_used: int
    actor: str
    request_id: str
    fingerprint: str = ""  # of the request (gateway_common.idempotency)


@dataclass(frozen=True)
class UsageCount:
    """What GetUsage counts in a period."""

    used: int
    limit: int  # of subscriptions active at the time asked
    seen: int  # subscriptions overlapping the period
    tokens_used: int = 0
    token_limit: int | None = None  # None: no active subscription's plan has one


@dataclass(frozen=True)
class Standing:
    """A user's subscription as Reserve's refusal diagnosis sees it."""

    subscription: Subscription
    limit: int
    minute_limit: int | None = None
    token_limit: int | None = None
    allowed_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReserveCall:
    request_id: str
    tenant_id: str
    user_id: str
    now: datetime
    period: Period
    time_zone: str
    expires: datetime
    idempotency_key: str = ""
    minute: Period | None = None  # the fixed minute window of ``now``
    # The token hold: prompt_bound + choices x max_tokens (max_tokens lowered to what
    # the budget leaves; 0 asks for no cap).
    prompt_bound: int = 0
    choices: int = 1
    max_tokens: int = 0
    model: str = ""  # checked against the plan's allowed models ("" : not checked)


@dataclass(frozen=True)
class SettleCall:
    """The end of a reservation: committed (served) or released (failed), with the
    serialized interaction record that goes into the outbox with it."""

    request_id: str
    tenant_id: str
    user_id: str
    commit: bool
    reason: str
    record: bytes
    tokens: int = 0  # the provider's actual usage: what is charged instead of the hold


# Builds the error record of a reservation the sweep expired: (reservation, created) -> bytes.
ExpiryRecorder = Callable[[Reservation, datetime], bytes]


class PlanRepository(abc.ABC):
    @abc.abstractmethod
    async def by_request_id(self, tenant_id: str, request_id: str) -> Recorded[Plan] | None:
        """The plan of ``tenant_id`` ("" = global) created under ``request_id``."""

    @abc.abstractmethod
    async def create(self, plan: NewPlan, request: RequestKey) -> Plan | None:
        """None when ``request_id`` was taken meanwhile (read it back)."""

    @abc.abstractmethod
    async def get(self, plan_id: str) -> Plan | None: ...

    @abc.abstractmethod
    async def list(self, tenant_id: str, after: PageKey | None, limit: int) -> list[Plan]: ...

    @abc.abstractmethod
    async def update(self, plan_id: str, changes: dict[str, Any]) -> Plan | None: ...

    @abc.abstractmethod
    async def delete(self, plan_id: str) -> bool: ...


class SubscriptionRepository(abc.ABC):
    @abc.abstractmethod
    async def by_request_id(
        self, tenant_id: str, request_id: str
    ) -> Recorded[Subscription] | None: ...

    @abc.abstractmethod
    async def create(self, draft: SubscriptionDraft) -> Subscription | None:
        """None when ``request_id`` was taken meanwhile (read it back)."""

    @abc.abstractmethod
    async def get(
        self, tenant_id: str, subscription_id: str, *, lock: bool = False
    ) -> Subscription | None: ...

    @abc.abstractmethod
    async def list(
        self,
        tenant_id: str,
        user_id: str,
        active_at: datetime | None,
        after: PageKey | None,
        limit: int,
    ) -> list[Subscription]: ...

    @abc.abstractmethod
    async def set_plan(self, subscription_id: str, plan_id: str) -> Subscription: ...

    @abc.abstractmethod
    async def set_end(self, subscription_id: str, end_time: datetime) -> Subscription: ...

    @abc.abstractmethod
    async def event_subscription(
        self, tenant_id: str, kind: str, request_id: str
    ) -> Recorded[str] | None:
        """The subscription a logged change of ``kind`` with ``request_id`` was about."""

    @abc.abstractmethod
    async def log_event(self, event: PlanEvent) -> bool:
        """False when ``event.request_id`` is already logged."""

    @abc.abstractmethod
    async def zone_of(self, tenant_id: str, user_id: str) -> str | None:
        """The time zone counting last used for the tenant (or user)."""

    @abc.abstractmethod
    async def usage(self, tenant_id: str, user_id: str, period: Period, at: datetime) -> UsageCount:
        """Requests and tokens used in ``period``, the limits of subscriptions active at
        ``at``, and how many subscriptions were seen."""


class LedgerRepository(abc.ABC):
    @abc.abstractmethod
    async def reserve(self, call: ReserveCall) -> Reservation | None:
        """Counts one request in one atomic statement; None when refused (nothing
        written). Raises :class:`DuplicateRequest` when the request_id is known."""

    @abc.abstractmethod
    async def standings(self, tenant_id: str, user_id: str) -> list[Standing]: ...

    @abc.abstractmethod
    async def store_refusal(self, call: ReserveCall, refusal: Reservation) -> bool:
        """False when the request_id was stored meanwhile."""

    @abc.abstractmethod
    async def get(self, request_id: str) -> Reservation | None: ...

    @abc.abstractmethod
    async def by_key(self, tenant_id: str, user_id: str, key: str) -> Reservation | None:
        """The open or committed reservation holding an idempotency key, if any."""

    @abc.abstractmethod
    async def settle(self, call: SettleCall) -> Reservation | None:
        """reserved -> committed / released (refunded), with the record in the outbox, in
        one transaction; None when the reservation was not open (nothing written)."""

    @abc.abstractmethod
    async def settlement(self, request_id: str) -> tuple[Reservation, bytes | None] | None:
        """The reservation and the record its settlement stored (None once pruned)."""

    @abc.abstractmethod
    async def expire_due(self, now: datetime, batch: int, record: ExpiryRecorder) -> int:
        """Open reservations past expira_em -> expired, refunded and recorded as errors
        (one transaction); how many."""


class DuplicateRequest(Exception):
    """The request_id is already in the ledger: answer with the stored one."""


class KeyInUse(Exception):
    """Another open or committed reservation of the user holds this idempotency key."""


class Members(abc.ABC):
    """Who belongs to which tenant (identity's answer), asked before a user is bound to a plan."""

    @abc.abstractmethod
    async def check(self, tenant_id: str, user_id: str, timeout: float) -> None:
        """Returns when the user belongs to the tenant; raises NotFound (USER_NOT_FOUND) when
        it does not, the same for another tenant's user as for no user at all, and
        Unavailable when identity cannot answer."""


class UnitOfWork(SharedUnitOfWork):
    """One transaction: nothing is written unless ``await uow.commit()`` runs inside the
    ``async with`` block (with ``autocommit``, each statement is its own transaction)."""

    plans: PlanRepository
    subscriptions: SubscriptionRepository
    ledger: LedgerRepository
    audit: AuditLog  # the audit outbox (transactional units only): one event per admin change


UnitOfWorkFactory = Callable[..., UnitOfWork]
"""``factory(autocommit=False)`` -> a fresh unit of work."""
