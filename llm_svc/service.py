"""The chat use case: admit (authenticate, resolve, reserve), call the provider, settle.

The invariant (llm_svc/README.md): an answer is returned, or a stream's final event
sent, only once its settlement is durable, and every admitted request ends as exactly
one ledger transition and one history record, both written by one quota Settle:
- served: committed, recorded OK (an answer over history's size is cut to it,
  finish_reason ``length``, and flagged);
- a stream the caller cancelled after some deltas: committed, recorded CANCELLED with
  the part sent;
- failed (provider error, timeout, the caller gone before any answer): released,
  recorded ERROR;
- never settled (llm died, quota unreachable until the reservation expired): quota's
  sweep releases it and records ERROR.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from gateway_common.errors import DeadlineExceeded, DomainError
from gateway_common.metrics import tenant_label
from gateway_common.principal import Principal
from llm_svc import metrics, record
from llm_svc.admission import Admission, Gate
from llm_svc.assembly import StreamAssembly
from llm_svc.attempts import Chunks, Route, fallback_loader, open_stream, replay
from llm_svc.breaker import Breakers
from llm_svc.domain import (
    ChatAnswer,
    ChatRequest,
    ChoiceDelta,
    Completion,
    Interaction,
    Outcome,
    Reservation,
    ReservationState,
    ResolvedModel,
    StreamChunk,
    Target,
    Usage,
    cut_text,
)
from llm_svc.ports import HistoryPort, IdentityPort, ModelPage, ProviderPort, QuotaPort
from llm_svc.routing import AttemptFn, Router, RoutingFailed
from llm_svc.settlement import Settler

Remaining = Callable[[], float]
Admitted = Callable[[Reservation], None] | None  # told the reservation counted (the HTTP headers)
StreamEvent = ChoiceDelta | ChatAnswer
_NOTHING = Completion("", "", Usage())
T = TypeVar("T")


@dataclass(frozen=True)
class Timeouts:
    provider_margin: float = 0.25  # kept from the caller's deadline to settle after a timeout
    settle_floor: float = 3.0  # least time a failed call's release is given past the deadline


@dataclass(frozen=True)
class Call:
    """A call admitted to the provider: who, what, the reservation charged, and the route
    its attempts took (llm_svc/routing.py)."""

    admission: Admission
    request: ChatRequest
    received: datetime
    request_id_header: str
    started: float
    route: Route

    @property
    def model(self) -> ResolvedModel:
        return self.admission.model


class ChatService:
    def __init__(
        self,
        identity: IdentityPort,
        quota: QuotaPort,
        history: HistoryPort,
        provider: ProviderPort,
        timeouts: Timeouts | None = None,
        *,
        max_text_bytes: int = 256 * 1024,
        router: Router | None = None,
    ) -> None:
        self._identity = identity
        self._provider = provider
        self._router = router or Router(Breakers())
        self._t = timeouts or Timeouts()
        self._max_text = max_text_bytes
        self._gate = Gate(identity, quota, history)
        self._settler = Settler(quota)

    async def chat(
        self,
        api_key: str,
        request: ChatRequest,
        remaining: Remaining,
        request_id: str = "",
        admitted: Admitted = None,
    ) -> ChatAnswer:
        call = await self._admit(api_key, request, remaining, request_id, admitted)
        if isinstance(call, ChatAnswer):
            return call

        async def attempt(target: Target, seconds: float) -> Completion:
            parameters = call.route.parameters_for(target.model)
            return await self._provider.complete(target, request.messages, parameters, seconds)

        try:
            completion = await self._routed(call, attempt, remaining)
        except DomainError as exc:
            await self._release(call, _NOTHING, exc.reason)
            raise
        except asyncio.CancelledError:  # the caller gave up before any answer
            self._settler.later(
                self._record(call, _NOTHING, "CALLER_CANCELLED"), self._expiry(call)
            )
            raise
        served = self._served(call, completion)
        if remaining() <= 0.001:  # nobody is waiting for it any more: not served
            await self._release(call, completion, "DEADLINE_EXCEEDED")
            raise DeadlineExceeded("the call ran out of time", "DEADLINE_EXCEEDED")
        await self._commit_now(call, served, remaining)
        return _answer(served, completion)

    async def chat_stream(
        self,
        api_key: str,
        request: ChatRequest,
        remaining: Remaining,
        request_id: str = "",
        admitted: Admitted = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        call = await self._admit(api_key, request, remaining, request_id, admitted)
        if isinstance(call, ChatAnswer):
            if call.content:
                yield ChoiceDelta(content=call.content)
            yield call
            return
        assembly, room, sent, cut = StreamAssembly(), self._max_text, False, False
        opened: list[Chunks] = []

        async def attempt(target: Target, seconds: float) -> list[StreamChunk]:
            # Retried or fallen back only until the first delta: nothing reached the caller.
            parameters = call.route.parameters_for(target.model)
            stream = self._provider.stream(
                target, request.messages, parameters, self._budget(remaining)
            )
            head = await open_stream(stream, seconds)
            opened.append(stream)
            return head

        try:
            head = await self._routed(call, attempt, remaining)
        except DomainError as exc:
            await self._release(call, _NOTHING, exc.reason)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            self._settler.later(
                self._record(call, _NOTHING, "CALLER_CANCELLED"), self._expiry(call)
            )
            raise
        chunks = replay(head, opened[-1])
        try:
            async for chunk in chunks:
                chunk, room, cut = _within(chunk, room)
                for delta in assembly.add(chunk):
                    sent = True
                    yield delta
                if cut:  # history's size reached: stop reading, tell the caller
                    break
        except DomainError as exc:  # the provider failed part-way: not served, not retried
            call.route.failed_after_start(exc.reason)
            await self._release(call, assembly.completion(), exc.reason)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # The caller cancelled: what was sent is charged and recorded CANCELLED;
            # nothing sent yet: released (see module docstring).
            partial = assembly.completion("cancelled")
            gone = (
                self._record(call, partial, "", Outcome.CANCELLED)
                if sent
                else self._record(call, partial, "CALLER_CANCELLED")
            )
            self._settler.later(gone, self._expiry(call))
            raise
        finally:
            await chunks.aclose()
            await opened[-1].aclose()
        whole = assembly.completion("length" if cut else "")
        served = self._served(call, whole, cut)
        try:
            await self._settler.now(served, self._settle_budget(remaining))
        except DomainError:
            # Deltas were sent: keep trying to charge them until the reservation expires.
            self._settler.later(served, self._expiry(call))
            raise
        yield _answer(served, whole)

    async def list_models(
        self, api_key: str, page_size: int, page_token: str, remaining: Remaining
    ) -> ModelPage:
        principal: Principal = await self._identity.authenticate(api_key, remaining())
        return await self._identity.list_models(
            api_key, principal.tenant_id, page_size, page_token, remaining()
        )

    async def drain(self) -> None:
        """Wait for settlements still running in the background (on shutdown, in tests)."""
        await self._settler.drain()

    # -- admission and settlement ----------------------------------------------------------

    async def _admit(
        self,
        api_key: str,
        request: ChatRequest,
        remaining: Remaining,
        request_id: str,
        admitted: Admitted = None,
    ) -> Call | ChatAnswer:
        received = datetime.now(UTC)

        def abandon(rid: str, principal: Principal, model: ResolvedModel) -> None:
            reservation = Reservation(rid, "", ReservationState.RESERVED)
            admission = Admission(principal, model, reservation, {})
            gone = Call(admission, request, received, request_id, time.monotonic(), Route({}))
            self._settler.later(self._record(gone, _NOTHING, "CALLER_CANCELLED"), None)

        admission = await self._gate.admit(api_key, request, remaining, abandon)
        if admitted is not None:
            admitted(admission.reservation)
        if admission.replay is not None:
            return admission.replay
        route = Route(admission.parameters)
        return Call(admission, request, received, request_id, time.monotonic(), route)

    async def _routed(self, call: Call, attempt: AttemptFn[T], remaining: Remaining) -> T:
        """The first answer over the model's deployments and fallbacks; the last failure
        (a domain error) when none answered. The route is kept on the call for the record."""
        tenant = call.admission.principal.tenant_id
        load = fallback_loader(self._identity, tenant, call.request, call.route, remaining)
        try:
            routed = await self._router.run(
                call.model, attempt, lambda: self._budget(remaining), load, call.route.attempts
            )
        except RoutingFailed as failed:
            raise failed.error from None
        call.route.target = routed.target
        return routed.value

    async def _commit_now(self, call: Call, served: Interaction, remaining: Remaining) -> None:
        try:
            await self._settler.now(served, self._settle_budget(remaining))
        except DomainError:
            # Not durable in time: not served. Release it once quota answers (if the commit
            # did land meanwhile, that release finds it settled and changes nothing).
            failed = self._record(call, _NOTHING, "SETTLEMENT_UNAVAILABLE")
            self._settler.later(failed, self._expiry(call))
            raise

    async def _release(self, call: Call, completion: Completion, reason: str) -> None:
        failed = self._record(call, completion, reason)
        try:
            await self._settler.now(failed, self._t.settle_floor)
        except DomainError:  # quota unreachable: keep trying; else it expires as an error
            self._settler.later(failed, self._expiry(call))

    def _budget(self, remaining: Remaining) -> float:
        left = remaining()
        return max(left - min(self._t.provider_margin, left / 4), 0.001)

    def _settle_budget(self, remaining: Remaining) -> float:
        """Settle retries stop in time to answer UNAVAILABLE before the caller's deadline."""
        left = remaining()
        return max(left - min(0.1, left / 4), 0.05)

    @staticmethod
    def _expiry(call: Call) -> datetime | None:
        return call.admission.reservation.expires

    def _served(self, call: Call, completion: Completion, cut: bool = False) -> Interaction:
        """The record of an answer served: cut to history's size (and flagged) if over it.
        A stream arrives already cut (its finish reason says ``length``)."""
        _count_tokens(call.admission.principal.tenant_id, call.model.name, completion.usage)
        answer, over = cut_text(completion.content, self._max_text)
        cut = cut or over
        if cut:
            metrics.TRUNCATED.inc()
            first = replace(completion.all_choices()[0], content=answer, finish_reason="length")
            completion = Completion.of((first, *completion.all_choices()[1:]), completion.usage)
        return replace(self._record(call, completion, "", Outcome.OK), truncated=cut)

    def _record(
        self,
        call: Call,
        completion: Completion,
        error_reason: str,
        outcome: Outcome = Outcome.ERROR,
    ) -> Interaction:
        a, target = call.admission, call.route.target if outcome is not Outcome.ERROR else None
        parameters = call.route.parameters_for(target.model) if target else a.parameters
        content = record.record_content(call.request, parameters, completion)
        question, _ = cut_text(content.question, self._max_text)
        return Interaction(
            interaction_id=a.request_id,
            tenant_id=a.principal.tenant_id,
            user_id=a.principal.user_id,
            subscription_id=a.reservation.subscription_id,
            model_id=call.model.model_id,
            model_name=call.model.name,
            timestamp=call.received,
            question=question,
            answer=content.answer,
            usage=completion.usage,
            latency_ms=int((time.monotonic() - call.started) * 1000),
            parameters=content.prompt_parameters,
            outcome=outcome,
            request_id=call.request_id_header,
            error_reason=error_reason,
            finish_reason=content.finish_reason,
            deployment_id=target.deployment.deployment_id if target else "",
            answered_model=target.model.name if target else "",
            attempts=tuple(call.route.attempts),
            cost_nanos=(target.model if target else call.model).cost_nanos(completion.usage),
        )


