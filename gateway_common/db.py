"""SQLAlchemy async engines (psycopg 3) for the services that own PostgreSQL."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from psycopg.conninfo import make_conninfo
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def prepare_threshold(prepare: bool, threshold: int = 5) -> int | None:
    """psycopg's ``prepare_threshold``: executions before a statement is prepared on the
    server (0: at once); None never prepares, as PgBouncer's transaction mode needs."""
    return threshold if prepare else None


def libpq_conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy URL, as SQLAlchemy's psycopg dialect reads
    it: multi-host URLs (``?host=a:5432&host=b:5432&target_session_attrs=read-write``, the
    failover form) become ``host=a,b port=5432,5432 ...``, which psycopg understands."""
    dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
    _, kwargs = dialect.create_connect_args(make_url(url))  # type: ignore[no-untyped-call]
    return str(make_conninfo(**kwargs))


def make_engine(
    url: str, pool_size: int = 10, max_overflow: int = 10, *, prepare: bool = True
) -> AsyncEngine:
    """An engine whose connections keep no session state a transaction pooler would lose:
    with ``prepare`` off, no server-side prepared statement either."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"prepare_threshold": prepare_threshold(prepare)},
    )


async def ping(engine: AsyncEngine) -> None:
    """Raises unless the database answers ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


class PoolCollector:
    """Prometheus gauges of the process's connection pools (in use, idle, size, overflow)."""

    def __init__(self) -> None:
        self.engines: weakref.WeakKeyDictionary[AsyncEngine, str] = weakref.WeakKeyDictionary()
        self.stats: dict[str, Callable[[], dict[str, int]]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "llmgw_db_pool_connections",
            "Database pool connections by state.",
            labels=["pool", "state"],
        )
        for engine, name in list(self.engines.items()):
            pool: Any = engine.sync_engine.pool
            for state, getter in _POOL_STATES:
                if hasattr(pool, getter):
                    family.add_metric([name, state], float(getattr(pool, getter)()))
        for name, stats in list(self.stats.items()):
            figures = stats()  # psycopg_pool's get_stats()
            size, idle = figures.get("pool_size", 0), figures.get("pool_available", 0)
            for state, value in (("in_use", size - idle), ("idle", idle), ("size", size)):
                family.add_metric([name, state], float(value))
        yield family


_POOL_STATES = (("in_use", "checkedout"), ("idle", "checkedin"), ("size", "size"))
_collector: PoolCollector | None = None


def _pools() -> PoolCollector:
    global _collector
    if _collector is None:
        _collector = PoolCollector()
        REGISTRY.register(_collector)
    return _collector


def register_pool_metrics(engine: AsyncEngine, name: str) -> None:
    """Expose ``engine``'s pool as ``llmgw_db_pool_connections{pool=name}``."""
    _pools().engines[engine] = name


def register_pool_stats(name: str, stats: Callable[[], dict[str, int]]) -> None:
    """Expose a psycopg pool (its ``get_stats``) the same way."""
    _pools().stats[name] = stats
