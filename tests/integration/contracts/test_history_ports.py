"""history's port (InteractionRepository): one suite, run against the in-memory fake the
use-case tests use and against the MongoDB adapter (FerretDB here, MongoDB with MONGO_URL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from gateway_common import mongo
from history_svc.domain import Cursor, Erasure, Filter, GroupBy, Interaction, Outcome, Status
from history_svc.mongo_lazy import LazyMongoRepository
from history_svc.ports import InteractionRepository
from tests.support import MONGO_URL, fresh_mongo_database
from tests.unit.history.factories import interaction
from tests.unit.history.fakes import MemoryRepository

pytestmark = pytest.mark.integration


@pytest.fixture(params=["fake", "mongo"])
async def repo(request: pytest.FixtureRequest) -> AsyncIterator[InteractionRepository]:
    if request.param == "fake":
        yield MemoryRepository()
        return
    client = mongo.make_client(MONGO_URL)
    name = fresh_mongo_database("hist_contract")
    try:
        yield LazyMongoRepository(client, name, None)
    finally:
        await client.drop_database(name)
        await client.close()


async def insert(repo: InteractionRepository, item: Interaction) -> Outcome:
    [outcome] = await repo.insert_many([item])
    return outcome


async def test_an_id_is_stored_once(repo: InteractionRepository):
    item = interaction()
    assert await insert(repo, item) is Outcome.CREATED
    again = interaction(question="other", interaction_id=item.interaction_id)
    assert await insert(repo, again) is Outcome.DUPLICATE  # the first one stays
    twice = interaction(seconds=5)
    assert await repo.insert_many([twice, twice]) == [Outcome.CREATED, Outcome.DUPLICATE]
    stored = await repo.get("tenant-a", item.interaction_id)
    assert stored is not None and stored.question == item.question


async def test_reads_are_scoped_by_tenant_and_user(repo: InteractionRepository):
    item = interaction()
    await insert(repo, item)
    assert await repo.get("tenant-b", item.interaction_id) is None
    assert await repo.get("tenant-a", item.interaction_id, "user-a2") is None
    assert await repo.get("tenant-a", item.interaction_id, "user-a1") is not None


async def test_pages_are_newest_first_and_continue_after_a_cursor(repo: InteractionRepository):
    items = [interaction(seconds=i) for i in range(5)] + [interaction("tenant-b", "user-b1")]
    for item in items:
        await insert(repo, item)
    where = Filter("tenant-a")
    first = await repo.page(where, None, 3)
    last = first[-1]
    rest = await repo.page(where, Cursor(last.timestamp, last.interaction_id), 3)
    got = [i.interaction_id for i in first + rest]
    assert got == [i.interaction_id for i in reversed(items[:5])]
    start = items[0].timestamp + dt.timedelta(seconds=1)
    span = await repo.page(Filter("tenant-a", start=start, end=items[3].timestamp), None, 10)
    assert [i.interaction_id for i in span] == [items[2].interaction_id, items[1].interaction_id]


async def test_search_matches_question_or_answer_ignoring_case(repo: InteractionRepository):
    hit_q = interaction(question="Where is the EIFFEL tower?", seconds=1)
    hit_a = interaction(answer="the eiffel tower is in Paris", seconds=2)
    miss = interaction(question="nothing here", seconds=3)
    for item in (hit_q, hit_a, miss):
        await insert(repo, item)
    found = await repo.page(Filter("tenant-a", text="eiffel"), None, 10)
    assert {i.interaction_id for i in found} == {hit_q.interaction_id, hit_a.interaction_id}


async def test_stats_sum_per_key(repo: InteractionRepository):
    await insert(repo, interaction(model="m1", prompt_tokens=3, completion_tokens=1))
    await insert(repo, interaction(model="m1", status=Status.ERROR, seconds=1))
    await insert(repo, interaction(model="m2", seconds=2))
    await insert(repo, interaction("tenant-b", "user-b1", model="m1"))
    buckets = await repo.stats(Filter("tenant-a"), GroupBy.MODEL)
    assert [(b.key, b.interactions, b.errors) for b in buckets] == [("m1", 2, 1), ("m2", 1, 0)]
    assert buckets[0].prompt_tokens == 3 + 7


async def test_erasing_a_user_removes_only_that_users_interactions(repo: InteractionRepository):
    mine, kept = interaction(), interaction(user="user-a2")
    other_tenant = interaction("tenant-b", "user-a1")
    for item in (mine, kept, other_tenant):
        await insert(repo, item)
    erasure = Erasure("tenant-a", "user-a1", mine.timestamp + dt.timedelta(seconds=1))
    assert await repo.erase(erasure) == 1
    assert await repo.get("tenant-a", mine.interaction_id) is None
    assert await repo.get("tenant-a", kept.interaction_id) is not None
    assert await repo.get("tenant-b", other_tenant.interaction_id) is not None
    assert await repo.erase(erasure) == 0  # a replay erases nothing more
    # The tombstone is kept, found by user and listed by time.
    assert await repo.erasures([("tenant-a", "user-a1"), ("tenant-a", "user-a2")]) == [erasure]
    assert await repo.list_erasures(erasure.erase_time, None, 10) == [erasure]
    later = erasure.erase_time + dt.timedelta(seconds=1)
    assert await repo.list_erasures(later, None, 10) == []
