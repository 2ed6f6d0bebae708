"""The chat use case: authenticate, resolve, reserve, call the provider, record, commit.

Charging rule: a request is charged (Commit) when the provider did the work (an answer,
or a stream the caller cancelled part-way); it is refunded (Release) when the provider
failed, timed out or rejected the request, or when the caller gave up before any answer.
Every outcome is recorded in history, or in the local spool when history is down; a
Commit quota could not take goes to the commit spool and is retried until it lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway_common.errors import DeadlineExceeded, DomainError, Unavailable
from gateway_common.principal import Principal
from llm_svc import metrics
from llm_svc.domain import (
    ChatAnswer,
    ChatRequest,
    Completion,
    Interaction,
    Outcome,
    ResolvedModel,
    Usage,
)
from llm_svc.idempotency import Admission, Gate
from llm_svc.ports import (
    TRANSIENT,
    CommitSpoolPort,
    HistoryPort,
    IdentityPort,
    ModelPage,
    ProviderPort,
    QuotaPort,
    SpoolPort,
)

log = logging.getLogger("llm.chat")
T = TypeVar("T")
Remaining = Callable[[], float]
StreamEvent = str | ChatAnswer


@dataclass(frozen=True)
class Timeouts:
    provider_margin: float = 0.25  # kept from the caller's deadline to settle after a timeout
    settle_floor: float = 3.0  # least time given to Record/Commit/Release, even past the deadline
    history: float = 2.0  # beyond this, the interaction goes to the spool


@dataclass(frozen=True)
class Call:
    """A call admitted to the provider: who, what, and the reservation charged."""

    admission: Admission
    request: ChatRequest
    received: datetime
    request_id_header: str

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
        spool: SpoolPort,
        timeouts: Timeouts | None = None,
        *,
        commits: CommitSpoolPort,
    ) -> None:
        self._identity = identity
        self._quota = quota
        self._history = history
        self._provider = provider
        self._spool = spool
        self._commits = commits
        self._t = timeouts or Timeouts()
        self._gate = Gate(identity, quota, history, spool)
        self._background: set[asyncio.Task[Any]] = set()

    async def chat(
        self, api_key: str, request: ChatRequest, remaining: Remaining, request_id: str = ""
    ) -> ChatAnswer:
        received = datetime.now(UTC)
        admission = await self._gate.admit(api_key, request, remaining)
        if admission.replay is not None:
            return admission.replay
        call = Call(admission, request, received, request_id)
        try:
            return await self._complete(call, remaining)
        finally:
            self._gate.done(admission)

    async def chat_stream(
        self, api_key: str, request: ChatRequest, remaining: Remaining, request_id: str = ""
    ) -> AsyncIterator[StreamEvent]:
        received = datetime.now(UTC)
        admission = await self._gate.admit(api_key, request, remaining)
        if admission.replay is not None:
            if admission.replay.content:
                yield admission.replay.content
            yield admission.replay
            return
        call = Call(admission, request, received, request_id)
        try:
            async for event in self._stream(call, remaining):
                yield event
        finally:
            self._gate.done(admission)

    async def list_models(
        self, api_key: str, page_size: int, page_token: str, remaining: Remaining
    ) -> ModelPage:
        principal: Principal = await self._identity.authenticate(api_key, remaining())
        return await self._identity.list_models(
            api_key, principal.tenant_id, page_size, page_token, remaining()
        )

    async def drain(self) -> None:
        """Wait for settlements still running in the background (on shutdown, in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- the provider call and its settlement ---------------------------------------------

    async def _complete(self, call: Call, remaining: Remaining) -> ChatAnswer:
        started = time.monotonic()
        try:
            completion = await self._provider.complete(
                call.model,
                call.request.messages,
                call.admission.parameters,
                self._budget(remaining),
            )
        except DomainError as exc:
            failed = self._interaction(call, Completion("", "", Usage()), started, exc)
            await self._settle(self._refund(failed, call, exc.reason, remaining))
            raise
        except asyncio.CancelledError:  # the caller gave up before any answer: refund
            gone = self._interaction(call, Completion("", "", Usage()), started, None, cancel=True)
            self._detach(self._refund(gone, call, "CALLER_CANCELLED", remaining))
            raise
        done = self._interaction(call, completion, started, None)
        stored = await self._settle(self._charge(done, call, remaining))
        return _answer(stored, completion.finish_reason)

    async def _stream(self, call: Call, remaining: Remaining) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        parts: list[str] = []
        finish, usage = "", Usage()
        chunks = self._provider.stream(
            call.model, call.request.messages, call.admission.parameters, self._budget(remaining)
        )
        try:
            async for chunk in chunks:
                if chunk.delta:
                    parts.append(chunk.delta)
                    yield chunk.delta
                finish = chunk.finish_reason or finish
                usage = chunk.usage or usage
        except DomainError as exc:  # the provider failed, maybe part-way: refund
            partial = Completion("".join(parts), finish, usage)
            failed = self._interaction(call, partial, started, exc)
            await self._settle(self._refund(failed, call, exc.reason, remaining))
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # The caller cancelled: the provider call is closed below; the work done is
            # charged and the partial answer recorded as CANCELLED (see module docstring).
            partial = Completion("".join(parts), "cancelled", usage)
            gone = self._interaction(call, partial, started, None, cancel=True)
            self._detach(self._charge(gone, call, remaining))
            raise
        finally:
            await chunks.aclose()
        done = self._interaction(call, Completion("".join(parts), finish, usage), started, None)
        stored = await self._settle(self._charge(done, call, remaining))
        yield _answer(stored, finish)

    def _budget(self, remaining: Remaining) -> float:
        left = remaining()
        return max(left - min(self._t.provider_margin, left / 4), 0.001)

    def _settle_timeout(self, remaining: Remaining) -> float:
        return max(remaining(), self._t.settle_floor)

    async def _charge(
        self, interaction: Interaction, call: Call, remaining: Remaining
    ) -> Interaction:
        stored = await self._record(interaction, remaining)
        rid = call.admission.request_id
        try:
            await self._quota.commit(rid, self._settle_timeout(remaining))
        except TRANSIENT as exc:  # served: keep the Commit and retry it until quota answers
            metrics.COMMIT_FAILURES.inc()
            log.warning("quota commit failed (%s): spooling", exc.reason, extra={"rid": rid})
            await self._spool_commit(rid)
        except DomainError as exc:
            metrics.COMMIT_FAILURES.inc()
            log.error("quota refused the commit: %s", exc.reason, extra={"rid": rid})
        return stored

    async def _spool_commit(self, request_id: str) -> None:
        try:
            await self._commits.put(request_id)
        except OSError:  # the answer is still returned; the reservation will expire
            log.exception("could not spool a commit: uncharged", extra={"rid": request_id})
            return
        metrics.COMMITS_SPOOLED.inc()

    async def _refund(
        self, interaction: Interaction, call: Call, reason: str, remaining: Remaining
    ) -> Interaction:
        try:
            await self._quota.release(
                call.admission.request_id, reason, self._settle_timeout(remaining)
            )
        except DomainError as exc:  # it expires and is refunded by quota's settle rule
            log.warning("quota release failed: %s", exc.reason)
        return await self._record(interaction, remaining)

    async def _record(self, interaction: Interaction, remaining: Remaining) -> Interaction:
        """History, else the durable spool (replayed later): never lost, never doubled."""
        timeout = min(self._settle_timeout(remaining), self._t.history)
        try:
            return await self._history.record(interaction, timeout)
        except (Unavailable, DeadlineExceeded) as exc:
            log.warning("history unreachable (%s): spooling", exc.reason)
            await self._spool.put(interaction)
            metrics.SPOOLED.inc()
            return interaction

    async def _settle(self, work: Awaitable[T]) -> T:
        """Run to completion even if the caller goes away meanwhile."""
        task = self._detach(work)
        return await asyncio.shield(task)

    def _detach(self, work: Awaitable[T]) -> asyncio.Task[T]:
        async def run() -> T:
            return await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _interaction(
        self,
        call: Call,
        completion: Completion,
        started: float,
        error: DomainError | None,
        *,
        cancel: bool = False,
    ) -> Interaction:
        latency_ms = int((time.monotonic() - started) * 1000)
        outcome = Outcome.CANCELLED if cancel else Outcome.ERROR if error else Outcome.OK
        a = call.admission
        if outcome is Outcome.OK:
            _count_tokens(a.principal.tenant_id, call.model.name, completion.usage)
        return Interaction(
            interaction_id=a.interaction_id,
            tenant_id=a.principal.tenant_id,
            user_id=a.principal.user_id,
            subscription_id=a.reservation.subscription_id,
            model_id=call.model.model_id,
            model_name=call.model.name,
            timestamp=call.received,
            question=call.request.question,
            answer=completion.content,
            usage=completion.usage,
            latency_ms=latency_ms,
            parameters=a.parameters,
            outcome=outcome,
            request_id=call.request_id_header,
            error_reason=error.reason if error else "",
            finish_reason=completion.finish_reason,
        )


def _answer(stored: Interaction, finish_reason: str = "") -> ChatAnswer:
    """The answer as history stored it (the first one, should two tries have raced)."""
    return ChatAnswer(
        interaction_id=stored.interaction_id,
        model=stored.model_name,
        content=stored.answer,
        finish_reason=finish_reason or stored.finish_reason or "stop",
        usage=stored.usage,
        latency_ms=stored.latency_ms,
    )


def _count_tokens(tenant_id: str, model: str, usage: Usage) -> None:
    metrics.TOKENS.labels(tenant_id, model, "prompt").inc(usage.prompt_tokens)
    metrics.TOKENS.labels(tenant_id, model, "completion").inc(usage.completion_tokens)
