"""A Commit quota could not take is spooled durably and retried until it lands: the
served answer is charged exactly once; an entry is deleted only once quota answered."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway_common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from llm_svc import metrics
from llm_svc.commit_spool import CommitReplayer, CommitSpool
from llm_svc.domain import ReservationState
from llm_svc.service import ChatService
from tests.unit.llm.fakes import (
    USER,
    FakeHistory,
    FakeIdentity,
    FakeProvider,
    FakeQuota,
    MemorySpool,
    request,
)


def time_left() -> float:
    return 10.0


class World:
    def __init__(self, directory: Path) -> None:
        self.quota = FakeQuota()
        self.history = FakeHistory()
        self.spool = CommitSpool(directory / "commits")
        self.spool.prepare()
        self.replayer = CommitReplayer(self.spool, self.quota)
        self.service = ChatService(
            FakeIdentity(), self.quota, self.history, FakeProvider(), MemorySpool(),
            commits=self.spool,
        )  # fmt: skip

    def pending(self) -> list[str]:
        return [p.read_text() for p in self.spool.pending()]


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def gauge() -> float:
    return float(metrics.COMMIT_SPOOL_DEPTH._value.get())


@pytest.mark.parametrize(
    "error",
    [Unavailable("quota down", "QUOTA_UNAVAILABLE"), DeadlineExceeded("slow", "QUOTA_TIMEOUT")],
)
async def test_failed_commit_is_spooled_then_replayed_and_charged_once(
    w: World, error: Exception
) -> None:
    w.quota.commit_error = error  # type: ignore[assignment]
    answer = await w.service.chat("user-key", request("hello"), time_left)
    assert answer.content == "Echo: hello"  # the caller still gets its answer
    [rid] = list(w.quota.states)
    assert w.quota.states[rid] is ReservationState.RESERVED
    assert w.pending() == [rid]
    assert gauge() == 1
    assert not list(w.spool.dir.glob("*.tmp"))  # atomic write: no leftovers
    # Quota still away: the entry stays.
    assert await w.replayer.replay_once() == 0
    assert w.pending() == [rid]
    # Quota back: charged, deleted.
    w.quota.commit_error = None
    assert await w.replayer.replay_once() == 1
    assert w.pending() == [] and gauge() == 0
    assert w.quota.states[rid] is ReservationState.COMMITTED
    assert w.quota.commits_applied == 1
    assert await w.replayer.replay_once() == 0
    assert w.quota.commits_applied == 1


async def test_replay_deletes_only_after_ok_and_keeps_the_order(w: World) -> None:
    for rid in ("r-1", "r-2", "r-3"):
        await w.quota.reserve(rid, USER, 1.0)
        await w.spool.put(rid)
    real_commit = w.quota.commit

    async def flaky(request_id: str, timeout: float) -> None:
        if request_id == "r-2":
            raise Unavailable("quota down", "QUOTA_UNAVAILABLE")
        await real_commit(request_id, timeout)

    w.quota.commit = flaky  # type: ignore[method-assign]
    assert await w.replayer.replay_once() == 1
    assert w.pending() == ["r-2", "r-3"]  # stopped at the first failure, r-3 waits
    assert w.quota.states["r-3"] is ReservationState.RESERVED
    w.quota.commit = real_commit  # type: ignore[method-assign]
    assert await w.replayer.replay_once() == 2
    assert w.pending() == []
    assert w.quota.commits_applied == 3


async def test_entries_survive_a_restart(w: World, tmp_path: Path) -> None:
    await w.quota.reserve("r-restart", USER, 1.0)
    await w.spool.put("r-restart")
    again = CommitSpool(tmp_path / "commits")  # a new process over the same volume
    assert await CommitReplayer(again, w.quota).replay_once() == 1
    assert w.quota.states["r-restart"] is ReservationState.COMMITTED


async def test_late_commit_of_an_expired_reservation_is_charged(w: World) -> None:
    await w.quota.reserve("r-late", USER, 1.0)
    w.quota.states["r-late"] = ReservationState.EXPIRED  # quota's sweep refunded it
    await w.spool.put("r-late")
    assert await w.replayer.replay_once() == 1
    assert w.quota.states["r-late"] is ReservationState.COMMITTED


async def test_refusals_end_the_retry(w: World, caplog: pytest.LogCaptureFixture) -> None:
    await w.quota.reserve("r-released", USER, 1.0)
    w.quota.states["r-released"] = ReservationState.RELEASED
    await w.spool.put("r-released")
    await w.spool.put("r-unknown")
    with caplog.at_level(logging.WARNING, logger="llm.commit_spool"):
        assert await w.replayer.replay_once() == 0
    assert w.pending() == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [getattr(r, "rid", "") for r in errors] == ["r-released"]
    # Any other refusal is set aside for people, not retried forever.
    w.quota.commit_error = InvalidArgument("bad request_id")
    await w.spool.put("r-odd")
    assert await w.replayer.replay_once() == 0
    assert w.pending() == []
    assert [p.read_text() for p in w.spool.dead.iterdir()] == ["r-odd"]


@pytest.mark.parametrize(
    "error",
    [FailedPrecondition("released", "RESERVATION_RELEASED"), NotFound("gone", "NOT_FOUND")],
)
async def test_a_refused_commit_at_request_time_is_not_spooled(w: World, error: Exception) -> None:
    w.quota.commit_error = error  # type: ignore[assignment]
    answer = await w.service.chat("user-key", request(), time_left)
    assert answer.content.startswith("Echo")
    assert w.pending() == []


async def test_odd_request_ids_are_kept_intact(w: World) -> None:
    rid = "../weird id/ä"
    await w.spool.put(rid)
    [path] = w.spool.pending()
    assert path.parent == w.spool.dir
    assert path.read_text() == rid
