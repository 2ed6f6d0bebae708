"""The chat flow with fakes of every port: one settlement per admitted call (charge or
refund, with its record), truncation, idempotency, quota failing at settlement."""

from __future__ import annotations

import asyncio

import pytest

from gateway_common.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from llm_svc.domain import ChatAnswer, Outcome, ReservationState
from llm_svc.service import ChatService
from tests.unit.llm.fakes import (
    FakeHistory,
    FakeIdentity,
    FakeProvider,
    FakeQuota,
    request,
)


def time_left() -> float:
    return 10.0


class World:
    def __init__(self, limit: int = 10, max_text: int = 256 * 1024) -> None:
        self.identity = FakeIdentity()
        self.quota = FakeQuota(limit)
        self.history = FakeHistory()
        self.provider = FakeProvider()
        self.service = ChatService(
            self.identity, self.quota, self.history, self.provider, max_text_bytes=max_text
        )


@pytest.fixture
def w() -> World:
    return World()


async def test_happy_path_charges_and_records_with_tokens_and_parameters(w: World) -> None:
    answer = await w.service.chat(
        "user-key", request("hello world", temperature=0.9, max_tokens=500), time_left, "rid-1"
    )
    assert answer.content == "Echo: hello world"
    assert answer.usage.total_tokens == 4
    assert w.quota.charged == 1
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.OK
    assert (stored.tenant_id, stored.user_id, stored.subscription_id) == ("t1", "u1", "s1")
    assert stored.model_id == "m1" and stored.question == "hello world"
    assert stored.usage.prompt_tokens == 2 and stored.request_id == "rid-1"
    assert stored.latency_ms >= 0
    assert answer.interaction_id == stored.interaction_id
    # tenant defaults under the request's own; max_tokens capped by the token limit
    params = w.provider.calls[0]["parameters"]
    assert params == {"temperature": 0.9, "presence_penalty": 0.5, "max_tokens": 100}
    assert stored.parameters == params
    assert answer.interaction_id == next(iter(w.quota.states))  # one id for both


async def test_only_user_keys_chat(w: World) -> None:
    with pytest.raises(PermissionDenied) as err:
        await w.service.chat("admin-key", request(), time_left)
    assert err.value.reason == "USER_KEY_REQUIRED"
    with pytest.raises(Unauthenticated):
        await w.service.chat("nope", request(), time_left)
    assert w.quota.calls == [] and w.provider.calls == []


async def test_unknown_model_is_not_found_and_nothing_reserved(w: World) -> None:
    with pytest.raises(NotFound):
        await w.service.chat("user-key", request(model="other"), time_left)
    assert w.quota.calls == []


async def test_invalid_request_refused_before_anything(w: World) -> None:
    with pytest.raises(InvalidArgument) as err:
        await w.service.chat("user-key", request(temperature=3.0), time_left)
    assert err.value.violations[0].field == "temperature"
    assert w.quota.calls == []


async def test_limit_reached_means_no_provider_call() -> None:
    w = World(limit=2)
    for _ in range(2):
        await w.service.chat("user-key", request(), time_left)
    with pytest.raises(ResourceExhausted) as err:
        await w.service.chat("user-key", request(), time_left)
    assert err.value.metadata["reset_time"] and err.value.violations
    assert len(w.provider.calls) == 2


async def test_no_subscription_is_failed_precondition(w: World) -> None:
    w.quota.subscribed = False
    with pytest.raises(FailedPrecondition):
        await w.service.chat("user-key", request(), time_left)
    assert w.provider.calls == []


@pytest.mark.parametrize(
    "error", [Unavailable("down", "PROVIDER_ERROR"), DeadlineExceeded("slow", "PROVIDER_TIMEOUT")]
)
async def test_provider_failure_refunds_and_records_error(w: World, error: Exception) -> None:
    w.provider.error = error  # type: ignore[assignment]
    with pytest.raises(type(error)):
        await w.service.chat("user-key", request(), time_left)
    assert w.quota.charged == 0
    assert list(w.quota.states.values()) == [ReservationState.RELEASED]
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.ERROR and stored.error_reason == error.reason  # type: ignore[attr-defined]


