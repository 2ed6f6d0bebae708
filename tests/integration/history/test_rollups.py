"""Daily rollups on the real store (FerretDB here, MongoDB with MONGO_URL): always equal to
the aggregation of the raw interactions, whatever the batches, replays and erasures did."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import sys

from google.protobuf.timestamp_pb2 import Timestamp

from history_svc.domain import (
    DAY,
    DayKey,
    Filter,
    GroupBy,
    Interaction,
    Status,
    days_between,
    midnight,
)
from history_svc.mongo_documents import to_document
from history_svc.mongo_interactions import MongoInteractionRepository
from history_svc.mongo_rollups import MongoRollupRepository, rollup_document, rollup_sums
from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, bearer
from tests.integration.history.helpers import record_many
from tests.support import MONGO_URL
from tests.unit.history.factories import BASE, interaction

USERS = ["user-a1", "user-a2", "user-a3"]
MODELS = ["model-1", "model-2"]


def _population(n: int, seed: int = 7) -> list[Interaction]:
    rnd = random.Random(seed)
    return [
        interaction(
            user=rnd.choice(USERS),
            model=rnd.choice(MODELS),
            at=BASE + dt.timedelta(hours=rnd.randrange(0, 24 * 4), seconds=i),
            status=rnd.choice([Status.OK, Status.OK, Status.ERROR, Status.CANCELLED]),
            prompt_tokens=rnd.randrange(0, 500),
            completion_tokens=rnd.randrange(0, 500),
            latency_ms=rnd.randrange(1, 3000),
        )
        for i in range(n)
    ]


def _rollups(api: Api) -> MongoRollupRepository:
    return MongoRollupRepository(api.collection, per_day_queries=True)


async def _assert_equal_to_raw(api: Api, tenant: str = "tenant-a") -> None:
    """Per user and group: rollup sums == the raw $group pipelines; rebuild finds nothing."""
    raw = MongoInteractionRepository(api.collection)
    rollups = _rollups(api)
    days = days_between(midnight(BASE) - DAY, midnight(BASE) + 6 * DAY)
    span = Filter(tenant, start=midnight(BASE) - DAY, end=midnight(BASE) + 6 * DAY)
    for user in ["", *USERS]:
        where = dataclasses.replace(span, user_id=user)
        for group_by in GroupBy:
            assert await rollups.sums(where, days, group_by) == await raw.stats(where, group_by)
    report = await rollups.rebuild(tenant, repair=False)
    assert report.differences == 0, report


async def test_concurrent_batches_with_duplicates_and_replays(api: Api):
    items = _population(240)
    batches = [items[i : i + 20] for i in range(0, len(items), 20)]
    # Each batch is sent twice at once, and a third of them repeat ids of another batch.
    sends = [b for b in batches for _ in range(2)]
    sends += [batches[i][:7] + batches[i + 1][:7] for i in range(0, len(batches) - 1, 3)]
    random.Random(3).shuffle(sends)
    await asyncio.gather(*(record_many(api, *batch) for batch in sends))
    assert await api.collection.count_documents({}) == len(items)
    await _assert_equal_to_raw(api)
    reply = await api.public.GetUsageStats(
        pb.GetUsageStatsRequest(
            tenant_id="tenant-a",
            start_time=_ts(midnight(BASE)),
            end_time=_ts(midnight(BASE) + 5 * DAY),
            group_by=pb.GROUP_BY_DAY,
        ),
        metadata=bearer("key-admin-a"),
    )
    assert reply.total.interactions == len(items)


async def test_erasure_removes_the_users_rollups(api: Api):
    items = [*_population(90), interaction("tenant-b", "user-a1", at=BASE)]
    await record_many(api, *items)
    req = pb.DeleteUserInteractionsRequest(tenant_id="tenant-a", user_id="user-a1")
    await api.public.DeleteUserInteractions(req, metadata=bearer("key-admin-a"))
    rollups = _rollups(api)
    assert await rollups.keys_of_user("tenant-a", "user-a1") == []
    assert await rollups.keys_of_user("tenant-b", "user-a1") != []  # another tenant's stays
    assert await rollups.keys_of_user("tenant-a", "user-a2") != []
    await _assert_equal_to_raw(api)
    await _assert_equal_to_raw(api, "tenant-b")


async def test_rebuild_reports_and_repairs_every_difference(api: Api):
    await record_many(api, *_population(120))
    rollups = _rollups(api)
    docs = [d async for d in rollups.rollups.find({})]
    assert len(docs) >= 6
    await rollups.rollups.delete_one({"_id": docs[0]["_id"]})  # missing
    await rollups.rollups.update_one({"_id": docs[1]["_id"]}, {"$set": {"interacoes": 999}})
    await rollups.rollups.update_one({"_id": docs[2]["_id"]}, {"$unset": {"custo_nanos": ""}})
    ghost = DayKey("tenant-a", "ghost", "model-1", "2025-03-02")
    await rollups.rollups.insert_one(rollup_document(ghost, rollup_sums(docs[3])))  # orphan
    report = await rollups.rebuild("", repair=True)
    assert (len(report.missing), len(report.orphans)) == (1, 1)
    assert len(report.stale) == 1  # a missing 0 cost reads as 0: equal
    assert (await rollups.rebuild("", repair=False)).differences == 0
    await _assert_equal_to_raw(api)


async def test_cost_is_summed_and_a_missing_cost_counts_zero(api: Api):
    items = [interaction(seconds=i).normalized(1024) for i in range(3)]
    docs = [to_document(item) for item in items]
    docs[0]["metadados"]["custo_nanos"] = 1_500
    docs[1]["metadados"]["custo_nanos"] = 2_000_000_000_123
    await api.collection.insert_many(docs)
    rollups = _rollups(api)
    await rollups.refresh(sorted({DayKey.of(item) for item in items}))
    where = Filter("tenant-a")
    [bucket] = await rollups.sums(where, [items[0].day], GroupBy.DAY)
    assert bucket.cost_nanos == 2_000_000_001_623
    raw = await MongoInteractionRepository(api.collection).stats(
        dataclasses.replace(where, day=items[0].day), GroupBy.DAY
    )
    assert raw == [bucket]


async def test_stats_from_rollups_equal_the_raw_computation(api: Api):
    await record_many(api, *_population(200, seed=11))
    raw = MongoInteractionRepository(api.collection)
    ranges = [
        (midnight(BASE), midnight(BASE) + 4 * DAY),  # whole days only
        (BASE + dt.timedelta(hours=3, minutes=7), BASE + 3 * DAY),  # partial edges
        (BASE + dt.timedelta(hours=1), BASE + dt.timedelta(hours=20)),  # inside one day
        (BASE + dt.timedelta(hours=13), BASE + dt.timedelta(hours=30)),  # across a midnight
    ]
    for start, end in ranges:
        for group_by, proto in [
            (GroupBy.DAY, pb.GROUP_BY_DAY),
            (GroupBy.USER, pb.GROUP_BY_USER),
            (GroupBy.MODEL, pb.GROUP_BY_MODEL),
        ]:
            for user, key in [("", "key-admin-a"), ("user-a1", "key-user-a1")]:
                reply = await api.public.GetUsageStats(
                    pb.GetUsageStatsRequest(
                        tenant_id="tenant-a",
                        start_time=_ts(start),
                        end_time=_ts(end),
                        group_by=proto,
                        user_id=user,
                    ),
                    metadata=bearer(key),
                )
                expected = await raw.stats(Filter("tenant-a", user, start=start, end=end), group_by)
                got = [(b.key, b.interactions, b.tokens, b.errors) for b in reply.buckets]
                want = [(b.key, b.interactions, b.tokens, b.errors) for b in expected]
                assert got == want, (start, end, group_by, user)
                assert [b.average_latency_ms for b in reply.buckets] == [
                    b.average_latency_ms for b in expected
                ]


def _ts(when: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


async def _command(api: Api, *args: str) -> tuple[int, dict[str, object]]:
    env = {**os.environ, "MONGO_URL": MONGO_URL, "HISTORY_DATABASE": api.collection.database.name}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "history_svc.rebuild_rollups",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), json.loads(out)


async def test_the_rebuild_command_reports_then_repairs(api: Api):
    await record_many(api, *_population(30))
    await _rollups(api).rollups.delete_many({"usuario_id": "user-a2"})
    code, checked = await _command(api, "--check")
    assert code == 1 and checked["missing"] and checked["repaired"] is False
    code, repaired = await _command(api)
    assert code == 0 and repaired["repaired"] is True
    code, again = await _command(api, "--check", "--tenant", "tenant-a")
    assert code == 0 and again["differences"] == 0
    await _assert_equal_to_raw(api)
