"""The one unit-of-work rule of the suite, for the services that own PostgreSQL:

    async with uow:            # one connection, one transaction
        ...                    # repositories bound to it
        await uow.commit()     # nothing is written unless this runs

Leaving the block without ``commit`` (an exception, an early return) rolls back. A store
failure anywhere in the block leaves it as the domain error it stands for (an outage is
UNAVAILABLE, see :mod:`gateway_common.store_errors`), never as a driver exception.
"""

from __future__ import annotations

import abc
import contextlib
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway_common.errors import DomainError
from gateway_common.store_errors import postgres_boundary, postgres_error


class UnitOfWork(abc.ABC):
    """What every service's ``ports.UnitOfWork`` is: leaving the block releases it (by
    default: rolls back what was not committed) and turns a store failure into the domain
    error it stands for. Fakes subclass the same ports, so they follow the same rule."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
        translated = self.translate(exc) if exc is not None else None
        if translated is not None:
            raise translated from exc

    async def release(self) -> None:
        await self.rollback()

    def translate(self, exc: BaseException) -> DomainError | None:
        return None

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...


class PostgresUnitOfWork(UnitOfWork):
    def __init__(self, engine: AsyncEngine, store: str) -> None:
        self._engine = engine
        self._store = store
        self._conn: AsyncConnection | None = None

    @abc.abstractmethod
    async def bind(self, conn: AsyncConnection) -> None:
        """Attach the service's repositories to ``conn``."""

    @property
    def connection(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is used outside its `async with` block")
        return self._conn

    async def __aenter__(self) -> Self:
        async with postgres_boundary(self._store):
            conn = await self._engine.connect()
            try:
                # Begun here, not on the first statement, so statements on the driver
                # connection (psycopg directly) are inside it too.
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        self._conn = conn
        await self.bind(conn)
        return self

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # A dead connection cannot roll back; the original error is what matters.
            with contextlib.suppress(Exception):
                if conn.in_transaction():
                    await conn.rollback()
            with contextlib.suppress(Exception):
                await conn.close()

    def translate(self, exc: BaseException) -> DomainError | None:
        return postgres_error(exc, self._store)

    async def commit(self) -> None:
        async with postgres_boundary(self._store):
            await self.connection.commit()

    async def rollback(self) -> None:
        async with postgres_boundary(self._store):
            await self.connection.rollback()
