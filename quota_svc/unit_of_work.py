"""The SQL unit of work: one connection, one transaction (or autocommit, where
every statement is its own transaction: Reserve and Commit are one statement each)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway_common.errors import Unavailable
from quota_svc.ports import UnitOfWork
from quota_svc.repo_ledger import SqlLedger
from quota_svc.repo_plans import SqlPlans
from quota_svc.repo_subscriptions import SqlSubscriptions


def make_counting_engine(url: str, pool_size: int, max_overflow: int) -> AsyncEngine:
    """The hot path's engine: autocommit (each counting statement is its own
    transaction) and no pre-ping round trip per checkout (a dead connection
    fails one call, which the caller may retry; recycling keeps them fresh)."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=600,
        isolation_level="AUTOCOMMIT",
    )


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, engine: AsyncEngine, *, autocommit: bool = False) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        try:
            conn = await self._engine.connect()
        except (DBAPIError, OSError) as exc:
            raise Unavailable("quota database unavailable", "DATABASE_UNAVAILABLE") from exc
        self._conn = conn
        self.plans = SqlPlans(conn)
        self.subscriptions = SqlSubscriptions(conn)
        self.ledger = SqlLedger(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        try:
            if not self._autocommit and conn.in_transaction():
                if exc_type is None:
                    await conn.commit()
                else:
                    await conn.rollback()
        finally:
            await conn.close()


def factory(engine: AsyncEngine, counting_engine: AsyncEngine | None = None) -> Any:
    """``make(autocommit=...)``: autocommit units use ``counting_engine``."""
    if counting_engine is None:
        counting_engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def make(*, autocommit: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(counting_engine if autocommit else engine, autocommit=autocommit)

    return make
