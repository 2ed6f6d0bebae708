"""One Chat is one trace across llm, identity, quota, the provider call and history.

The four services run in this process here (an in-memory span exporter cannot reach
other processes); each is its real composition root behind its own gRPC server, on the
real PostgreSQL and FerretDB, with the fake provider over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devtools.fake_provider import FakeProvider
from gateway_common import tracing
from gateway_common.server import GrpcServer
from history_svc.bootstrap import build as build_history
from history_svc.config import HistorySettings
from identity_svc import migrate as identity_migrate
from identity_svc.bootstrap import build as build_identity
from identity_svc.config import IdentitySettings
from identity_svc.create_admin_key import create_key
from llm_svc.bootstrap import build as build_llm
from llm_svc.config import LlmSettings
from quota_svc import migrate as quota_migrate
from quota_svc.bootstrap import build as build_quota
from quota_svc.config import QuotaSettings
from tests.e2e.conftest import Suite
from tests.e2e.world import make_tenant
from tests.support import (
    MONGO_URL,
    free_port,
    fresh_mongo_database,
    fresh_pg_database,
    service_env,
    sqlalchemy_url,
)

COMMON = {"host": "127.0.0.1", "shutdown_delay_seconds": 0.0}


@contextlib.asynccontextmanager
async def in_process_suite(tmp: Path) -> AsyncIterator[Suite]:
    servers: list[GrpcServer] = []
    provider = FakeProvider()
    runner = web.AppRunner(provider.app())
    await runner.setup()
    provider_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", provider_port).start()
    with fresh_pg_database("tr_id") as id_dsn, fresh_pg_database("tr_quota") as quota_dsn:
        id_url, quota_url = sqlalchemy_url(id_dsn), sqlalchemy_url(quota_dsn)
        await asyncio.to_thread(identity_migrate.upgrade, id_url)
        await asyncio.to_thread(quota_migrate.upgrade, quota_url)
        ports = {n: free_port() for n in ("identity", "quota", "history", "llm")}
        targets = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
        http_port = free_port()
        specs = [
            (
                IdentitySettings(
                    port=ports["identity"], database_url=id_url, **COMMON, **service_env("identity")
                ),
                build_identity,
            ),
            (
                QuotaSettings(
                    port=ports["quota"],
                    database_url=quota_url,
                    identity_target=targets["identity"],
                    history_target=targets["history"],
                    relay_idle_seconds=0.02,
                    **COMMON,
                    **service_env("quota"),
                ),
                build_quota,
            ),
            (
                HistorySettings(
                    port=ports["history"],
                    mongo_url=MONGO_URL,
                    database=fresh_mongo_database("tr_hist"),
                    identity_target=targets["identity"],
                    **COMMON,
                    **service_env("history"),
                ),
                build_history,
            ),
            (
                LlmSettings(
                    port=ports["llm"],
                    identity_target=targets["identity"],
                    quota_target=targets["quota"],
                    history_target=targets["history"],
                    http_port=http_port,
                    **COMMON,
                    **service_env("llm"),
                ),
                build_llm,
            ),
        ]
        suite: Suite | None = None
        try:
            for settings, build in specs:
                server = GrpcServer(settings, build(settings))  # type: ignore[operator]
                servers.append(server)
                await server.start()
            _, admin_key = await create_key(id_url, "tracing")
            suite = Suite({}, targets, f"http://127.0.0.1:{provider_port}/v1", admin_key, tmp)
            suite.http_url = f"http://127.0.0.1:{http_port}"
            yield suite
        finally:
            for ch in suite.channels.values() if suite else ():
                await ch.close()
            for server in reversed(servers):
                await server.stop(grace=1)
            await runner.cleanup()


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    tracing.install("llmgw-test", [SimpleSpanProcessor(memory)])
    return memory


async def test_one_chat_is_one_trace_across_all_four_services(exporter, tmp_path):
    async with in_process_suite(tmp_path) as suite:
        tenant = await make_tenant(suite)
        exporter.clear()
        reply = await tenant.chat("trace me")
        assert reply.content == "Echo: trace me"
        await tenant.interactions(want=1)  # delivered by quota's relay, in a trace of its own
        await asyncio.sleep(0.2)  # the last server spans end just after the reply
        spans = exporter.get_finished_spans()

    chat = [s for s in spans if s.name == "/llmgw.llm.v1.LlmService/Chat" and s.parent is None]
    assert len(chat) == 1, [s.name for s in spans]
    trace_id = chat[0].context.trace_id
    in_trace = {s.name for s in spans if s.context.trace_id == trace_id}
    expected = {
        "/llmgw.identity.v1.IdentityService/Authenticate",
        "/llmgw.identity.v1.IdentityInternalService/ResolveModel",
        "/llmgw.quota.v1.QuotaInternalService/Reserve",
        "/llmgw.quota.v1.QuotaInternalService/Settle",
        "provider.chat",
    }
    assert expected <= in_trace, sorted(in_trace)
    # The record reaches history through quota's outbox relay, batched with others: its
    # own trace, from quota (client) to history (server).
    relay = [
        s for s in spans if s.name == "/llmgw.history.v1.HistoryInternalService/RecordInteractions"
    ]
    assert {s.kind.name for s in relay} >= {"CLIENT", "SERVER"}
    # Server spans of the other services hang below llm's client spans: same trace, a parent.
    servers = [
        s
        for s in spans
        if s.context.trace_id == trace_id
        and s.kind.name == "SERVER"
        and not s.name.startswith("/llmgw.llm")
    ]
    assert {s.name.split("/")[1].split(".")[1] for s in servers} == {"identity", "quota"}
    assert all(s.parent is not None for s in servers)


async def test_one_http_chat_is_one_trace_from_the_callers_context(exporter, tmp_path):
    """The HTTP door's server span continues the caller's W3C trace and is the parent of
    the gRPC calls the chat makes."""
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{caller_trace}-00f067aa0ba902b7-01"
    async with in_process_suite(tmp_path) as suite:
        tenant = await make_tenant(suite)
        exporter.clear()
        body = {"model": tenant.model, "messages": [{"role": "user", "content": "trace http"}]}
        headers = {"Authorization": f"Bearer {tenant.user_key}", "traceparent": traceparent}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{suite.http_url}/v1/chat/completions", json=body, headers=headers) as r,
        ):
            assert r.status == 200, await r.text()
        await asyncio.sleep(0.2)
        spans = exporter.get_finished_spans()
    door = [s for s in spans if s.name == "POST /v1/chat/completions"]
    assert len(door) == 1, [s.name for s in spans]
    assert format(door[0].context.trace_id, "032x") == caller_trace
    in_trace = {s.name for s in spans if s.context.trace_id == door[0].context.trace_id}
    assert {
        "/llmgw.identity.v1.IdentityService/Authenticate",
        "/llmgw.quota.v1.QuotaInternalService/Reserve",
        "/llmgw.quota.v1.QuotaInternalService/Settle",
        "provider.chat",
    } <= in_trace, sorted(in_trace)
    assert door[0].attributes["http.response.status_code"] == 200
