"""The durable spool and its replayer against a fake history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from llm_svc.domain import Interaction, Outcome, Usage
from llm_svc.spool import FileSpool, SpoolReplayer
from tests.unit.llm.fakes import FakeHistory


def interaction(i: int) -> Interaction:
    return Interaction(
        interaction_id=f"00000000-0000-0000-0000-{i:012d}",
        tenant_id="t",
        user_id="u",
        subscription_id="s",
        model_id="m",
        model_name="demo",
        timestamp=datetime(2030, 1, 1, tzinfo=UTC),
        question=f"q{i}",
        answer=f"a{i}",
        usage=Usage(1, 2),
        latency_ms=5,
        parameters={"max_tokens": 10},
        outcome=Outcome.OK,
        request_id="r",
        finish_reason="length",
    )


async def test_put_get_roundtrip_is_atomic_files(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path)
    spool.prepare()
    await spool.put(interaction(1))
    assert [p.name for p in spool.pending()] == [f"{interaction(1).interaction_id}.json"]
    assert not list(tmp_path.glob("*.tmp"))  # noqa: ASYNC240
    assert await spool.get(interaction(1).interaction_id) == interaction(1)
    assert await spool.get("missing") is None


async def test_replay_waits_for_history_then_sends_each_once(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path)
    history = FakeHistory()
    replayer = SpoolReplayer(spool, history)
    spool.prepare()
    for i in range(5):
        await spool.put(interaction(i))
    history.down = True
    assert await replayer.replay_once() == 0
    assert spool.depth() == 5
    history.down = False
    assert await replayer.replay_once() == 5
    assert spool.depth() == 0
    assert sorted(history.stored) == sorted(interaction(i).interaction_id for i in range(5))
    assert history.stored[interaction(2).interaction_id].question == "q2"


async def test_a_record_history_refuses_is_set_aside(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path)
    history = FakeHistory()
    spool.prepare()
    await spool.put(interaction(1))
    await spool.put(interaction(2))
    history.reject.add(interaction(1).interaction_id)
    assert await SpoolReplayer(spool, history).replay_once() == 1
    assert spool.depth() == 0 and len(list(spool.dead.iterdir())) == 1
