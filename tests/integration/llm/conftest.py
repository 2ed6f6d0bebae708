"""llm_svc served in-process against the real quota (its PostgreSQL ledger and outbox,
relaying to history) and the real history (FerretDB), both in-process too; identity is
an in-process fake of its gRPC contract (tests/integration/llm/fake_identity.py); the
provider is the real fake provider (aiohttp, in-process)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
import pytest
from aiohttp import web

from devtools.fake_provider import FakeProvider
from gateway_common import mongo
from gateway_common.errors import Unauthenticated
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal, Role
from gateway_common.server import GrpcServer
from history_svc.bootstrap import build as build_history
from history_svc.config import HistorySettings
from llm_svc.bootstrap import build
from llm_svc.config import LlmSettings
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.llm.v1 import llm_pb2_grpc
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from quota_svc import migrate
from quota_svc.bootstrap import build as build_quota
from quota_svc.config import QuotaSettings
from tests.integration.llm import fake_identity
from tests.support import (
    MONGO_URL,
    as_service,
    free_port,
    fresh_mongo_database,
    fresh_pg_database,
    running_server,
    service_env,
    service_fields,
    sqlalchemy_url,
)

PLATFORM = "platform-key"
ADMIN = (("authorization", f"Bearer {PLATFORM}"),)
INTERNAL = as_service("llm")
TEXT_LIMIT = 4096  # GATEWAY_MAX_TEXT_BYTES of this stack's llm and history


class Keys(Authenticator):
    """The same principals the fake identity hands out, for quota and history."""

    def __init__(self, principals: dict[str, Principal]) -> None:
        self.principals = principals

    async def authenticate(self, api_key: str, timeout: float = 5.0) -> Principal:
        try:
            return self.principals[api_key]
        except KeyError:
            raise Unauthenticated("invalid API key", "INVALID_API_KEY") from None


class Restartable:
    """An in-process server on a fixed port that a test may stop and start again."""

    def __init__(self, settings: Any, make_spec: Any) -> None:
        self.port = free_port()
        self._settings = settings.model_copy(
            update={"port": self.port, "host": "127.0.0.1", "shutdown_delay_seconds": 0.0}
        )
        self._make_spec = make_spec
        self.server: GrpcServer | None = None

    async def start(self) -> None:
        self.server = GrpcServer(self._settings, self._make_spec())
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=0.2)
            self.server = None


@dataclass
class Stack:
    llm: llm_pb2_grpc.LlmServiceStub
    provider: FakeProvider
    identity: fake_identity.Identity
    quota_dsn: str
    quota: quota_pb2_grpc.QuotaServiceStub
    quota_internal: quota_pb2_grpc.QuotaInternalServiceStub
    history: history_pb2_grpc.HistoryServiceStub
    history_server: Restartable
    plan_id: str

    def states(self) -> dict[str, str]:
        """The ledger of the test user: request id -> state."""
        with psycopg.connect(self.quota_dsn) as conn:
            rows = conn.execute(
                "SELECT request_id, estado FROM reserva_requisicao WHERE usuario_id = %s",
                (fake_identity.USER_ID,),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def committed(self) -> int:
        return sum(s == "committed" for s in self.states().values())

    async def set_limit(self, limit: int) -> None:
        with psycopg.connect(self.quota_dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE plano_de_uso SET limite_requisicoes_mes = %s WHERE plano_id = %s",
                (limit, self.plan_id),
            )

    async def records(self, want: int = 0, timeout: float = 10.0) -> list[history_pb2.Interaction]:
        """The test user's interactions in history, waiting for ``want`` of them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            reply = await self.history.ListInteractions(
                history_pb2.ListInteractionsRequest(
                    tenant_id=fake_identity.TENANT_ID, user_id=fake_identity.USER_ID,
                    page_size=200,
                ),
                metadata=ADMIN,
            )  # fmt: skip
            found = list(reply.interactions)
            if len(found) >= want or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.05)


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeProvider, str]]:
    fake = FakeProvider()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def _subscribe(quota: quota_pb2_grpc.QuotaServiceStub) -> str:
    plan = await quota.CreatePlan(
        quota_pb2.CreatePlanRequest(
            plan=quota_pb2.Plan(
                tenant_id=fake_identity.TENANT_ID, name=f"p-{uuid.uuid4().hex[:6]}",
                monthly_request_limit=1000,
            )
        ),
        metadata=ADMIN,
    )  # fmt: skip
    await quota.CreateSubscription(
        quota_pb2.CreateSubscriptionRequest(
            tenant_id=fake_identity.TENANT_ID, user_id=fake_identity.USER_ID,
            plan_id=plan.plan.plan_id,
        ),
        metadata=ADMIN,
    )  # fmt: skip
    return plan.plan.plan_id


@pytest.fixture
async def stack(provider: tuple[FakeProvider, str]) -> AsyncIterator[Stack]:
    fake_provider, url = provider
    identity = fake_identity.Identity(url)
    keys = Keys({**identity.principals(), PLATFORM: Principal(Role.PLATFORM_ADMIN, key_id="p")})
    deps = grpc.aio.server()
    fake_identity.register(deps, identity)
    identity_port = deps.add_insecure_port("127.0.0.1:0")
    await deps.start()
    history_db = fresh_mongo_database("llm_hist")
    history_settings = HistorySettings().model_copy(
        update={
            "database": history_db,
            **service_fields("history"),
            "max_text_bytes": TEXT_LIMIT,
        }
    )
    history = Restartable(
        history_settings,
        lambda: build_history(
            history_settings, authenticator=keys, client=mongo.make_client(MONGO_URL)
        ),
    )
    await history.start()
    with fresh_pg_database("llm_quota") as dsn:
        migrate.upgrade(dsn)
        quota_settings = QuotaSettings(
            database_url=sqlalchemy_url(dsn),
            **service_env("quota"),
            identity_target=f"127.0.0.1:{identity_port}",  # membership: the fake identity
            history_target=f"127.0.0.1:{history.port}",
            relay_idle_seconds=0.02,
            relay_backoff_seconds=0.05,
            relay_backoff_max_seconds=0.2,
            settle_interval_seconds=0,
        )
        quota_spec = build_quota(quota_settings, authenticator=keys)
        async with running_server(quota_settings, quota_spec) as (quota_server, quota_channel):
            settings = LlmSettings(
                identity_target=f"127.0.0.1:{identity_port}",
                quota_target=f"127.0.0.1:{quota_server.port}",
                history_target=f"127.0.0.1:{history.port}",
                auth_cache_seconds=0.0,
                **service_env("llm"),
                http_port=0,  # the HTTP door on a free port
                GATEWAY_MAX_TEXT_BYTES=TEXT_LIMIT,
            )
            quota_public = quota_pb2_grpc.QuotaServiceStub(quota_channel)
            plan_id = await _subscribe(quota_public)
            history_channel = grpc.aio.insecure_channel(f"127.0.0.1:{history.port}")
            async with running_server(settings, build(settings)) as (_, channel):
                yield Stack(
                    llm_pb2_grpc.LlmServiceStub(channel),
                    fake_provider,
                    identity,
                    dsn,
                    quota_public,
                    quota_pb2_grpc.QuotaInternalServiceStub(quota_channel),
                    history_pb2_grpc.HistoryServiceStub(history_channel),
                    history,
                    plan_id,
                )
            await history_channel.close()
    await history.stop()
    await deps.stop(0)
