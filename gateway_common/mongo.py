"""pymongo's AsyncMongoClient for the service that owns MongoDB, and the translation of
its errors: an outage is UNAVAILABLE, a server-side time limit DEADLINE_EXCEEDED."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, WriteConcernError

from gateway_common.errors import DeadlineExceeded, Unavailable

# Server codes that mean "not now" rather than "not this": network, shutdown, failover.
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436})
_TIME_LIMIT_CODES = frozenset({50})  # MaxTimeMSExpired


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


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Store failures as domain errors; anything else (a bug) passes through unchanged."""
    try:
        yield
    except ExecutionTimeout as exc:
        raise DeadlineExceeded("the query ran out of its time budget", "QUERY_TIME_LIMIT") from exc
    except (ConnectionFailure, WriteConcernError) as exc:
        raise Unavailable("the document store is unavailable", "STORE_UNAVAILABLE") from exc
    except OperationFailure as exc:
        if exc.code in _TIME_LIMIT_CODES:
            raise DeadlineExceeded(
                "the query ran out of its time budget", "QUERY_TIME_LIMIT"
            ) from exc
        if exc.code in _TRANSIENT_CODES:
            raise Unavailable("the document store is unavailable", "STORE_UNAVAILABLE") from exc
        raise
