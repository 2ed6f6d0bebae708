"""SQLAlchemy async engines (psycopg 3) for the services that own PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


async def ping(engine: AsyncEngine) -> None:
    """Raises unless the database answers ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


class PoolCollector:
    """Prometheus gauges of an engine's connection pool (in use, idle, size, overflow)."""

    def __init__(self, engine: AsyncEngine, service: str) -> None:
        self.engine = engine
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool: Any = self.engine.sync_engine.pool
        family = GaugeMetricFamily(
            "llmgw_db_pool_connections",
            "Database pool connections by state.",
            labels=["service", "state"],
        )
        for state, getter in (
            ("in_use", "checkedout"),
            ("idle", "checkedin"),
            ("size", "size"),
            ("overflow", "overflow"),
        ):
            if hasattr(pool, getter):
                family.add_metric([self.service, state], float(getattr(pool, getter)()))
        yield family


def register_pool_metrics(engine: AsyncEngine, service: str) -> None:
    """Expose the pool on the service's metrics port (once per process)."""
    REGISTRY.register(PoolCollector(engine, service))
