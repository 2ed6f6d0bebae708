"""Admission of a chat call: who may call, which model, the reservation counted, and the
replay of a call already served under the same idempotency key.

Every call gets a fresh request id, which is also its interaction id: a call only ever
settles its own reservation. The idempotency key is leased in quota's ledger (not in
this process), so across every replica:
- the key's first request still open: ABORTED (IDEMPOTENCY_KEY_IN_PROGRESS);
- the key served (committed): the stored answer of that first request, no provider call
  (from quota's outbox while it is kept there, else from history);
- the key's earlier request failed (released or expired): this call is a new try.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway_common.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    PermissionDenied,
    Unavailable,
)
from gateway_common.principal import Principal, Role
from llm_svc import record
from llm_svc.chat_schema import cap_tokens, provider_parameters
from llm_svc.domain import (
    ChatAnswer,
    ChatRequest,
    Interaction,
    Reservation,
    ResolvedModel,
)
from llm_svc.ports import HistoryPort, IdentityPort, QuotaPort
from llm_svc.token_bound import Hold, chat_hold

Remaining = Callable[[], float]


@dataclass(frozen=True)
class Admission:
    principal: Principal
    model: ResolvedModel
    reservation: Reservation
    parameters: dict[str, Any]
    replay: ChatAnswer | None = None

    @property
    def request_id(self) -> str:
        """The reservation's id; also the interaction's id in history."""
        return self.reservation.request_id


class Gate:
    def __init__(self, identity: IdentityPort, quota: QuotaPort, history: HistoryPort) -> None:
        self._identity = identity
        self._quota = quota
        self._history = history

    async def admit(
        self,
        api_key: str,
        request: ChatRequest,
        remaining: Remaining,
        on_abandon: Callable[[str, Principal, ResolvedModel], None],
    ) -> Admission:
        """``on_abandon(request_id, ...)`` is told of a reservation the caller left while
        quota was counting it, so that it is settled (released) rather than left to expire."""
        request.validate()
        admission = await self.count(
            api_key,
            request.model,
            request.idempotency_key,
            remaining,
            on_abandon,
            lambda model: provider_parameters(request, model),
            lambda parameters: chat_hold(request, parameters),
        )
        if not admission.reservation.replayed:
            return admission
        stored = await self._stored(api_key, admission, remaining)
        return dataclasses.replace(admission, replay=replayed(stored))

    async def count(
        self,
        api_key: str,
        model_name: str,
        idempotency_key: str,
        remaining: Remaining,
        on_abandon: Callable[[str, Principal, ResolvedModel], None],
        parameters_of: Callable[[ResolvedModel], dict[str, Any]],
        hold_of: Callable[[dict[str, Any]], Hold],
    ) -> Admission:
        """Who calls, which model, the parameters (refused before anything is charged:
        ``parameters_of`` raises), and the reservation counted with its token hold
        (``replayed`` when the idempotency key was served before). A completion cap the
        token budget lowered is applied to the parameters sent."""
        principal = await self._identity.authenticate(api_key, remaining())
        if principal.role is not Role.USER:
            raise PermissionDenied("only user keys may call models", "USER_KEY_REQUIRED")
        model = await self._identity.resolve_model(principal.tenant_id, model_name, remaining())
        if not model.deployments and not model.fallback_models:
            # Nowhere to send it: refused before anything is charged.
            raise FailedPrecondition(
                f"model {model_name!r} has no deployment configured", "MODEL_HAS_NO_DEPLOYMENT"
            )
        parameters = parameters_of(model)
        hold = hold_of(parameters)
        request_id = str(uuid.uuid4())
        try:
            reservation = await self._quota.reserve(
                request_id, principal, idempotency_key, remaining(), hold
            )
        except (asyncio.CancelledError, Unavailable, DeadlineExceeded):
            # The caller left, or quota's answer was lost: it may have counted; settle it.
            on_abandon(request_id, principal, model)
            raise
        granted = reservation.max_tokens
        if hold.choices and granted and (not hold.max_tokens or granted < hold.max_tokens):
            parameters = dict(parameters)
            cap_tokens(parameters, granted)  # the bound quota holds is what we send
        return Admission(principal, model, reservation, parameters)

    async def _stored(
        self, api_key: str, admission: Admission, remaining: Remaining
    ) -> Interaction:
        rid = admission.request_id
        stored = await self._quota.settlement(rid, remaining())
        if stored is None:
            try:
                stored = await self._history.get(
                    api_key, admission.principal.tenant_id, rid, remaining()
                )
            except Unavailable:
                stored = None
        if stored is None:
            raise Aborted(
                "the first answer for this idempotency key is not readable yet; retry",
                "REPLAY_NOT_READY",
            )
        return stored


def replayed(stored: Interaction) -> ChatAnswer:
    return record.answer_of(stored)
