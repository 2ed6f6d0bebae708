"""Routing over deployments with fakes of every port: the choice per request, what is
retried and what is not, fallbacks, streams before and after the first delta, the circuit
breaker, and one settlement whatever the attempts."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace

import pytest

from gateway_common.errors import DeadlineExceeded, InvalidArgument, Unavailable
from llm_svc.breaker import Breakers, BreakerSettings, State
from llm_svc.domain import ChatAnswer, Deployment, Outcome
from llm_svc.routing import Router, RoutingSettings, retryable
from llm_svc.service import ChatService
from tests.unit.llm.fakes import MODEL, FakeHistory, FakeIdentity, FakeProvider, FakeQuota, request


def time_left() -> float:
    return 10.0


def dep(name: str, priority: int = 0, weight: int = 1, timeout: float | None = None) -> Deployment:
    return Deployment(
        name, f"http://{name}/v1", f"sk-{name}", "up-" + name, priority, weight, timeout
    )


def http(status: int, retry_after: str = "") -> Unavailable:
    metadata = {"http_status": str(status)}
    if retry_after:
        metadata["retry_after"] = retry_after
    return Unavailable(f"HTTP {status}", "PROVIDER_ERROR", metadata=metadata)


DOWN = Unavailable("the provider is unreachable", "PROVIDER_UNAVAILABLE")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, *deployments: Deployment, fallbacks: tuple[str, ...] = (), **routing):
        self.identity = FakeIdentity()
        self.identity.models[("t1", "demo")] = replace(
            MODEL, deployments=deployments, fallback_models=fallbacks
        )
        self.quota = FakeQuota(100)
        self.provider = FakeProvider()
        self.breakers = Breakers(BreakerSettings(consecutive_failures=3, cooldown_seconds=5))
        self.router = Router(self.breakers, RoutingSettings(**routing), rng=random.Random(7))
        self.service = ChatService(
            self.identity, self.quota, FakeHistory(), self.provider, router=self.router
        )

    def called(self) -> list[str]:
        return [c["deployment"] for c in self.provider.calls]

    async def chat(self, text: str = "hi") -> ChatAnswer:
        return await self.service.chat("user-key", request(text), time_left)


def test_order_is_by_priority_then_weighted_among_equals() -> None:
    router = Router(Breakers(), rng=random.Random(1))
    seen = Counter()
    for _ in range(2000):
        order = router.order((dep("c", 1), dep("a", 0, 3), dep("b", 0, 1)))
        assert order[-1].deployment_id == "c"
        seen[order[0].deployment_id] += 1
    assert 0.7 < seen["a"] / 2000 < 0.8  # weight 3 of 4


@pytest.mark.parametrize(
    "error, again",
    [
        (DOWN, True),
        (DeadlineExceeded("slow", "PROVIDER_TIMEOUT"), True),
        (http(429), True),
        (http(500), True),
        (http(502), True),
        (http(503), True),
        (http(504), True),
        (http(501), False),
        (Unavailable("auth", "PROVIDER_AUTH_FAILED", metadata={"http_status": "401"}), False),
        (InvalidArgument("no", "PROVIDER_REJECTED_REQUEST"), False),
        (DeadlineExceeded("caller", "DEADLINE_EXCEEDED"), False),
    ],
)
def test_what_is_retryable(error: Exception, again: bool) -> None:
    assert retryable(error) is again  # type: ignore[arg-type]


async def test_a_failed_deployment_is_retried_on_the_next_and_charged_once() -> None:
    w = World(dep("a"), dep("b", 1))
    w.provider.failing["a"] = http(503)
    answer = await w.chat()
    assert answer.content.startswith("Echo")
    assert w.called() == ["a", "b"]
    assert w.provider.calls[-1]["upstream"] == "up-b"
    assert w.quota.charged == 1
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.OK and stored.deployment_id == "b"
    assert stored.answered_model == "demo"
    assert [(a.deployment_id, a.status, a.http_status) for a in stored.attempts] == [
        ("a", "PROVIDER_ERROR", 503),
        ("b", "OK", 200),
    ]


async def test_a_refusal_is_returned_at_once() -> None:
    w = World(dep("a"), dep("b", 1))
    w.provider.failing["a"] = InvalidArgument("bad", "PROVIDER_REJECTED_REQUEST")
    with pytest.raises(InvalidArgument):
        await w.chat()
    assert w.called() == ["a"]
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.ERROR and len(stored.attempts) == 1


async def test_all_failing_is_the_last_error_released_with_every_attempt() -> None:
    w = World(dep("a"), dep("b"), max_attempts=3)
    w.provider.failing.update(a=DOWN, b=DOWN)
    with pytest.raises(Unavailable):
        await w.chat()
    assert len(w.called()) == 3  # bounded: a round and a half over two deployments
    assert w.quota.charged == 0
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.ERROR and stored.error_reason == "PROVIDER_UNAVAILABLE"
    assert len(stored.attempts) == 3 and stored.deployment_id == ""


async def test_fallback_model_answers_when_every_deployment_fails() -> None:
    w = World(dep("a"), fallbacks=("missing", "spare"))
    w.identity.models[("t1", "spare")] = replace(
        MODEL, model_id="m2", name="spare", deployments=(dep("s"),), token_limit=7
    )
    w.provider.failing["a"] = http(502)
    answer = await w.chat()
    assert answer.content.startswith("Echo")
    assert w.called() == ["a", "a", "a", "s"]
    assert w.provider.calls[-1]["parameters"]["max_tokens"] == 7  # the fallback's own limits
    [stored] = w.quota.records.values()
    assert stored.answered_model == "spare" and stored.deployment_id == "s"
    assert stored.model_name == "demo"  # what the caller asked for


async def test_context_length_falls_back_only_when_configured() -> None:
    too_long = InvalidArgument("long", "PROVIDER_CONTEXT_LENGTH_EXCEEDED")
    w = World(dep("a"), fallbacks=("spare",))
    w.identity.models[("t1", "spare")] = replace(MODEL, name="spare", deployments=(dep("s"),))
    w.provider.failing["a"] = too_long
    with pytest.raises(InvalidArgument):
        await w.chat()
    model = w.identity.models[("t1", "demo")]
    w.identity.models[("t1", "demo")] = replace(model, fallback_on_context_length=True)
    assert (await w.chat()).content.startswith("Echo")
    assert w.called() == ["a", "a", "s"]


async def test_retry_after_is_waited_for_when_it_fits_else_the_deployment_skipped() -> None:
    w = World(dep("a"), max_attempts=2, retry_after_max_seconds=0.2)
    w.provider.failing["a"] = http(429, "0.05")
    with pytest.raises(Unavailable):
        await w.chat()
    assert w.called() == ["a", "a"]  # waited 50 ms, then tried again
    w.provider.calls.clear()
    w.provider.failing["a"] = http(429, "30")
    with pytest.raises(Unavailable):
        await w.chat()
    assert w.called() == ["a"]
    w.provider.calls.clear()
    with pytest.raises(Unavailable) as caught:
        await w.chat()  # still held by its Retry-After: nothing to call
    assert w.called() == [] and caught.value.reason == "PROVIDER_CIRCUIT_OPEN"


async def test_the_attempt_timeout_moves_on_within_the_deadline() -> None:
    w = World(dep("slow", timeout=0.05), dep("b", 1))
    w.provider.pause = 0.2
    deadline = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):  # b is slow too, and the caller has 0.3 s
        await w.service.chat("user-key", request("hi"), lambda: deadline - time.monotonic())
    assert time.monotonic() - started < 0.3
    assert w.called() == ["slow", "b"]
    [stored] = w.quota.records.values()
    assert [a.status for a in stored.attempts] == ["PROVIDER_TIMEOUT", "PROVIDER_TIMEOUT"]


async def test_a_stream_is_retried_before_its_first_delta_only() -> None:
    w = World(dep("a"), dep("b", 1))
    w.provider.failing["a"] = DOWN
    events = [e async for e in w.service.chat_stream("user-key", request("hi there"), time_left)]
    assert isinstance(events[-1], ChatAnswer) and w.called() == ["a", "b"]
    w.provider.calls.clear()
    w.provider.failing.clear()
    w.provider.fail_mid_stream = DOWN
    got = []
    with pytest.raises(Unavailable):
        async for event in w.service.chat_stream("user-key", request("hi there"), time_left):
            got.append(event)
    assert got and w.called() == ["a"]  # a delta was sent: not retried
    stored = list(w.quota.records.values())[-1]
    assert stored.outcome is Outcome.ERROR and stored.attempts[-1].status == "PROVIDER_UNAVAILABLE"


async def test_the_breaker_opens_skips_and_closes_after_a_probe() -> None:
    clock = Clock()
    moves: list[tuple[str, State, State]] = []
    breakers = Breakers(
        BreakerSettings(consecutive_failures=3, cooldown_seconds=5),
        lambda d, old, new: moves.append((d, old, new)),
        clock,
    )
    for _ in range(3):
        assert breakers.allows("a")
        breakers.record("a", failed=True)
    assert breakers.state("a") is State.OPEN and not breakers.allows("a")
    clock.now += 5
    assert breakers.allows("a") and not breakers.allows("a")  # one probe at a time
    breakers.record("a", failed=False)
    assert breakers.state("a") is State.CLOSED
    assert [(o.value, n.value) for _, o, n in moves] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert breakers.counts()[State.CLOSED] == 1


def test_the_breaker_opens_on_a_failure_ratio() -> None:
    clock = Clock()
    breakers = Breakers(
        BreakerSettings(consecutive_failures=100, failure_ratio=0.5, min_calls=10), clock=clock
    )
    for i in range(10):
        breakers.record("a", failed=i % 2 == 0)
        clock.now += 0.1
    assert breakers.state("a") is State.OPEN


async def test_an_open_circuit_is_skipped_by_the_router() -> None:
    w = World(dep("a"), dep("b", 1))
    w.provider.failing["a"] = DOWN
    for _ in range(5):
        await w.chat()
    assert w.called().count("a") == 3  # opened after 3 failures in a row, then skipped
    assert w.breakers.state("a") is State.OPEN
