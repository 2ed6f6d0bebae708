"""RecordInteractions' rules on the in-memory repository (the same rules run on FerretDB in
tests/integration/history/test_record_batch.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway_common.errors import InvalidArgument
from history_svc.domain import Outcome, RecordResult
from history_svc.service import HistoryService
from tests.unit.history.factories import BASE, interaction
from tests.unit.history.fakes import ADMIN_A, MemoryRepository, MemoryRollups, with_rollups

C, D, E, R = Outcome.CREATED, Outcome.DUPLICATE, Outcome.ERASED, Outcome.REJECTED


def at(when: dt.datetime):
    return lambda: when


async def outcomes(svc: HistoryService, *items) -> list[Outcome]:
    return [r.outcome for r in await svc.record_batch(list(items))]


async def test_idempotent_inside_a_batch_and_across_batches():
    repo = MemoryRepository()
    svc = HistoryService(repo, MemoryRollups(repo))
    a, b = interaction(), interaction(seconds=1)
    changed = dataclasses.replace(a, answer="different")
    assert await outcomes(svc, a, b, changed, a) == [C, C, D, D]
    assert await outcomes(svc, b, a) == [D, D]
    assert len(repo.rows) == 2 and repo.rows[a.interaction_id].answer == "Paris."


async def test_a_rejected_interaction_does_not_fail_the_others():
    svc = with_rollups(MemoryRepository())
    bad = [
        interaction(interaction_id="not-a-uuid"),
        dataclasses.replace(interaction(), user_id=""),
        interaction(question="q" * (262_144 + 1)),
        dataclasses.replace(
            interaction(), metadata=dataclasses.replace(interaction().metadata, prompt_tokens=-1)
        ),
        dataclasses.replace(
            interaction(),
            metadata=dataclasses.replace(interaction().metadata, prompt_parameters={"$where": 1}),
        ),
        RecordResult("x", Outcome.REJECTED, "FIELD_REQUIRED", "interaction.timestamp: required"),
    ]
    good = interaction()
    results = await svc.record_batch([*bad, good])
    assert [r.outcome for r in results] == [R] * len(bad) + [C]
    reasons = [r.reason for r in results[:-1]]
    assert reasons == [
        "INVALID_ID",
        "FIELD_REQUIRED",
        "FIELD_TOO_LONG",
        "NEGATIVE_COUNT",
        "INVALID_PARAMETER_KEY",
        "FIELD_REQUIRED",
    ]
    assert all(r.message for r in results[:-1]) and results[-1].reason == ""


async def test_an_id_of_another_tenant_is_rejected_and_not_shown():
    svc = with_rollups(MemoryRepository())
    a = interaction()
    other = dataclasses.replace(a, tenant_id="tenant-b")
    assert await outcomes(svc, a, other) == [C, R]
    results = await svc.record_batch([other])
    assert results[0].reason == "INTERACTION_ID_CONFLICT" and "Paris" not in results[0].message


async def test_batch_size_bounds():
    svc = with_rollups(MemoryRepository())
    with pytest.raises(InvalidArgument):
        await svc.record_batch([])
    with pytest.raises(InvalidArgument):
        await svc.record_batch([interaction() for _ in range(501)])
    assert await outcomes(svc, *(interaction(seconds=i) for i in range(500))) == [C] * 500


async def test_erasure_drops_older_records_even_replayed_and_keeps_later_ones():
    repo = MemoryRepository()
    erase_at = BASE + dt.timedelta(minutes=5)
    svc = HistoryService(repo, MemoryRollups(repo), clock=at(erase_at))
    before = interaction(at=BASE)
    assert await outcomes(svc, before) == [C]
    await svc.delete_user(ADMIN_A, "tenant-a", "user-a1")
    exactly = interaction(at=erase_at)
    after = interaction(at=erase_at + dt.timedelta(milliseconds=1))
    peer = interaction(user="user-a2", at=BASE)
    assert await outcomes(svc, before, exactly, after, peer) == [E, E, C, C]
    assert set(repo.rows) == {after.interaction_id, peer.interaction_id}


async def test_list_erasures_oldest_first_in_pages():
    repo = MemoryRepository()
    clock = [BASE]
    svc = HistoryService(repo, MemoryRollups(repo), clock=lambda: clock[0])
    for i in range(5):
        clock[0] = BASE + dt.timedelta(seconds=i)
        await svc.delete_user(ADMIN_A, "tenant-a", f"user-{i}")
    first, token = await svc.list_erasures(None, 2, "")
    second, token2 = await svc.list_erasures(None, 2, token)
    third, token3 = await svc.list_erasures(None, 2, token2)
    users = [e.user_id for e in first + second + third]
    assert users == [f"user-{i}" for i in range(5)] and token3 == ""
    since, _ = await svc.list_erasures(BASE + dt.timedelta(seconds=3), 0, "")
    assert [e.user_id for e in since] == ["user-3", "user-4"]
    with pytest.raises(InvalidArgument):  # a token is bound to its since_time
        await svc.list_erasures(BASE, 2, token)
