"""pymongo's AsyncMongoClient for the service that owns MongoDB (its errors are translated
by gateway_common.store_errors.mongo_boundary)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient


def make_client(url: str, timeout_ms: int = 3000) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
        uuidRepresentation="standard",
    )


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> None:
    """Raises unless the server answers ``ping``."""
    await client.admin.command("ping")
