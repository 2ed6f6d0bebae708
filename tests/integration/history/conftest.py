"""Fixtures of history's integration suite: the FerretDB of the local stack (or the
MongoDB that MONGO_URL points at), fresh databases, an in-process gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from pymongo import AsyncMongoClient

from gateway_common import mongo
from history_svc.bootstrap import build
from history_svc.config import HistorySettings
from history_svc.mongo_interactions import COLLECTION, MongoInteractionRepository
from llmgw.history.v1 import history_pb2_grpc
from tests.support import (
    MONGO_URL,
    as_service,
    fresh_mongo_database,
    running_server,
    service_fields,
)
from tests.unit.history.fakes import FakeAuthenticator

if TYPE_CHECKING:
    from llmgw.history.v1.history_pb2_grpc import (
        HistoryInternalServiceAsyncStub,
        HistoryServiceAsyncStub,
    )

Client = AsyncMongoClient[dict[str, Any]]


@pytest.fixture(scope="session")
async def mongo_client() -> AsyncIterator[Client]:
    client = mongo.make_client(MONGO_URL)
    try:
        await mongo.ping(client)
    except Exception as exc:
        pytest.fail(f"no MongoDB/FerretDB at {MONGO_URL} (run scripts/stack.sh deps-up): {exc}")
    yield client
    await client.close()


@pytest.fixture
async def repo(mongo_client: Client) -> AsyncIterator[MongoInteractionRepository]:
    name = fresh_mongo_database("hist")
    yield await MongoInteractionRepository.open(mongo_client, name)
    await mongo_client.drop_database(name)


@dataclass
class Api:
    public: HistoryServiceAsyncStub
    internal: HistoryInternalServiceAsyncStub
    channel: grpc.aio.Channel
    target: str
    collection: Any  # the raw collection, to check what is really stored


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


INTERNAL = as_service("quota")  # the outbox relay is history's one internal caller


@contextlib.asynccontextmanager
async def started_api(mongo_client: Client, **settings_update: Any) -> AsyncIterator[Api]:
    """A history server on a fresh database, its settings changed by ``settings_update``;
    ``text_search`` (when given) goes to build: False forces the $regex fallback."""
    name = fresh_mongo_database("hist")
    text_search = settings_update.pop("text_search", None)
    settings = HistorySettings().model_copy(
        update={"database": name, **service_fields("history"), **settings_update}
    )
    spec = build(
        settings,
        authenticator=FakeAuthenticator(),
        client=mongo.make_client(MONGO_URL),
        text_search=text_search,
    )
    try:
        async with running_server(settings, spec) as (server, channel):
            yield Api(
                history_pb2_grpc.HistoryServiceStub(channel),
                history_pb2_grpc.HistoryInternalServiceStub(channel),
                channel,
                f"127.0.0.1:{server.port}",
                mongo_client[name][COLLECTION],
            )
    finally:
        await mongo_client.drop_database(name)


@pytest.fixture
async def api(mongo_client: Client) -> AsyncIterator[Api]:
    async with started_api(mongo_client) as started:
        yield started
