"""The SQL units of work: one connection, one transaction, written only on ``commit``
(the suite's one rule), or autocommit, where every statement is its own transaction:
Reserve and Commit are one statement each.

Counting (autocommit) runs on a psycopg pool of its own, without SQLAlchemy: it is the
hot path. Everything else runs on the SQLAlchemy engine."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway_common import db
from gateway_common.audit_outbox import SqlAuditLog
from gateway_common.errors import DomainError, Unavailable
from gateway_common.store_errors import postgres_boundary, postgres_error
from gateway_common.unit_of_work import PostgresUnitOfWork
from quota_svc.ports import UnitOfWork
from quota_svc.postgres_ledger import PgLedger
from quota_svc.postgres_plans import SqlPlans
from quota_svc.postgres_subscriptions import SqlSubscriptions


def make_counting_pool(
    url: str, pool_size: int, max_overflow: int, *, prepare: bool = True
) -> AsyncConnectionPool:
    """The hot path's pool: autocommit connections (each counting statement is its own
    transaction), opened on first use (building the service does no I/O). ``prepare``:
    every statement server-side prepared on first use; off behind a transaction pooler."""
    return AsyncConnectionPool(
        db.libpq_conninfo(url),
        min_size=pool_size,
        max_size=pool_size + max_overflow,
        kwargs={"autocommit": True, "prepare_threshold": db.prepare_threshold(prepare, 0)},
        max_lifetime=600,
        timeout=5.0,
        open=False,
    )


class CountingUnitOfWork(UnitOfWork):
    """Autocommit statements on a connection of the counting pool; only ``ledger``."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._ctx: Any = None

    async def __aenter__(self) -> CountingUnitOfWork:
        try:
            if self._pool.closed:
                await self._pool.open(wait=False)
            self._ctx = self._pool.connection()
            conn = await self._ctx.__aenter__()
        except (PoolTimeout, psycopg.OperationalError, OSError) as exc:
            raise Unavailable("quota database unavailable", "DATABASE_UNAVAILABLE") from exc
        self.ledger = PgLedger(conn)
        return self

    async def commit(self) -> None:
        """Nothing to do: each counting statement is its own transaction."""

    async def rollback(self) -> None:
        """Nothing to undo: each counting statement is its own transaction."""

    async def release(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await ctx.__aexit__(None, None, None)

    def translate(self, exc: BaseException) -> DomainError | None:
        return postgres_error(exc, "quota")


class SqlUnitOfWork(PostgresUnitOfWork, UnitOfWork):
    """The suite's one rule (gateway_common.unit_of_work): written only on ``commit``."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, "quota")

    async def bind(self, conn: AsyncConnection) -> None:
        self.plans = SqlPlans(conn)
        self.subscriptions = SqlSubscriptions(conn)
        self.audit = SqlAuditLog(conn)
        raw = await conn.get_raw_connection()
        self.ledger = PgLedger(raw.driver_connection)  # type: ignore[arg-type]


class AutocommitUnitOfWork(SqlUnitOfWork):
    """Every statement its own transaction (tests that build their own engine)."""

    async def __aenter__(self) -> AutocommitUnitOfWork:
        async with postgres_boundary("quota"):
            conn = await self._engine.connect()
        self._conn = conn
        await self.bind(conn)
        return self

    async def commit(self) -> None:
        """Nothing to do: each statement committed on its own."""

    async def rollback(self) -> None:
        """Nothing to undo: each statement committed on its own."""


def factory(engine: AsyncEngine, counting_pool: AsyncConnectionPool | None = None) -> Any:
    """``make(autocommit=...)``: autocommit units use ``counting_pool`` when given (the
    service), else the engine in autocommit mode (tests that build their own engine)."""
    autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def make(*, autocommit: bool = False) -> UnitOfWork:
        if autocommit and counting_pool is not None:
            return CountingUnitOfWork(counting_pool)
        if autocommit:
            return AutocommitUnitOfWork(autocommit_engine)
        return SqlUnitOfWork(engine)

    return make
