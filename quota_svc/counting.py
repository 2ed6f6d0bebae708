"""Counting use cases: Reserve, Commit, Release and the settlement of
reservations left open. Callers are authenticated by the servicer (internal
credential only)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from gateway_common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    NotFound,
    QuotaViolation,
    ResourceExhausted,
)
from quota_svc import domain, metrics
from quota_svc.domain import Clock, Period, Refusal, Reservation, ReservationState
from quota_svc.ports import DuplicateRequest, ReserveCall, Standing, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("quota.counting")

RESERVE_ATTEMPTS = 3  # a refusal diagnosed as "a slot freed meanwhile" retries


class CountingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        reservation_ttl_seconds: float = 300.0,
        settle_batch: int = 500,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ttl = reservation_ttl_seconds
        self._batch = settle_batch

    async def reserve(
        self, request_id: str, tenant_id: str, user_id: str, time_zone: str
    ) -> Reservation:
        rid = domain.request_id(request_id, required=True)
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        user = domain.parse_uuid(user_id, "user_id")
        tz = time_zone or "UTC"
        now = self._clock.now()
        period = domain.period_of(now, tz)  # validates the zone
        call = ReserveCall(rid, tenant, user, now, period, tz, domain.expiry(now, self._ttl))
        for _ in range(RESERVE_ATTEMPTS):
            async with self._uow(autocommit=True) as uow:
                outcome = await self._try_reserve(uow, call)
            if outcome is not None:
                return outcome
        raise Aborted("too much contention on this subscription; retry", "CONTENTION")

    async def _try_reserve(self, uow: UnitOfWork, call: ReserveCall) -> Reservation | None:
        try:
            counted = await uow.ledger.reserve(call)
        except DuplicateRequest:
            return await self._replay(uow, call.request_id)
        if counted is not None:
            return counted
        refusal = diagnose(await uow.ledger.standings(call.tenant_id, call.user_id), call)
        if refusal is None:
            return None
        if not await uow.ledger.store_refusal(call, refusal):
            return await self._replay(uow, call.request_id)
        raise refusal_error(refusal)

    async def _replay(self, uow: UnitOfWork, request_id: str) -> Reservation:
        stored = await uow.ledger.get(request_id)
        if stored is None:  # pragma: no cover - the row was just seen
            raise Aborted("reservation vanished; retry", "CONTENTION")
        if stored.state is ReservationState.REFUSED:
            raise refusal_error(stored)
        return stored

    async def commit(self, request_id: str) -> Reservation:
        """reserved -> committed. An expired one (refunded by the settlement) is
        committed too and counted again: the caller only commits answers it served
        (a "late commit", possibly past the limit by that request)."""
        rid = domain.request_id(request_id, required=True)
        async with self._uow(autocommit=True) as uow:
            done = await uow.ledger.commit(rid)
            if done is not None:
                if done.reason == domain.LATE_COMMIT:
                    metrics.LATE_COMMITS.inc()
                    log.warning("late commit of an expired reservation", extra={"rid": rid})
                return done
            stored = await uow.ledger.get(rid)
        if stored is None:
            raise NotFound("no reservation with this request_id", "RESERVATION_NOT_FOUND")
        if stored.state is ReservationState.COMMITTED:
            return stored
        raise _settled(stored)

    async def release(self, request_id: str, reason: str) -> Reservation:
        rid = domain.request_id(request_id, required=True)
        why = domain.validate_reason(reason)
        async with self._uow() as uow:
            done = await uow.ledger.release(rid, why)
            if done is not None:
                await uow.commit()
                return done
            stored = await uow.ledger.get(rid)
        if stored is None:
            raise NotFound("no reservation with this request_id", "RESERVATION_NOT_FOUND")
        # Already refunded (by a Release or by the settlement): nothing changes.
        if stored.state in (ReservationState.RELEASED, ReservationState.EXPIRED):
            return stored
        raise _settled(stored)

    async def settle_expired(self) -> int:
        """Releases every reservation open past its expira_em; returns how many."""
        total = 0
        while True:
            async with self._uow(autocommit=True) as uow:
                n = await uow.ledger.settle_expired(self._clock.now(), self._batch)
            total += n
            if n < self._batch:
                return total

    async def sweep_forever(self, interval: float) -> None:
        """The background settlement loop each replica runs (SKIP LOCKED makes
        concurrent sweepers safe)."""
        while True:
            try:
                settled = await self.settle_expired()
                if settled:
                    log.info("settled expired reservations", extra={"count": settled})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("settlement round failed")
            await asyncio.sleep(interval)


def diagnose(standings: list[Standing], call: ReserveCall) -> Reservation | None:
    """Why the counting statement changed nothing; None if it should be retried."""
    now = call.now
    for st in standings:
        sub = st.subscription
        if not sub.is_active(now):
            continue
        same_period = sub.period_start >= call.period.start
        used = sub.requests_used if same_period else 0
        if used < st.limit:
            return None
        start = max(sub.period_start, call.period.start)
        return _refusal(call, Refusal.QUOTA_EXCEEDED, sub.subscription_id, used, st.limit, start)
    if any(st.subscription.start_time > now for st in standings):
        reason = Refusal.SUBSCRIPTION_NOT_STARTED
    elif standings:
        reason = Refusal.SUBSCRIPTION_ENDED
    else:
        reason = Refusal.NO_ACTIVE_SUBSCRIPTION
    return _refusal(call, reason, "", 0, 0, call.period.start)


def _refusal(
    call: ReserveCall, why: Refusal, sub_id: str, used: int, limit: int, start: datetime
) -> Reservation:
    return Reservation(
        request_id=call.request_id,
        subscription_id=sub_id,
        state=ReservationState.REFUSED,
        used=used,
        limit=limit,
        period=Period(start, call.period.end),
        reason=why.value,
    )


_MESSAGES = {
    Refusal.NO_ACTIVE_SUBSCRIPTION.value: "the user has no active subscription",
    Refusal.SUBSCRIPTION_NOT_STARTED.value: "the user's subscription has not started yet",
    Refusal.SUBSCRIPTION_ENDED.value: "the user's subscription has ended",
}


def refusal_error(refusal: Reservation) -> DomainError:
    reset = refusal.period.end.isoformat()
    if refusal.reason == Refusal.QUOTA_EXCEEDED.value:
        return ResourceExhausted(
            f"monthly request limit reached ({refusal.limit}); resets at {reset}",
            Refusal.QUOTA_EXCEEDED.value,
            violations=[
                QuotaViolation(
                    subject=f"subscription:{refusal.subscription_id}",
                    description=f"{refusal.limit} requests per calendar month; resets at {reset}",
                )
            ],
            metadata={
                "limit": str(refusal.limit),
                "used": str(refusal.used),
                "period_start": refusal.period.start.isoformat(),
                "reset_time": reset,
            },
        )
    message = _MESSAGES.get(refusal.reason, "no usable subscription")
    return FailedPrecondition(message, refusal.reason or "NO_ACTIVE_SUBSCRIPTION")


def _settled(stored: Reservation) -> FailedPrecondition:
    reason = {
        ReservationState.RELEASED: "RESERVATION_RELEASED",
        ReservationState.EXPIRED: "RESERVATION_EXPIRED",
        ReservationState.COMMITTED: "RESERVATION_COMMITTED",
        ReservationState.REFUSED: "RESERVATION_REFUSED",
    }.get(stored.state, "RESERVATION_SETTLED")
    return FailedPrecondition(f"the reservation is {stored.state.value}", reason)
