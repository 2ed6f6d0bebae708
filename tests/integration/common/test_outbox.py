"""The shared outbox and its relay on a real PostgreSQL, with a scripted sink: delivery,
erasure drops, refusals to dead letters (listed and retried), outages retried without
dead-lettering, a poison entry split out of its batch, leases taken over by another
replica, and purges after an erasure."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from gateway_common import outbox, outbox_relay
from gateway_common.outbox import Entry
from gateway_common.outbox_relay import Erasure, Relay, RelayPolicy, Result, Sink, Verdict
from tests.support import fresh_pg_database

TOPIC = "interaction"
FAST = RelayPolicy(batch=50, lease_seconds=30, backoff_seconds=0.0, max_rejections=3)


class ScriptedSink(Sink):
    """Answers per entry id from ``script`` (default: delivered); records what it saw."""

    def __init__(self) -> None:
        self.script: dict[str, Verdict] = {}
        self.down: Exception | None = None
        self.poison: set[str] = set()
        self.batches: list[list[str]] = []
        self.erased: list[Erasure] = []

    async def deliver(self, entries: Sequence[Entry]) -> list[Result]:
        ids = [e.id for e in entries]
        self.batches.append(ids)
        if self.down is not None:
            raise self.down
        if self.poison & set(ids):
            raise outbox_relay.SinkRefused("INTERNAL", "cannot take this batch")
        return [Result(i, self.script.get(i, Verdict.DELIVERED), "BAD", "refused") for i in ids]

    async def erasures(self, since: datetime) -> list[Erasure]:
        return [e for e in self.erased if e.erase_time >= since]


@pytest.fixture
async def pool() -> AsyncIterator[AsyncConnectionPool]:
    with fresh_pg_database("outbox") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in outbox.DDL:
                conn.execute(statement)
        p = AsyncConnectionPool(
            dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
        )
        await p.open()
        try:
            yield p
        finally:
            await p.close()


async def _put(pool: AsyncConnectionPool, *ids: str, user: str = "") -> None:
    tenant, user = str(uuid.uuid4()), user or str(uuid.uuid4())
    async with pool.connection() as conn:
        for i in ids:
            await conn.execute(
                "INSERT INTO outbox (id, topic, tenant_id, user_id, payload)"
                " VALUES (%s, %s, %s, %s, %s)",
                (i, TOPIC, tenant, user, i.encode()),
            )


async def _states(pool: AsyncConnectionPool) -> dict[str, str]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT id, state FROM outbox")).fetchall()
    return {r[0]: r[1] for r in rows}


async def _due_now(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("UPDATE outbox SET next_attempt_at = now()")


async def test_delivered_dropped_and_kept_for_replays(pool: AsyncConnectionPool) -> None:
    sink = ScriptedSink()
    sink.script["gone"] = Verdict.DROPPED
    await _put(pool, "a", "b", "gone")
    store = outbox.OutboxStore(pool.connection)
    assert await Relay(store, sink, TOPIC, FAST).run_once() == 3
    assert await _states(pool) == {"a": "delivered", "b": "delivered"}
    assert await store.get("a") == ("delivered", b"a")  # kept for idempotent replays
    assert await Relay(store, sink, TOPIC, FAST).run_once() == 0  # nothing twice


async def test_refusals_end_as_dead_letters_listed_and_retried(pool: AsyncConnectionPool) -> None:
    sink = ScriptedSink()
    sink.script["bad"] = Verdict.REJECTED
    await _put(pool, "bad", "ok")
    store = outbox.OutboxStore(pool.connection)
    relay = Relay(store, sink, TOPIC, FAST)
    for _ in range(FAST.max_rejections):
        await _due_now(pool)
        await relay.run_once()
    assert await _states(pool) == {"bad": "dead", "ok": "delivered"}
    dead = await store.dead_letters(None, 10)
    assert [d.id for d in dead] == ["bad"] and dead[0].failure_class == "REJECTED:BAD"
    await _due_now(pool)
    assert await relay.run_once() == 0  # parked: not retried on its own
    sink.script.clear()
    assert await store.retry_dead([]) == 1
    assert await relay.run_once() == 1
    assert await _states(pool) == {"bad": "delivered", "ok": "delivered"}


async def test_outage_is_retried_and_never_dead_lettered(pool: AsyncConnectionPool) -> None:
    sink = ScriptedSink()
    sink.down = outbox_relay.SinkUnavailable("UNAVAILABLE")
    await _put(pool, "x")
    store = outbox.OutboxStore(pool.connection)
    relay = Relay(store, sink, TOPIC, FAST)
    for _ in range(FAST.max_rejections + 2):
        await _due_now(pool)
        await relay.run_once()
    assert await _states(pool) == {"x": "pending"}
    sink.down = None
    await _due_now(pool)
    await relay.run_once()
    assert await _states(pool) == {"x": "delivered"}


async def test_a_poison_entry_is_split_out_of_its_batch(pool: AsyncConnectionPool) -> None:
    sink = ScriptedSink()
    sink.poison = {"p"}
    await _put(pool, "p", "q", "r")
    store = outbox.OutboxStore(pool.connection)
    await Relay(store, sink, TOPIC, FAST).run_once()
    states = await _states(pool)
    assert states["q"] == states["r"] == "delivered" and states["p"] == "pending"
    assert ["p"] in sink.batches  # delivered alone, refused alone


async def test_a_claimed_entry_is_taken_over_after_its_lease(pool: AsyncConnectionPool) -> None:
    await _put(pool, "l")
    store = outbox.OutboxStore(pool.connection)
    claimed = await store.claim(TOPIC, 10, lease_seconds=30)  # a replica that then dies
    assert [e.id for e in claimed] == ["l"]
    other = Relay(store, ScriptedSink(), TOPIC, FAST)
    assert await other.run_once() == 0  # leased
    await _due_now(pool)  # the lease ran out
    assert await other.run_once() == 1
    assert await _states(pool) == {"l": "delivered"}


async def test_erasure_purges_the_subjects_entries(pool: AsyncConnectionPool) -> None:
    user = str(uuid.uuid4())
    await _put(pool, "e1", "e2", user=user)
    await _put(pool, "keep")
    async with pool.connection() as conn:
        tenant = (
            await (await conn.execute("SELECT tenant_id FROM outbox WHERE id='e1'")).fetchone()
        )[0]  # type: ignore[index]
        await conn.execute("UPDATE outbox SET state = 'dead' WHERE id = 'e2'")
    sink = ScriptedSink()
    sink.erased = [Erasure(str(tenant), user, datetime.now(UTC))]
    relay = Relay(outbox.OutboxStore(pool.connection), sink, TOPIC, FAST)
    await relay.housekeeping()
    assert await _states(pool) == {"keep": "pending"}
