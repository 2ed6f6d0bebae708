"""SQLAlchemy async engines (psycopg 3) for the services that own PostgreSQL."""

from __future__ import annotations

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
