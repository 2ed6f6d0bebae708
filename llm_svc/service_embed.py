"""The embeddings use case: the chat's admission (authenticate, resolve, reserve) and
settlement (one quota Settle: the ledger transition and the history record), one
provider call in between. One request is charged whatever the number of inputs; history
records the input text and the token usage, never the vectors.

Endings as a unary Chat's (llm_svc/README.md): served -> committed, recorded OK; the
provider failed, the caller left or the time ran out before the answer -> released,
recorded ERROR. A served idempotency key is not charged again: the vectors (which
history does not keep) are asked again of the provider, and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway_common.errors import DeadlineExceeded, DomainError, Unavailable
from gateway_common.principal import Principal
from llm_svc.admission import Admission, Gate
from llm_svc.breaker import Breakers
from llm_svc.domain import (
    EmbedAnswer,
    Embeddings,
    EmbedRequest,
    Interaction,
    Outcome,
    Reservation,
    ReservationState,
    ResolvedModel,
    Target,
    Usage,
    cut_text,
)
from llm_svc.ports import EmbedderPort, HistoryPort, IdentityPort, QuotaPort
from llm_svc.routing import Router, RoutingFailed
from llm_svc.service import Admitted, Timeouts
from llm_svc.settlement import Settler
from llm_svc.token_bound import embed_hold

Remaining = Callable[[], float]
_NOTHING = Embeddings((), Usage())


class EmbedService:
    def __init__(
        self,
        identity: IdentityPort,
        quota: QuotaPort,
        history: HistoryPort,
        embedder: EmbedderPort,
        timeouts: Timeouts | None = None,
        *,
        max_text_bytes: int = 256 * 1024,
        router: Router | None = None,
    ) -> None:
        self._router = router or Router(Breakers())
        self._gate = Gate(identity, quota, history)
        self._settler = Settler(quota)
        self._embedder = embedder
        self._t = timeouts or Timeouts()
        self._max_text = max_text_bytes

    async def embed(
        self,
        api_key: str,
        request: EmbedRequest,
        remaining: Remaining,
        request_id: str = "",
        admitted: Admitted = None,
    ) -> EmbedAnswer:
        request.validate()
        received, started = datetime.now(UTC), time.monotonic()

        def record(a: Admission, got: Embeddings, reason: str, outcome: Outcome) -> Interaction:
            return self._record(a, request, got, reason, outcome, received, started, request_id)

        def abandon(rid: str, principal: Principal, model: ResolvedModel) -> None:
            gone = Admission(principal, model, Reservation(rid, "", ReservationState.RESERVED), {})
            self._settler.later(record(gone, _NOTHING, "CALLER_CANCELLED", Outcome.ERROR), None)

        key, params = request.idempotency_key, _parameters(request)
        hold = embed_hold(request.model, request.inputs)
        a = await self._gate.count(
            api_key, request.model, key, remaining, abandon, params, lambda _p: hold
        )
        if admitted is not None:
            admitted(a.reservation)
        replay = a.reservation.replayed  # served before: charged and recorded then
        expires = a.reservation.expires
        try:
            got = await self._embed(a, request, remaining)
            if len(got.vectors) != len(request.inputs):
                raise Unavailable("the provider's vectors do not match", "PROVIDER_ERROR")
            if remaining() <= 0.001:
                raise DeadlineExceeded("the call ran out of time", "DEADLINE_EXCEEDED")
        except DomainError as exc:
            if not replay:
                await self._release(record(a, _NOTHING, exc.reason, Outcome.ERROR), expires)
            raise
        except asyncio.CancelledError:
            if not replay:
                gone = record(a, _NOTHING, "CALLER_CANCELLED", Outcome.ERROR)
                self._settler.later(gone, expires)
            raise
        served = record(a, got, "", Outcome.OK)
        if not replay:
            try:
                await self._settler.now(served, max(remaining() - 0.05, 0.05))
            except DomainError:  # not durable in time: not served (see ChatService)
                failed = record(a, _NOTHING, "SETTLEMENT_UNAVAILABLE", Outcome.ERROR)
                self._settler.later(failed, expires)
                raise
        return EmbedAnswer(a.request_id, a.model.name, got.vectors, got.usage, served.latency_ms)

    async def drain(self) -> None:
        await self._settler.drain()

    async def _embed(self, a: Admission, request: EmbedRequest, remaining: Remaining) -> Embeddings:
        """Over the model's deployments, retried as a chat is (llm_svc/routing.py)."""

        async def attempt(target: Target, seconds: float) -> Embeddings:
            return await self._embedder.embed(target, request.inputs, a.parameters, seconds)

        try:
            routed = await self._router.run(a.model, attempt, lambda: self._budget(remaining))
        except RoutingFailed as failed:
            raise failed.error from None
        return routed.value

    async def _release(self, failed: Interaction, expires: datetime | None) -> None:
        try:
            await self._settler.now(failed, self._t.settle_floor)
        except DomainError:
            self._settler.later(failed, expires)

    def _budget(self, remaining: Remaining) -> float:
        left = remaining()
        return max(left - min(self._t.provider_margin, left / 4), 0.001)

    def _record(
        self,
        a: Admission,
        request: EmbedRequest,
        got: Embeddings,
        reason: str,
        outcome: Outcome,
        received: datetime,
        started: float,
        request_id: str,
    ) -> Interaction:
        """The input text is the question (several inputs: one per line), no answer; the
        vectors' count and size, never the vectors, in the parameters."""
        question, _ = cut_text("\n".join(request.inputs), self._max_text)
        parameters: dict[str, Any] = {"endpoint": "embeddings", "inputs": len(request.inputs)}
        parameters.update(a.parameters)
        if got.vectors:
            parameters["vector_dimensions"] = len(got.vectors[0])
        return Interaction(
            interaction_id=a.request_id,
            tenant_id=a.principal.tenant_id,
            user_id=a.principal.user_id,
            subscription_id=a.reservation.subscription_id,
            model_id=a.model.model_id,
            model_name=a.model.name,
            timestamp=received,
            question=question,
            answer="",
            usage=got.usage,
            latency_ms=int((time.monotonic() - started) * 1000),
            parameters=parameters,
            outcome=outcome,
            request_id=request_id,
            error_reason=reason,
            cost_nanos=a.model.cost_nanos(got.usage),
        )


def _parameters(request: EmbedRequest) -> Callable[[ResolvedModel], dict[str, Any]]:
    """The provider call's parameters: the request's own (a chat model's tenant defaults,
    temperature and the like, mean nothing to an embeddings call)."""
    body: dict[str, Any] = {}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user:
        body["user"] = request.user
    return lambda _model: body