async def test_answer_over_historys_size_is_cut_flagged_and_charged() -> None:
    w = World(max_text=12)
    answer = await w.service.chat("user-key", request("é" * 20), time_left)
    assert answer.finish_reason == "length" and len(answer.content.encode()) <= 12
    assert answer.content == "Echo: ééé"  # cut on a character boundary
    [stored] = w.quota.records.values()
    assert stored.truncated and stored.answer == answer.content and w.quota.charged == 1


async def test_stream_over_historys_size_is_cut_and_closed() -> None:
    w = World(max_text=8)
    events = [e async for e in w.service.chat_stream("user-key", request("a b c d e"), time_left)]
    *deltas, done = events
    assert isinstance(done, ChatAnswer) and done.finish_reason == "length"
    assert "".join(d.content for d in deltas) == done.content == "Echo: a "
    [stored] = w.quota.records.values()
    assert stored.truncated and w.provider.closed and w.quota.charged == 1


async def test_quota_down_at_settlement_fails_unary_with_nothing_charged(w: World) -> None:
    w.quota.settle_error = Unavailable("quota down", "QUOTA_UNAVAILABLE")
    with pytest.raises(Unavailable):
        await w.service.chat("user-key", request(), lambda: 0.3)
    assert w.quota.charged == 0 and w.quota.records == {}
    # Once quota answers, the call is released (recorded as an error), never charged.
    w.quota.settle_error = None
    await w.service.drain()
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.ERROR and stored.error_reason == "SETTLEMENT_UNAVAILABLE"
    assert list(w.quota.states.values()) == [ReservationState.RELEASED]


async def test_stream_whose_settlement_fails_ends_unavailable_and_is_charged_later(
    w: World,
) -> None:
    w.quota.settle_error = Unavailable("quota down", "QUOTA_UNAVAILABLE")
    seen: list[object] = []
    with pytest.raises(Unavailable):
        async for e in w.service.chat_stream("user-key", request("a b"), lambda: 0.3):
            seen.append(e)
    assert seen and not any(isinstance(e, ChatAnswer) for e in seen)  # no final event
    w.quota.settle_error = None
    await w.service.drain()
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.OK and w.quota.charged == 1


async def test_settlement_of_an_expired_reservation_is_not_served(w: World) -> None:
    w.provider.pause = 0.05
    task = asyncio.create_task(w.service.chat("user-key", request(), time_left))
    await asyncio.sleep(0.02)
    w.quota.expire()  # quota's sweep got there first (refunded, recorded as an error)
    with pytest.raises(Unavailable):
        await task
    assert w.quota.charged == 0


async def test_retry_with_same_idempotency_key_is_charged_and_recorded_once(w: World) -> None:
    first = await w.service.chat("user-key", request(key="k-1"), time_left)
    second = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert second == first
    assert len(w.provider.calls) == 1
    assert w.quota.charged == 1 and len(w.quota.states) == 1
    assert len(w.quota.records) == 1
    other = await w.service.chat("user-key", request(key="k-2"), time_left)
    assert other.interaction_id != first.interaction_id and w.quota.charged == 2


async def test_replay_reads_history_once_the_record_left_the_outbox(w: World) -> None:
    first = await w.service.chat("user-key", request(key="k-1"), time_left)
    w.quota.pruned.add(first.interaction_id)
    w.history.stored[first.interaction_id] = w.quota.records[first.interaction_id]
    second = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert second.content == first.content and len(w.provider.calls) == 1
    w.history.stored.clear()
    with pytest.raises(Aborted) as err:
        await w.service.chat("user-key", request(key="k-1"), time_left)
    assert err.value.reason == "REPLAY_NOT_READY"


