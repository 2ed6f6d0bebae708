"""Store exceptions -> domain errors, one table per store kind, so every service answers
the same way: the store down or unreachable is UNAVAILABLE (callers retry), a value the
store cannot hold is INVALID_ARGUMENT, and no SQL or driver text ever reaches a client.

Constraint violations (IntegrityError, DuplicateKeyError) mean something per table: the
adapters translate those themselves, before these catch-alls.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import bson.errors
import psycopg
import psycopg_pool
from pymongo import errors as pm
from sqlalchemy import exc as sa

from gateway_common.errors import DeadlineExceeded, DomainError, InvalidArgument, Unavailable

log = logging.getLogger("gateway.store")

# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator
# intervention (admin shutdown, cancel), 58 system error; 22 data exception.
_PG_UNAVAILABLE = ("08", "53", "57", "58")
_PG_DATA = "22"
_PG_SERIALIZATION = ("40001", "40P01")  # serialization failure, deadlock


def postgres_error(exc: BaseException, store: str) -> DomainError | None:
    """The domain error a PostgreSQL/SQLAlchemy/psycopg failure stands for, or None."""
    if isinstance(exc, DomainError):
        return None
    orig = exc.orig if isinstance(exc, sa.DBAPIError) else exc
    state = str(getattr(orig, "sqlstate", "") or "")
    if isinstance(orig, psycopg.DataError) or state.startswith(_PG_DATA):
        return InvalidArgument(f"a value is not valid for the {store} store", "INVALID_VALUE")
    if state in _PG_SERIALIZATION:
        return Unavailable(f"{store} database is busy, retry", "DATABASE_BUSY")
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return _pg_down(store)
    if state.startswith(_PG_UNAVAILABLE) or isinstance(
        orig, psycopg.OperationalError | psycopg.InterfaceError | psycopg_pool.PoolTimeout
    ):
        return _pg_down(store)
    if isinstance(exc, sa.TimeoutError | sa.InterfaceError | ConnectionError | OSError):
        return _pg_down(store)
    return None


def _pg_down(store: str) -> Unavailable:
    return Unavailable(f"{store} database unavailable", "DATABASE_UNAVAILABLE")


def mongo_error(exc: BaseException, store: str) -> DomainError | None:
    """The domain error a pymongo/bson failure stands for, or None."""
    timed_out = isinstance(exc, pm.OperationFailure) and exc.code in _MONGO_TIME_LIMIT
    if isinstance(exc, pm.ExecutionTimeout) or timed_out:
        return DeadlineExceeded(f"the {store} store did not answer in time", "STORE_TIMEOUT")
    if isinstance(
        exc,
        pm.ConnectionFailure
        | pm.ServerSelectionTimeoutError
        | pm.WaitQueueTimeoutError
        | pm.WriteConcernError,
    ):
        return Unavailable(f"{store} store unavailable", "STORE_UNAVAILABLE")
    if isinstance(exc, pm.OperationFailure) and exc.code in _MONGO_TRANSIENT:
        return Unavailable(f"{store} store unavailable", "STORE_UNAVAILABLE")
    if isinstance(exc, pm.DocumentTooLarge | bson.errors.InvalidDocument | OverflowError):
        return InvalidArgument(f"a value is not valid for the {store} store", "INVALID_VALUE")
    if isinstance(exc, pm.OperationFailure) and exc.code in _MONGO_BAD_VALUE:
        return InvalidArgument(f"a value is not valid for the {store} store", "INVALID_VALUE")
    if isinstance(exc, pm.PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return Unavailable(f"{store} store unavailable", "STORE_UNAVAILABLE")
    return None


# Server codes that mean "not now" rather than "not this": network, shutdown, failover.
_MONGO_TRANSIENT = frozenset({6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436})
_MONGO_TIME_LIMIT = frozenset({50})  # MaxTimeMSExpired
# BadValue, FailedToParse, TypeMismatch, InvalidBSON, BSONObjectTooLarge, DollarPrefixedField,
# InvalidLength, and FerretDB's "unsupported" answers to well-formed but odd values.
_MONGO_BAD_VALUE = frozenset({2, 9, 14, 22, 10334, 17419, 52, 15, 238})


Translate = Callable[[BaseException, str], DomainError | None]


@contextlib.asynccontextmanager
async def boundary(translate: Translate, store: str) -> AsyncIterator[None]:
    """Re-raise what ``translate`` recognises as its domain error (the cause kept)."""
    try:
        yield
    except Exception as exc:
        translated = translate(exc, store)
        if translated is None:
            raise
        log.warning("store error", extra={"store": store, "error": type(exc).__name__})
        raise translated from exc


def postgres_boundary(store: str) -> contextlib.AbstractAsyncContextManager[None]:
    return boundary(postgres_error, store)


def mongo_boundary(store: str) -> contextlib.AbstractAsyncContextManager[None]:
    return boundary(mongo_error, store)
