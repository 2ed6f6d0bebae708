"""The chat flow with fakes of every port: charging, recording, spooling, idempotency."""

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
    MemoryCommits,
    MemorySpool,
    request,
)


def time_left() -> float:
    return 10.0


class World:
    def __init__(self, limit: int = 10) -> None:
        self.identity = FakeIdentity()
        self.quota = FakeQuota(limit)
        self.history = FakeHistory()
        self.provider = FakeProvider()
        self.spool = MemorySpool()
        self.commits = MemoryCommits()
        self.service = ChatService(
            self.identity, self.quota, self.history, self.provider, self.spool,
            commits=self.commits,
        )  # fmt: skip


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
    [stored] = w.history.stored.values()
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
    [stored] = w.history.stored.values()
    assert stored.outcome is Outcome.ERROR and stored.error_reason == error.reason  # type: ignore[attr-defined]


async def test_history_down_answer_still_returned_and_spooled(w: World) -> None:
    w.history.down = True
    answer = await w.service.chat("user-key", request(), time_left)
    assert answer.content.startswith("Echo")
    assert list(w.spool.items) == [answer.interaction_id]
    assert w.quota.charged == 1


async def test_retry_with_same_idempotency_key_is_charged_and_recorded_once(w: World) -> None:
    first = await w.service.chat("user-key", request(key="k-1"), time_left)
    second = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert second == first
    assert len(w.provider.calls) == 1
    assert w.quota.charged == 1 and len(w.quota.states) == 1
    assert w.history.records == 1
    other = await w.service.chat("user-key", request(key="k-2"), time_left)
    assert other.interaction_id != first.interaction_id and w.quota.charged == 2


async def test_replay_reads_a_spooled_answer_when_history_is_down(w: World) -> None:
    w.history.down = True
    first = await w.service.chat("user-key", request(key="k-1"), time_left)
    second = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert second.content == first.content and len(w.provider.calls) == 1


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


async def test_recorded_but_uncommitted_first_try_is_committed_on_retry(w: World) -> None:
    first = await w.service.chat("user-key", request(key="k-1"), time_left)
    rid = next(iter(w.quota.states))
    w.quota.states[rid] = ReservationState.RESERVED  # as if the first call died before Commit
    again = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert again.content == first.content and len(w.provider.calls) == 1
    assert w.quota.charged == 1


async def test_served_answer_whose_commit_expired_is_late_committed_not_served_again(
    w: World,
) -> None:
    first = await w.service.chat("user-key", request(key="k-1"), time_left)
    rid = next(iter(w.quota.states))
    # Its Commit never reached quota and the settlement sweep refunded it meanwhile.
    w.quota.states[rid] = ReservationState.EXPIRED
    again = await w.service.chat("user-key", request(key="k-1"), time_left)
    assert again.content == first.content and len(w.provider.calls) == 1
    assert w.quota.charged == 1 and len(w.quota.states) == 1


async def test_stream_sends_deltas_then_done_and_charges(w: World) -> None:
    events = [e async for e in w.service.chat_stream("user-key", request("a b c"), time_left)]
    *deltas, done = events
    assert "".join(str(d) for d in deltas) == "Echo: a b c"
    assert isinstance(done, ChatAnswer) and done.usage.completion_tokens == 4
    assert w.quota.charged == 1
    [stored] = w.history.stored.values()
    assert stored.outcome is Outcome.OK and stored.answer == "Echo: a b c"


async def test_stream_cancelled_by_caller_stays_charged_partial_recorded(w: World) -> None:
    w.provider.pause = 0.05
    seen: list[str] = []

    async def consume() -> None:
        async for e in w.service.chat_stream(
            "user-key", request("one two three four five six"), time_left
        ):
            seen.append(str(e))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.service.drain()
    assert w.provider.closed
    assert w.quota.charged == 1
    [stored] = w.history.stored.values()
    assert stored.outcome is Outcome.CANCELLED
    assert stored.answer == "".join(seen) and 0 < len(seen) < 7


async def test_stream_provider_failure_refunds(w: World) -> None:
    w.provider.error = Unavailable("down", "PROVIDER_ERROR")
    with pytest.raises(Unavailable):
        [e async for e in w.service.chat_stream("user-key", request(), time_left)]
    assert w.quota.charged == 0
    [stored] = w.history.stored.values()
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
    [stored] = w.history.stored.values()
    assert stored.outcome is Outcome.CANCELLED


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
    await asyncio.sleep(0.01)
    assert list(w.quota.states.values()) == [ReservationState.RELEASED]
    assert w.provider.calls == []