def _answer(served: Interaction, completion: Completion) -> ChatAnswer:
    """The answer as settled (cut to history's size when it was), with every choice."""
    choices = completion.all_choices()
    if served.truncated:
        first = replace(choices[0], content=served.answer, finish_reason="length")
        choices = (first, *choices[1:])
    return ChatAnswer(
        interaction_id=served.interaction_id,
        model=served.model_name,
        content=served.answer,
        finish_reason=served.finish_reason or "stop",
        usage=completion.usage,
        latency_ms=served.latency_ms,
        choices=choices,
    )


def _within(chunk: StreamChunk, room: int) -> tuple[StreamChunk, int, bool]:
    """The chunk with the first choice's text kept within ``room`` bytes (history's size
    still free), the room left, and whether it had to be cut."""
    kept: list[ChoiceDelta] = []
    cut = False
    for d in chunk.choices:
        if d.index == 0 and d.content:
            piece, cut = cut_text(d.content, room)
            room -= len(piece.encode())
            d = replace(d, content=piece, finish_reason="length" if cut else d.finish_reason)
        kept.append(d)
    return replace(chunk, choices=tuple(kept)), room, cut


def _count_tokens(tenant_id: str, model: str, usage: Usage) -> None:
    tenant = tenant_label(tenant_id)  # "other" unless allow-listed: bounded cardinality
    metrics.TOKENS.labels(tenant, model, "prompt").inc(usage.prompt_tokens)
    metrics.TOKENS.labels(tenant, model, "completion").inc(usage.completion_tokens)
