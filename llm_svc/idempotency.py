"""Admission of a chat call: who may call, which model, the reservation charged, and the
replay of a call already answered under the same idempotency key.

With an idempotency key the quota request id is derived from (tenant, user, key), so a
retry hits the same reservation (quota answers replays with the first reservation) and
the same interaction id (history keeps the first record):
- reservation COMMITTED: the first call finished; its stored answer is returned, no
  provider call;
- reservation RESERVED and this process is still working on it: ABORTED;
- RESERVED and the answer is already stored (the first call died before Commit):
  Commit and return it;
- EXPIRED with a stored OK answer (served; its Commit was late, e.g. spooled): late Commit
  and the stored answer;
- RELEASED/EXPIRED (the first try failed, nothing charged): a next attempt id is used,
  so a retry after a failure really retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway_common.errors import Aborted, DomainError, PermissionDenied, Unavailable
from gateway_common.principal import Principal, Role
from llm_svc.domain import (
    ChatAnswer,
    ChatRequest,
    Interaction,
    Outcome,
    Reservation,
    ReservationState,
    ResolvedModel,
    interaction_id_for,
    provider_parameters,
    request_id_for,
)
from llm_svc.ports import HistoryPort, IdentityPort, QuotaPort, SpoolPort

MAX_ATTEMPTS = 8  # failed tries one idempotency key may go through
RELEASE_TIMEOUT = 3.0
_SETTLED = (ReservationState.RELEASED, ReservationState.EXPIRED)


@dataclass(frozen=True)
class Admission:
    principal: Principal
    model: ResolvedModel
    reservation: Reservation
    interaction_id: str
    parameters: dict[str, Any]
    keyed: bool
    replay: ChatAnswer | None = None

    @property
    def request_id(self) -> str:
        return self.reservation.request_id


class Gate:
    def __init__(
        self, identity: IdentityPort, quota: QuotaPort, history: HistoryPort, spool: SpoolPort
    ) -> None:
        self._identity = identity
        self._quota = quota
        self._history = history
        self._spool = spool
        self._in_flight: set[str] = set()
        self._releasing: set[asyncio.Task[None]] = set()

    async def admit(
        self, api_key: str, request: ChatRequest, remaining: Callable[[], float]
    ) -> Admission:
        request.validate()
        principal = await self._identity.authenticate(api_key, remaining())
        if principal.role is not Role.USER:
            raise PermissionDenied("only user keys may chat", "USER_KEY_REQUIRED")
        model = await self._identity.resolve_model(principal.tenant_id, request.model, remaining())
        reservation = await self._reserve(api_key, principal, request.idempotency_key, remaining)
        admission = Admission(
            principal=principal,
            model=model,
            reservation=reservation,
            interaction_id=interaction_id_for(reservation.request_id),
            parameters=provider_parameters(request, model),
            keyed=bool(request.idempotency_key),
        )
        if not admission.keyed:
            return admission
        replay = await self._replay(api_key, admission, remaining)
        if replay is not None:
            return dataclasses.replace(admission, replay=replay)
        self._in_flight.add(admission.request_id)
        return admission

    def done(self, admission: Admission) -> None:
        self._in_flight.discard(admission.request_id)

    async def _reserve(
        self, api_key: str, principal: Principal, key: str, remaining: Callable[[], float]
    ) -> Reservation:
        for attempt in range(MAX_ATTEMPTS):
            rid = request_id_for(principal.tenant_id, principal.user_id, key, attempt)
            try:
                reservation = await self._quota.reserve(rid, principal, remaining())
            except asyncio.CancelledError:
                self._release_later(rid)  # the caller left while quota was counting
                raise
            if not key or reservation.state not in _SETTLED:
                return reservation
            if reservation.state is ReservationState.EXPIRED and await self._answered(
                api_key, principal.tenant_id, rid, remaining
            ):
                # Served, but its Commit never reached quota before the expiry refunded it
                # (e.g. still in the commit spool): late-commit it, never serve it twice.
                return reservation
        raise Aborted(
            "too many failed tries with this idempotency key; use a new one",
            "IDEMPOTENCY_KEY_EXHAUSTED",
        )

    def _release_later(self, request_id: str) -> None:
        """Refund a reservation the caller will never use (Release of an unknown id is a
        harmless NOT_FOUND; without it, quota's expiry would refund it later anyway)."""

        async def release() -> None:
            with contextlib.suppress(DomainError):
                await self._quota.release(request_id, "CALLER_CANCELLED", RELEASE_TIMEOUT)

        task = asyncio.get_running_loop().create_task(release())
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _replay(
        self, api_key: str, admission: Admission, remaining: Callable[[], float]
    ) -> ChatAnswer | None:
        state = admission.reservation.state
        if state is ReservationState.COMMITTED:
            stored = await self._stored(api_key, admission, remaining, strict=True)
            if stored is None:
                raise Aborted(
                    "the first answer for this idempotency key is not readable yet; retry",
                    "REPLAY_NOT_READY",
                )
            return replayed(stored)
        if admission.request_id in self._in_flight:
            raise Aborted(
                "a call with this idempotency key is still in progress",
                "IDEMPOTENCY_KEY_IN_PROGRESS",
            )
        stored = await self._stored(api_key, admission, remaining, strict=False)
        if stored is None or stored.outcome is not Outcome.OK:
            return None
        await self._quota.commit(admission.request_id, remaining())
        return replayed(stored)

    async def _answered(
        self, api_key: str, tenant_id: str, request_id: str, remaining: Callable[[], float]
    ) -> bool:
        interaction_id = interaction_id_for(request_id)
        stored = await self._spool.get(interaction_id)
        if stored is None:
            with contextlib.suppress(Unavailable):
                stored = await self._history.get(api_key, tenant_id, interaction_id, remaining())
        return stored is not None and stored.outcome is Outcome.OK

    async def _stored(
        self, api_key: str, admission: Admission, remaining: Callable[[], float], *, strict: bool
    ) -> Interaction | None:
        spooled = await self._spool.get(admission.interaction_id)
        if spooled is not None:
            return spooled
        try:
            return await self._history.get(
                api_key, admission.principal.tenant_id, admission.interaction_id, remaining()
            )
        except Unavailable:
            if strict:
                raise
            return None


def replayed(stored: Interaction) -> ChatAnswer:
    return ChatAnswer(
        interaction_id=stored.interaction_id,
        model=stored.model_name,
        content=stored.answer,
        finish_reason=stored.finish_reason or "stop",
        usage=stored.usage,
        latency_ms=stored.latency_ms,
    )
