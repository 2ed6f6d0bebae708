"""llm_svc served in-process, against in-process fakes of identity/quota/history's
gRPC contracts and the real fake provider (aiohttp, in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from aiohttp import web

from devtools.fake_provider import FakeProvider
from llm_svc.bootstrap import build
from llm_svc.config import LlmSettings
from llmgw.llm.v1 import llm_pb2_grpc
from tests.integration.llm import fake_services as fakes
from tests.support import free_port, running_server


class HistoryServer:
    """A fake history on a fixed port that tests may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.servicer = fakes.History()
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server()
        fakes.register_all(self.server, None, None, self.servicer)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
            self.server = None


@dataclass
class Stack:
    llm: llm_pb2_grpc.LlmServiceStub
    provider: FakeProvider
    identity: fakes.Identity
    quota: fakes.Quota
    history: HistoryServer
    spool_dir: Path


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeProvider, str]]:
    fake = FakeProvider()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


@pytest.fixture
async def stack(provider: tuple[FakeProvider, str], tmp_path: Path) -> AsyncIterator[Stack]:
    fake_provider, url = provider
    identity, quota = fakes.Identity(url), fakes.Quota()
    deps = grpc.aio.server()
    fakes.register_all(deps, identity, quota, None)
    deps_port = deps.add_insecure_port("127.0.0.1:0")
    await deps.start()
    history = HistoryServer()
    await history.start()
    settings = LlmSettings(
        identity_target=f"127.0.0.1:{deps_port}",
        quota_target=f"127.0.0.1:{deps_port}",
        history_target=f"127.0.0.1:{history.port}",
        spool_dir=str(tmp_path / "spool"),
        spool_replay_interval_seconds=0.2,
        history_timeout_seconds=0.5,
        auth_cache_seconds=0.0,
        GATEWAY_INTERNAL_TOKEN=fakes.TOKEN,
    )
    async with running_server(settings, build(settings)) as (_, channel):
        yield Stack(
            llm_pb2_grpc.LlmServiceStub(channel),
            fake_provider,
            identity,
            quota,
            history,
            tmp_path / "spool",
        )
    await history.stop()
    await deps.stop(0)