async def test_retry_after_a_failed_try_really_retries(w: World) -> None:
    w.provider.error = Unavailable("down", "PROVIDER_ERROR")
    with pytest.raises(Unavailable):
        await w.service.chat("user-key", request(key="k-1"), time_left)
    w.provider.error = None
    answer = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert answer.content.startswith("Echo")
    assert w.quota.charged == 1 and len(w.provider.calls) == 2
    again = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert again == answer and len(w.provider.calls) == 2


async def test_same_key_while_first_call_in_progress_is_aborted(w: World) -> None:
    w.provider.pause = 0.2
    first = asyncio.create_task(w.service.chat("user-key", request(key="k-1"), time_left))
    await asyncio.sleep(0.05)
    with pytest.raises(Aborted) as err:
        await w.service.chat("user-key", request(key="k-1"), time_left)
    assert err.value.reason == "IDEMPOTENCY_KEY_IN_PROGRESS"
    await first
    assert w.quota.charged == 1


async def test_a_cancelled_retry_never_releases_the_first_attempts_reservation(
    w: World,
) -> None:
    w.provider.pause = 0.2
    first = asyncio.create_task(w.service.chat("user-key", request(key="k-1"), time_left))
    await asyncio.sleep(0.05)
    retry = asyncio.create_task(w.service.chat("user-key", request(key="k-1"), time_left))
    await asyncio.sleep(0)
    retry.cancel()
    with pytest.raises((asyncio.CancelledError, Aborted)):
        await retry
    answer = await first
    await w.service.drain()
    assert w.quota.charged == 1 and w.quota.records[answer.interaction_id].outcome is Outcome.OK


async def test_stream_sends_deltas_then_done_and_charges(w: World) -> None:
    events = [e async for e in w.service.chat_stream("user-key", request("a b c"), time_left)]
    *deltas, done = events
    assert "".join(d.content for d in deltas) == "Echo: a b c"
    assert isinstance(done, ChatAnswer) and done.usage.completion_tokens == 4
    assert w.quota.charged == 1
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.OK and stored.answer == "Echo: a b c"


async def test_stream_cancelled_by_caller_stays_charged_partial_recorded(w: World) -> None:
    w.provider.pause = 0.05
    seen: list[str] = []

    async def consume() -> None:
        async for e in w.service.chat_stream(
            "user-key", request("one two three four five six"), time_left
        ):
            seen.append(e.content)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.service.drain()
    assert w.provider.closed
    assert w.quota.charged == 1
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.CANCELLED
    assert stored.answer == "".join(seen) and 0 < len(seen) < 7


async def test_stream_provider_failure_refunds(w: World) -> None:
    w.provider.error = Unavailable("down", "PROVIDER_ERROR")
    with pytest.raises(Unavailable):
        [e async for e in w.service.chat_stream("user-key", request(), time_left)]
    assert w.quota.charged == 0
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.ERROR


async def test_unary_call_cancelled_before_answer_is_refunded(w: World) -> None:
    w.provider.pause = 1.0
    task = asyncio.create_task(w.service.chat("user-key", request(), time_left))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.service.drain()
    assert list(w.quota.states.values()) == [ReservationState.RELEASED]
    [stored] = w.quota.records.values()
    assert stored.outcome is Outcome.ERROR and stored.error_reason == "CALLER_CANCELLED"


async def test_list_models_for_the_callers_tenant(w: World) -> None:
    page = await w.service.list_models("user-key", 50, "", time_left)
    assert [m["name"] for m in page.models] == ["demo"]


async def test_caller_leaving_during_reserve_releases_the_reservation(w: World) -> None:
    started = asyncio.Event()
    reserve = w.quota.reserve

    async def slow_reserve(*args, **kwargs):  # type: ignore[no-untyped-def]
        reply = await reserve(*args, **kwargs)
        started.set()
        await asyncio.sleep(1)
        return reply

    w.quota.reserve = slow_reserve  # type: ignore[method-assign]
    task = asyncio.create_task(w.service.chat("user-key", request(), time_left))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.service.drain()
    assert list(w.quota.states.values()) == [ReservationState.RELEASED]
    assert w.provider.calls == []
