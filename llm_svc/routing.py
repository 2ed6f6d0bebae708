"""Which deployment serves each attempt of a request, what is retried, and the fallbacks.

Per request: the model's deployments by priority (lowest first), weighted at random among
equal priorities, skipping those whose circuit is open (llm_svc/breaker.py) or that asked
to be left alone (Retry-After). A retryable failure (connection error, timeout, HTTP 429,
500, 502, 503, 504) moves to the next eligible deployment, up to ``max_attempts`` per
model and never past the caller's deadline; anything else (a 4xx refusal, a destination
the platform forbids) ends the request at once. When every deployment failed retryably
(or none was eligible), the configuration's fallback models are tried in order, each with
its own deployments; a context-length refusal falls back too when the configuration says
so. The caller is charged once whatever happens here: this module only makes attempts
and reports them (llm_svc/service.py settles).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway_common.errors import DeadlineExceeded, DomainError, Unavailable
from llm_svc import metrics
from llm_svc.breaker import Breakers
from llm_svc.domain import Attempt, Deployment, ResolvedModel, Target

T = TypeVar("T")
AttemptFn = Callable[[Target, float], Awaitable[T]]  # (where, seconds it may take)
FallbackFn = Callable[[str], Awaitable[ResolvedModel | None]]  # None: not usable
RETRYABLE_HTTP = frozenset({429, 500, 502, 503, 504})
CONTEXT_LENGTH = "PROVIDER_CONTEXT_LENGTH_EXCEEDED"
_HOLD_MAX_SECONDS = 60.0  # the longest a Retry-After keeps a deployment aside
_HOLDS_MAX = 10_000


def retryable(exc: DomainError) -> bool:
    if isinstance(exc, DeadlineExceeded):
        return exc.reason == "PROVIDER_TIMEOUT"
    if not isinstance(exc, Unavailable):
        return False
    if exc.reason == "PROVIDER_UNAVAILABLE":  # refused, reset, unreachable
        return True
    http = exc.metadata.get("http_status", "")
    return http.isdigit() and int(http) in RETRYABLE_HTTP


@dataclass(frozen=True)
class RoutingSettings:
    max_attempts: int = 3  # per model (its fallbacks get their own)
    retry_after_max_seconds: float = 2.0  # a longer Retry-After: the deployment is skipped
    min_attempt_seconds: float = 0.05  # no attempt starts with less time left than this


@dataclass(frozen=True)
class Routed(Generic[T]):
    value: T
    target: Target
    attempts: tuple[Attempt, ...]


class RoutingFailed(Exception):
    """Every attempt failed (or none could be made): the error for the caller, and the
    attempts made, for the record."""

    def __init__(self, error: DomainError, attempts: tuple[Attempt, ...]) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


@dataclass(frozen=True)
class _Failed:
    error: DomainError | None  # None: no attempt was made
    retryable: bool


NO_DEPLOYMENT = "PROVIDER_CIRCUIT_OPEN"  # a PROVIDER_* reason, as every provider outage


class Router:
    def __init__(
        self,
        breakers: Breakers,
        settings: RoutingSettings | None = None,
        *,
        host_of: Callable[[Deployment], str] = lambda d: d.base_url,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.breakers = breakers
        self.settings = settings or RoutingSettings()
        self._host_of = host_of
        self._rng = rng or random.Random()
        self._clock = clock
        self._held: dict[str, float] = {}  # deployment -> not before (its Retry-After)

    def order(self, deployments: tuple[Deployment, ...]) -> list[Deployment]:
        """Lowest priority first; among equals, a weighted random order."""
        out: list[Deployment] = []
        for priority in sorted({d.priority for d in deployments}):
            pool = [d for d in deployments if d.priority == priority]
            while pool:
                pick = self._rng.choices(pool, weights=[max(d.weight, 1) for d in pool])[0]
                pool.remove(pick)
                out.append(pick)
        return out

    async def run(
        self,
        model: ResolvedModel,
        attempt: AttemptFn[T],
        budget: Callable[[], float],
        fallback: FallbackFn | None = None,
        attempts: list[Attempt] | None = None,
    ) -> Routed[T]:
        """The first answer; RoutingFailed when none came (its error is the last seen).
        ``attempts`` (the caller's list) receives every attempt as it ends."""
        attempts = [] if attempts is None else attempts
        last: DomainError | None = None
        current: ResolvedModel | None = model
        names = self._fallback_names(model)
        while current is not None:
            outcome = await self._one_model(current, attempt, budget, attempts)
            if isinstance(outcome, Routed):
                return outcome
            last = outcome.error or last
            context = outcome.error is not None and outcome.error.reason == CONTEXT_LENGTH
            falls_back = outcome.retryable or (context and model.fallback_on_context_length)
            if not falls_back or fallback is None or budget() < self.settings.min_attempt_seconds:
                break
            current = None
            for name in names:
                current = await fallback(name)
                if current is not None:
                    metrics.FALLBACKS.inc()
                    break
        error = last or Unavailable(
            "no deployment of the model is available now (circuit open or asked to wait)",
            NO_DEPLOYMENT,
        )
        raise RoutingFailed(error, tuple(attempts))

    def _fallback_names(self, model: ResolvedModel) -> Iterator[str]:
        seen = {model.name}
        for name in model.fallback_models:
            if name not in seen:
                seen.add(name)
                yield name

    async def _one_model(
        self,
        model: ResolvedModel,
        attempt: AttemptFn[T],
        budget: Callable[[], float],
        attempts: list[Attempt],
    ) -> Routed[T] | _Failed:
        order = self.order(model.deployments)
        made, last = 0, None
        rounds = math.ceil(self.settings.max_attempts / len(order)) if order else 0
        for _ in range(rounds):  # more attempts than deployments: round again
            made_before = made
            for deployment in order:
                if made >= self.settings.max_attempts:
                    return _Failed(last, True)
                if not await self._eligible(deployment, budget):
                    continue
                left = budget()
                if left < self.settings.min_attempt_seconds:
                    return _Failed(last or _out_of_time(), True)
                made += 1
                outcome = await self._attempt(model, deployment, attempt, left, attempts)
                if isinstance(outcome, Routed):
                    return outcome
                if not retryable(outcome):
                    return _Failed(outcome, False)
                last = outcome
            if made == made_before:
                break  # nothing was eligible this round: no point in another
        return _Failed(last, True)

    async def _eligible(self, deployment: Deployment, budget: Callable[[], float]) -> bool:
        """Not held by a Retry-After we cannot wait for, and its circuit lets a call in."""
        wait = self._held.get(deployment.deployment_id, 0.0) - self._clock()
        if wait > 0:
            fits = wait <= self.settings.retry_after_max_seconds and (
                wait + self.settings.min_attempt_seconds < budget()
            )
            if not fits:
                return False
            await asyncio.sleep(wait)
        return self.breakers.allows(deployment.deployment_id)

    async def _attempt(
        self,
        model: ResolvedModel,
        deployment: Deployment,
        attempt: AttemptFn[T],
        left: float,
        attempts: list[Attempt],
    ) -> Routed[T] | DomainError:
        target, did = Target(model, deployment), deployment.deployment_id
        host = metrics.host_label(self._host_of(deployment))
        limit = min(left, deployment.attempt_timeout or left)
        started = self._clock()
        try:
            try:
                async with asyncio.timeout(limit):  # the adapter's own limit, enforced here too
                    value = await attempt(target, limit)
            except TimeoutError:
                raise _out_of_time() from None
        except DomainError as exc:
            took = self._clock() - started
            again = retryable(exc)
            self.breakers.record(did, failed=again)
            self._hold(did, exc)
            http = exc.metadata.get("http_status", "")
            status = int(http) if http.isdigit() else 0
            attempts.append(Attempt(did, model.name, exc.reason, status, int(took * 1000)))
            metrics.attempt(host, "retryable" if again else "refused", took)
            return exc
        except BaseException:  # the caller left: no verdict on the deployment
            self.breakers.release(did)
            raise
        took = self._clock() - started
        self.breakers.record(did, failed=False)
        attempts.append(Attempt(did, model.name, "OK", 200, int(took * 1000)))
        metrics.attempt(host, "ok", took)
        return Routed(value, target, tuple(attempts))

    def _hold(self, deployment_id: str, exc: DomainError) -> None:
        try:
            wait = float(exc.metadata.get("retry_after", ""))
        except ValueError:
            return
        if len(self._held) >= _HOLDS_MAX:
            now = self._clock()
            self._held = {k: v for k, v in self._held.items() if v > now}
        self._held[deployment_id] = self._clock() + min(wait, _HOLD_MAX_SECONDS)


def _out_of_time() -> DomainError:
    return DeadlineExceeded("the model did not answer in time", "PROVIDER_TIMEOUT")
