"""A transactional outbox on PostgreSQL: the table and its store.

A service that must cause a side effect exactly once (quota's settlement records an
interaction in history) writes an ``outbox`` row in the same transaction as the decision
that causes it; gateway_common.outbox_relay delivers the rows at least once to an
idempotent sink. This module holds the table's shape (for each owning service's
migrations) and every statement on it: claim with a lease (``FOR UPDATE SKIP LOCKED``),
record results, defer, prune, purge an erased subject, count, and list or retry dead
letters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger("gateway.outbox")

# The table, for each owning service's migrations (one copy of the shape).
DDL = (
    """
    CREATE TABLE outbox (
        id VARCHAR(200) PRIMARY KEY,
        topic VARCHAR(32) NOT NULL,
        tenant_id UUID NULL,
        user_id UUID NULL,
        payload BYTEA NOT NULL,
        state VARCHAR(16) NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        rejections INTEGER NOT NULL DEFAULT 0,
        failure_class TEXT NULL,
        last_error TEXT NULL,
        next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        delivered_at TIMESTAMPTZ NULL
    )
    """,
    "CREATE INDEX outbox_due_ix ON outbox (topic, next_attempt_at) WHERE state = 'pending'",
    "CREATE INDEX outbox_dead_ix ON outbox (created_at, id) WHERE state = 'dead'",
    "CREATE INDEX outbox_delivered_ix ON outbox (delivered_at) WHERE state = 'delivered'",
    "CREATE INDEX outbox_subject_ix ON outbox (tenant_id, user_id)",
)
DROP = ("DROP TABLE outbox",)


@dataclass(frozen=True)
class Entry:
    id: str
    payload: bytes
    attempts: int
    created_at: datetime


Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]

_CLAIM = """
WITH due AS (
  SELECT id FROM outbox WHERE topic = %(topic)s AND state = 'pending'
    AND next_attempt_at <= now()
  ORDER BY next_attempt_at LIMIT %(n)s FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET attempts = o.attempts + 1,
  next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM due WHERE o.id = due.id
RETURNING o.id, o.payload, o.attempts, o.created_at
"""
_DELIVERED = """
UPDATE outbox SET state = 'delivered', delivered_at = now(), failure_class = NULL,
  last_error = NULL WHERE id = ANY(%(ids)s) AND state = 'pending'
"""
_DROP = "DELETE FROM outbox WHERE id = ANY(%(ids)s)"
_REJECT = """
UPDATE outbox SET rejections = rejections + 1, failure_class = %(cls)s, last_error = %(msg)s,
  state = CASE WHEN rejections + 1 >= %(max)s THEN 'dead' ELSE 'pending' END,
  next_attempt_at = now() + make_interval(secs => %(delay)s)
WHERE id = %(id)s AND state = 'pending' RETURNING state
"""
_DEFER = """
UPDATE outbox SET failure_class = %(cls)s, last_error = %(msg)s,
  next_attempt_at = now() + make_interval(secs => %(delay)s)
WHERE id = ANY(%(ids)s) AND state = 'pending'
"""
_PURGE = """
DELETE FROM outbox WHERE tenant_id = %(t)s AND user_id = %(u)s AND created_at <= %(before)s
"""
_PRUNE = """
DELETE FROM outbox WHERE id IN (
  SELECT id FROM outbox WHERE state = 'delivered' AND delivered_at < %(before)s LIMIT %(n)s)
"""
_COUNTS = "SELECT topic, state, count(*) AS n FROM outbox GROUP BY topic, state"
_OLDEST = "SELECT min(created_at) AS t FROM outbox WHERE state <> 'delivered'"
_OLDEST_PENDING = (
    "SELECT min(created_at) AS t FROM outbox WHERE topic = %(topic)s AND state = 'pending'"
)
_GET = "SELECT state, payload FROM outbox WHERE id = %(id)s"
_DEAD = """
SELECT id, tenant_id, user_id, attempts, failure_class, last_error, created_at
FROM outbox WHERE state = 'dead' AND (created_at, id) > (%(t)s, %(id)s)
ORDER BY created_at, id LIMIT %(n)s
"""
_RETRY_DEAD = """
UPDATE outbox SET state = 'pending', rejections = 0, next_attempt_at = now()
WHERE state = 'dead' AND (%(all)s OR id = ANY(%(ids)s))
"""


@dataclass(frozen=True)
class DeadLetter:
    id: str
    tenant_id: str
    user_id: str
    attempts: int
    failure_class: str
    last_error: str
    created_at: datetime


class OutboxStore:
    """The outbox's statements; each runs as its own transaction (autocommit)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    async def _run(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self._connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall() if cur.description else []

    async def claim(self, topic: str, n: int, lease_seconds: float) -> list[Entry]:
        rows = await self._run(_CLAIM, {"topic": topic, "n": n, "lease": lease_seconds})
        return [Entry(r["id"], bytes(r["payload"]), r["attempts"], r["created_at"]) for r in rows]

    async def delivered(self, ids: list[str]) -> None:
        if ids:
            await self._run(_DELIVERED, {"ids": ids})

    async def drop(self, ids: list[str]) -> None:
        if ids:
            await self._run(_DROP, {"ids": ids})

    async def reject(
        self, entry_id: str, failure_class: str, message: str, max_rejections: int, delay: float
    ) -> bool:
        """True when the entry is now a dead letter."""
        params = {
            "id": entry_id,
            "cls": failure_class[:200],
            "msg": message[:1000],
            "max": max_rejections,
            "delay": delay,
        }
        rows = await self._run(_REJECT, params)
        return bool(rows) and rows[0]["state"] == "dead"

    async def defer(self, ids: list[str], failure_class: str, message: str, delay: float) -> None:
        params = {"ids": ids, "cls": failure_class[:200], "msg": message[:1000], "delay": delay}
        await self._run(_DEFER, params)

    async def purge_subject(self, tenant_id: str, user_id: str, before: datetime) -> None:
        await self._run(_PURGE, {"t": tenant_id, "u": user_id, "before": before})

    async def prune_delivered(self, before: datetime, n: int = 1000) -> None:
        await self._run(_PRUNE, {"before": before, "n": n})

    async def counts(self) -> list[dict[str, Any]]:
        return await self._run(_COUNTS, {})

    async def oldest_undelivered(self) -> datetime | None:
        rows = await self._run(_OLDEST, {})
        return rows[0]["t"] if rows else None

    async def oldest_pending(self, topic: str) -> datetime | None:
        rows = await self._run(_OLDEST_PENDING, {"topic": topic})
        return rows[0]["t"] if rows else None

    async def get(self, entry_id: str) -> tuple[str, bytes] | None:
        rows = await self._run(_GET, {"id": entry_id})
        return (rows[0]["state"], bytes(rows[0]["payload"])) if rows else None

    async def dead_letters(self, after: tuple[datetime, str] | None, n: int) -> list[DeadLetter]:
        t, i = after or (datetime(1970, 1, 1, tzinfo=UTC), "")
        rows = await self._run(_DEAD, {"t": t, "id": i, "n": n})
        return [
            DeadLetter(
                r["id"],
                str(r["tenant_id"] or ""),
                str(r["user_id"] or ""),
                r["attempts"],
                r["failure_class"] or "",
                r["last_error"] or "",
                r["created_at"],
            )
            for r in rows
        ]

    async def retry_dead(self, ids: list[str]) -> int:
        async with self._connect() as conn, conn.cursor() as cur:
            await cur.execute(_RETRY_DEAD, {"all": not ids, "ids": ids})
            return cur.rowcount
