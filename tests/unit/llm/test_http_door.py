"""The HTTP door's own boundary, through a real socket (aiohttp in process) over the use
cases with the ports' fakes: overload is 503 (never 429), readiness follows the
dependencies and the drain, a bad X-Request-Id is 400, metrics carry route templates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from llm_svc.http_routes import Routes
from llm_svc.http_server import HttpDoor
from llm_svc.service import ChatService
from llm_svc.service_embed import EmbedService
from tests.unit.llm.fakes import FakeHistory, FakeIdentity, FakeProvider, FakeQuota

ASK = {"model": "demo", "messages": [{"role": "user", "content": "hello"}]}
AUTH = {"Authorization": "Bearer user-key"}


class Door:
    def __init__(self, routes: Routes, provider: FakeProvider, url: str) -> None:
        self.routes, self.provider, self.url = routes, provider, url
        self.down: list[str] = []


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    identity, quota, history, provider = FakeIdentity(), FakeQuota(), FakeHistory(), FakeProvider()
    chat = ChatService(identity, quota, history, provider)
    embed = EmbedService(identity, quota, history, embedder=None)  # type: ignore[arg-type]
    state: list[list[str]] = [[]]

    async def ready() -> list[str]:
        return state[0]

    routes = Routes(chat, embed, ready, timeout=5.0)
    server = HttpDoor(routes.app(1024 * 1024, max_in_flight=1), "127.0.0.1", 0, 1.0)
    server.start_soon()
    await asyncio.sleep(0.05)
    d = Door(routes, provider, f"http://127.0.0.1:{server.port}")
    d.down = state[0]
    yield d
    await server.stop()
    await chat.drain()


async def call(d: Door, path: str, **kw: Any) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(kw.pop("method", "POST"), d.url + path, **kw) as r,
    ):
        return r.status, await r.json(), r.headers


async def test_overload_is_503_with_retry_after_never_429(door: Door) -> None:
    door.provider.pause = 0.5
    slow = asyncio.create_task(call(door, "/v1/chat/completions", json=ASK, headers=AUTH))
    await asyncio.sleep(0.15)
    status, body, headers = await call(door, "/v1/chat/completions", json=ASK, headers=AUTH)
    assert status == 503 and body["error"]["code"] == "overloaded"
    assert headers["Retry-After"] == "1"
    assert (await slow)[0] == 200


async def test_readiness_follows_the_dependencies_and_the_drain(door: Door) -> None:
    assert (await call(door, "/readyz", method="GET"))[0] == 200
    door.down.append("quota")
    status, body, _ = await call(door, "/readyz", method="GET")
    assert status == 503 and body["not_ready"] == ["quota"]
    door.down.clear()
    door.routes.draining = True
    status, body, _ = await call(door, "/readyz", method="GET")
    assert status == 503 and body["not_ready"] == ["draining"]
    assert (await call(door, "/healthz", method="GET"))[0] == 200


async def test_request_ids_and_route_metrics(door: Door) -> None:
    status, body, headers = await call(
        door, "/v1/chat/completions", json=ASK, headers={**AUTH, "X-Request-Id": "abc-1"}
    )
    assert status == 200 and headers["x-request-id"] == "abc-1"
    status, body, _ = await call(
        door, "/v1/chat/completions", json=ASK, headers={**AUTH, "X-Request-Id": "x" * 200}
    )
    assert status == 400 and body["error"]["param"] == "X-Request-Id"
    await call(door, "/v1/models/some%20model", method="GET", headers=AUTH)
    labels = {"route": "/v1/models/{model}", "method": "GET", "status": "404"}
    assert REGISTRY.get_sample_value("http_server_requests_total", labels)
    status, body, _ = await call(door, "/v1/chat/completions", method="GET")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
