"""Counting use cases: Reserve, Settle (commit or release, with the interaction record
in the outbox) and the expiry of reservations left open. Callers are authenticated by
the servicer (internal credential only)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from gateway_common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaViolation,
    ResourceExhausted,
)
from quota_svc import domain, metrics
from quota_svc.domain import Clock, Period, Refusal, Reservation, ReservationState
from quota_svc.ports import (
    DuplicateRequest,
    ExpiryRecorder,
    KeyInUse,
    ReserveCall,
    SettleCall,
    Standing,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger("quota.counting")

RESERVE_ATTEMPTS = 8  # a refusal diagnosed as "a slot freed meanwhile" retries


class CountingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        expiry_record: ExpiryRecorder,
        reservation_ttl_seconds: float = 300.0,
        settle_batch: int = 500,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._expiry = expiry_record
        self._ttl = reservation_ttl_seconds
        self._batch = settle_batch

    async def reserve(
        self,
        request_id: str,
        tenant_id: str,
        user_id: str,
        time_zone: str,
        idempotency_key: str = "",
        hold: tuple[int, int, int] = (0, 1, 0),
        model: str = "",
    ) -> tuple[Reservation, bool]:
        """The reservation, and whether it is a replay of a served idempotency key.
        ``hold`` is the token bound: (prompt bound, choices, max tokens per choice);
        ``model`` the model asked (checked against the plan's allowed models)."""
        rid = domain.request_id(request_id, required=True)
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        user = domain.parse_uuid(user_id, "user_id")
        key = domain.idempotency_key(idempotency_key)
        base, choices, max_tokens = domain.token_hold(*hold)
        tz = time_zone or "UTC"
        now = self._clock.now()
        period = domain.period_of(now, tz)  # validates the zone
        expires = domain.expiry(now, self._ttl)
        call = ReserveCall(
            rid, tenant, user, now, period, tz, expires, key,
            domain.minute_of(now), base, choices, max_tokens, domain.model_name(model),
        )  # fmt: skip
        for _ in range(RESERVE_ATTEMPTS):
            async with self._uow(autocommit=True) as uow:
                outcome = await self._try_reserve(uow, call)
            if outcome is not None:
                return outcome
        raise Aborted("too much contention on this subscription; retry", "CONTENTION")

    async def _try_reserve(
        self, uow: UnitOfWork, call: ReserveCall
    ) -> tuple[Reservation, bool] | None:
        if call.idempotency_key:
            # Checked first: a served key replays even when the user's limit is reached now.
            holder = await uow.ledger.by_key(call.tenant_id, call.user_id, call.idempotency_key)
            if holder is not None and holder.request_id != call.request_id:
                return _keyed(holder)
        try:
            counted = await uow.ledger.reserve(call)
        except DuplicateRequest:
            return await self._replay(uow, call.request_id), False
        except KeyInUse:  # taken between the check and the insert: look again
            return None
        if counted is not None:
            return counted, False
        refusal = diagnose(await uow.ledger.standings(call.tenant_id, call.user_id), call)
        if refusal is None:
            return None
        if not await uow.ledger.store_refusal(call, refusal):
            return await self._replay(uow, call.request_id), False
        raise refusal_error(refusal, call.now)

    async def _replay(self, uow: UnitOfWork, request_id: str) -> Reservation:
        stored = await uow.ledger.get(request_id)
        if stored is None:  # pragma: no cover - the row was just seen
            raise Aborted("reservation vanished; retry", "CONTENTION")
        if stored.state is ReservationState.REFUSED:
            raise refusal_error(stored, self._clock.now())
        return stored

    async def settle(
        self,
        request_id: str,
        commit: bool,
        reason: str,
        tenant_id: str,
        user_id: str,
        record: bytes,
        tokens: int = 0,
    ) -> Reservation:
        """reserved -> committed or released, with the interaction record, at most once,
        charging ``tokens`` (the actual usage) in place of the hold. A replay of the same
        transition answers the first result."""
        rid = domain.request_id(request_id, required=True)
        if not 0 <= tokens <= domain.MAX_TOKEN_LIMIT:
            raise InvalidArgument.field("interaction.metadata.tokens_used", "out of range")
        call = SettleCall(
            rid,
            domain.parse_uuid(tenant_id, "interaction.tenant_id"),
            domain.parse_uuid(user_id, "interaction.user_id"),
            commit,
            domain.validate_reason(reason),
            record,
            tokens,
        )
        async with self._uow(autocommit=True) as uow:
            done = await uow.ledger.settle(call)
            if done is not None:
                metrics.SETTLEMENTS.labels("commit" if commit else "release").inc()
                if done.tokens_excess:
                    # The provider answered more than the bound: charged, and counted here.
                    metrics.TOKENS_OVER_BOUND.inc(done.tokens_excess)
                    log.warning("usage over the reserved bound", extra={"rid": rid})
                return done
            stored = await uow.ledger.get(rid)
        if stored is None:
            raise NotFound("no reservation with this request_id", "RESERVATION_NOT_FOUND")
        if (stored.tenant_id, stored.user_id) != (call.tenant_id, call.user_id):
            raise InvalidArgument(
                "the interaction's tenant and user are not the reservation's",
                "SETTLEMENT_SUBJECT_MISMATCH",
            )
        wanted = ReservationState.COMMITTED if commit else ReservationState.RELEASED
        if stored.state is wanted:
            return stored
        raise _settled(stored)

    async def settlement(self, request_id: str) -> tuple[Reservation, bytes | None]:
        rid = domain.request_id(request_id, required=True)
        async with self._uow(autocommit=True) as uow:
            found = await uow.ledger.settlement(rid)
        if found is None:
            raise NotFound("no reservation with this request_id", "RESERVATION_NOT_FOUND")
        return found

    async def settle_expired(self) -> int:
        """Expires (refunds and records as errors) every reservation open past its
        expira_em; returns how many."""
        total = 0
        while True:
            async with self._uow(autocommit=True) as uow:
                n = await uow.ledger.expire_due(self._clock.now(), self._batch, self._expiry)
            total += n
            metrics.EXPIRED.inc(n)
            if n < self._batch:
                return total

    async def sweep_forever(self, interval: float) -> None:
        """The background settlement loop each replica runs (SKIP LOCKED makes
        concurrent sweepers safe)."""
        while True:
            try:
                settled = await self.settle_expired()
                if settled:
                    log.warning("expired open reservations", extra={"count": settled})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("settlement round failed")
            await asyncio.sleep(interval)


def _keyed(holder: Reservation) -> tuple[Reservation, bool]:
    if holder.state is ReservationState.COMMITTED:
        return holder, True
    raise Aborted(
        "a request with this idempotency key is still in progress; retry later",
        "IDEMPOTENCY_KEY_IN_PROGRESS",
    )


def diagnose(standings: list[Standing], call: ReserveCall) -> Reservation | None:
    """Why the counting statement changed nothing; None if it should be retried. The
    month's requests first (waiting a minute cannot help), then the token budget, then
    the minute window."""
    now = call.now
    for st in standings:
        sub = st.subscription
        if not sub.is_active(now):
            continue
        same_period = sub.period_start >= call.period.start
        start = max(sub.period_start, call.period.start)
        used = sub.requests_used if same_period else 0
        sid = sub.subscription_id
        if call.model and st.allowed_models and call.model not in st.allowed_models:
            return _refusal(call, Refusal.MODEL_NOT_ALLOWED, sid, used, st.limit, start)
        if used >= st.limit:
            return _refusal(call, Refusal.QUOTA_EXCEEDED, sid, used, st.limit, start)
        tokens = sub.tokens_used if same_period else 0
        budget = st.token_limit
        if budget is not None and budget - tokens - call.prompt_bound < call.choices:
            return _refusal(call, Refusal.TOKEN_BUDGET_EXHAUSTED, sid, tokens, budget, start)
        if st.minute_limit is not None and call.minute is not None:
            begun = sub.minute_start or call.minute.start
            same_minute = begun >= call.minute.start
            in_minute = sub.requests_this_minute if same_minute else 0
            if in_minute >= st.minute_limit:
                window = domain.minute_of(max(begun, call.minute.start))
                return _refusal(
                    call, Refusal.RATE_LIMITED, sub.subscription_id, in_minute,
                    st.minute_limit, window.start, window.end,
                )  # fmt: skip
        return None
    if any(st.subscription.start_time > now for st in standings):
        reason = Refusal.SUBSCRIPTION_NOT_STARTED
    elif standings:
        reason = Refusal.SUBSCRIPTION_ENDED
    else:
        reason = Refusal.NO_ACTIVE_SUBSCRIPTION
    return _refusal(call, reason, "", 0, 0, call.period.start)


def _refusal(
    call: ReserveCall,
    why: Refusal,
    sub_id: str,
    used: int,
    limit: int,
    start: datetime,
    end: datetime | None = None,
) -> Reservation:
    return Reservation(
        request_id=call.request_id,
        subscription_id=sub_id,
        state=ReservationState.REFUSED,
        used=used,
        limit=limit,
        period=Period(start, end or call.period.end),
        reason=why.value,
    )


_MESSAGES = {
    Refusal.NO_ACTIVE_SUBSCRIPTION.value: "the user has no active subscription",
    Refusal.SUBSCRIPTION_NOT_STARTED.value: "the user's subscription has not started yet",
    Refusal.SUBSCRIPTION_ENDED.value: "the user's subscription has ended",
}
# Refusals that a window's reset lifts: (what was reached, the QuotaFailure description).
_WINDOWS = {
    Refusal.QUOTA_EXCEEDED.value: ("monthly request limit", "{} requests per calendar month"),
    Refusal.TOKEN_BUDGET_EXHAUSTED.value: (
        "monthly token budget",
        "{} tokens per calendar month (prompt bound + choices x max tokens held per call)",
    ),
    Refusal.RATE_LIMITED.value: ("per-minute request limit", "{} requests per UTC minute"),
}


def refusal_error(refusal: Reservation, now: datetime) -> DomainError:
    """The client's error for a refusal; a windowed one carries RetryInfo (the delay
    until its window resets, from ``now``)."""
    if refusal.reason == Refusal.MODEL_NOT_ALLOWED.value:
        return PermissionDenied("the user's plan does not allow this model", refusal.reason)
    if refusal.reason not in _WINDOWS:
        message = _MESSAGES.get(refusal.reason, "no usable subscription")
        return FailedPrecondition(message, refusal.reason or "NO_ACTIVE_SUBSCRIPTION")
    what, description = _WINDOWS[refusal.reason]
    reset = refusal.period.end.isoformat()
    delay = max((refusal.period.end - now).total_seconds(), 0.0)
    return ResourceExhausted(
        f"{what} reached ({refusal.used} of {refusal.limit}); resets at {reset}",
        refusal.reason,
        violations=[
            QuotaViolation(
                subject=f"subscription:{refusal.subscription_id}",
                description=f"{description.format(refusal.limit)}; resets at {reset}",
            )
        ],
        metadata={
            "limit": str(refusal.limit),
            "used": str(refusal.used),
            "period_start": refusal.period.start.isoformat(),
            "reset_time": reset,
            "window": "minute" if refusal.reason == Refusal.RATE_LIMITED.value else "month",
        },
        retry_delay=delay,
    )


def _settled(stored: Reservation) -> FailedPrecondition:
    reason = {
        ReservationState.RELEASED: "RESERVATION_RELEASED",
        ReservationState.EXPIRED: "RESERVATION_EXPIRED",
        ReservationState.COMMITTED: "RESERVATION_COMMITTED",
        ReservationState.REFUSED: "RESERVATION_REFUSED",
    }.get(stored.state, "RESERVATION_SETTLED")
    return FailedPrecondition(f"the reservation is {stored.state.value}", reason)
