"""One PostgreSQL transaction per use case, with the repositories bound to it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity_svc import ports
from identity_svc.postgres_accounts import (
    SqlApiKeyRepository,
    SqlRequestLog,
    SqlTenantRepository,
    SqlUserRepository,
)
from identity_svc.postgres_llm_models import SqlModelConfigRepository, SqlModelRepository


class SqlUnitOfWork(ports.UnitOfWork):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        conn = await self._engine.connect()
        await conn.begin()
        self._conn = conn
        self.tenants = SqlTenantRepository(conn)
        self.users = SqlUserRepository(conn)
        self.keys = SqlApiKeyRepository(conn)
        self.models = SqlModelRepository(conn)
        self.configs = SqlModelConfigRepository(conn)
        self.requests = SqlRequestLog(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()

    async def commit(self) -> None:
        assert self._conn is not None
        await self._conn.commit()

    async def rollback(self) -> None:
        assert self._conn is not None
        await self._conn.rollback()


def sql_uow_factory(engine: AsyncEngine) -> ports.UowFactory:
    return lambda: SqlUnitOfWork(engine)
