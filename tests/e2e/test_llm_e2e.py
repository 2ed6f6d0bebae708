"""Issue 6 acceptance: one Chat through identity, quota, the provider and history, with
the four services as separate processes on the real PostgreSQL and FerretDB."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pymongo import AsyncMongoClient

from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2
from llmgw.llm.v1 import llm_pb2
from tests.e2e.conftest import Suite
from tests.e2e.world import bearer, key_id_of, make_tenant, revoke, user_key
from tests.support import ROOT


async def refused(call: object, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value.details()
    info = error_info(err.value)
    return info.reason if info else ""


async def eventually(check, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if await check():
                return
        except grpc.aio.AioRpcError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def test_happy_path_counted_and_recorded_in_every_store(suite: Suite) -> None:
    t = await make_tenant(suite)
    reply = await t.chat("hello from the e2e suite", max_tokens=500)
    assert reply.content == "Echo: hello from the e2e suite"
    assert reply.usage.total_tokens == 5 + 6 and reply.model == t.model
    stats = suite.provider_stats()
    assert stats["last_authorization"] == f"Bearer {t.credential}"
    assert stats["last_request"]["max_tokens"] == 64  # capped by the tenant's token limit
    assert stats["last_request"]["temperature"] == 0.4  # tenant default merged in
    assert await t.used() == 1  # quota (PostgreSQL)
    [stored] = await t.interactions(want=1)  # history (FerretDB), through its API
    assert stored.interaction_id == reply.interaction_id
    assert stored.status == history_pb2.INTERACTION_STATUS_OK
    assert stored.metadata.tokens_used == reply.usage.total_tokens
    assert stored.metadata.prompt_tokens == 5 and stored.metadata.completion_tokens == 6
    assert stored.metadata.response_time_ms == reply.latency_ms
    assert stored.question == "hello from the e2e suite" and stored.answer == reply.content
    client: AsyncMongoClient = AsyncMongoClient(suite.env["MONGO_URL"])
    try:
        doc = await client[suite.env["HISTORY_DATABASE"]]["interacoes"].find_one(
            {"interacao_id": reply.interaction_id}
        )
    finally:
        await client.close()
    assert doc is not None and doc["metadados"]["tokens_utilizados"] == 11


async def test_request_over_the_limit_refused_without_provider_call(suite: Suite) -> None:
    t = await make_tenant(suite, limit=3)
    for i in range(3):
        await t.chat(f"q{i}")
    calls = suite.provider_stats()["calls"]
    reason = await refused(t.chat("one too many"), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert reason == "QUOTA_EXCEEDED"  # quota's own reason, passed through by llm
    assert suite.provider_stats()["calls"] == calls
    assert await t.used() == 3


async def test_provider_failure_refunds(suite: Suite) -> None:
    t = await make_tenant(suite)
    await refused(t.chat("boom [[fail:503]]"), grpc.StatusCode.UNAVAILABLE)
    await refused(t.chat("bad [[fail:400]]"), grpc.StatusCode.INVALID_ARGUMENT)
    assert await t.used() == 0
    stored = await t.interactions(want=2)
    assert sorted(i.status for i in stored) == [history_pb2.INTERACTION_STATUS_ERROR] * 2


async def test_wrong_or_revoked_key_refused(suite: Suite) -> None:
    t = await make_tenant(suite)
    await refused(t.chat("hi", key="not-a-key"), grpc.StatusCode.UNAUTHENTICATED)
    second = await user_key(suite, t.tenant_id, t.user_id)
    await t.chat("hi", key=second)
    await revoke(suite, await key_id_of(suite, second))
    await asyncio.sleep(1.5)  # identity's and llm's key caches (0.5 s each here)
    await refused(t.chat("hi", key=second), grpc.StatusCode.UNAUTHENTICATED)
    assert await t.used() == 1


async def test_tenant_cannot_use_another_tenants_model(suite: Suite) -> None:
    a, b = await make_tenant(suite), await make_tenant(suite)
    calls = suite.provider_stats()["calls"]
    await refused(a.chat("hi", model=b.model), grpc.StatusCode.NOT_FOUND)
    assert suite.provider_stats()["calls"] == calls
    assert await a.used() == 0 and await b.used() == 0


async def test_retry_with_idempotency_key_charged_and_recorded_once(suite: Suite) -> None:
    t = await make_tenant(suite)
    calls = suite.provider_stats()["calls"]
    first = await t.chat("once only", idempotency_key="retry-1")
    second = await t.chat("once only", idempotency_key="retry-1")
    assert second.interaction_id == first.interaction_id and second.content == first.content
    assert suite.provider_stats()["calls"] == calls + 1
    assert await t.used() == 1

    async def recorded_once() -> bool:
        return len(await t.interactions()) == 1

    await eventually(recorded_once)


async def test_stream_cancel_stays_charged_and_partial_recorded(suite: Suite) -> None:
    t = await make_tenant(suite, token_limit=1000)
    words = " ".join(f"w{i}" for i in range(60))
    req = llm_pb2.ChatStreamRequest(
        model=t.model,
        messages=[
            llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content=f"{words} [[slowstream:50]]")
        ],
    )
    call = t.llm.ChatStream(req, metadata=bearer(t.user_key), timeout=20)
    got: list[str] = []
    async for event in call:
        got.append(event.delta)
        if len(got) == 3:
            call.cancel()
            break

    async def recorded() -> bool:
        return len(await t.interactions()) == 1

    await eventually(recorded)
    [stored] = await t.interactions()
    assert stored.status == history_pb2.INTERACTION_STATUS_CANCELLED
    assert stored.answer.startswith("".join(got)) and len(stored.answer.split()) < 40
    assert await t.used() == 1


def gatewayctl(suite: Suite, *args: str, local: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **suite.env,
        "LOCAL_DIR": str(local),
        "FAKE_PROVIDER_URL": suite.provider_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "gatewayctl", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_gatewayctl_demo_seed_then_chat(suite: Suite, tmp_path: Path) -> None:
    seeded = await asyncio.to_thread(
        gatewayctl, suite, "--key", suite.admin_key, "demo-seed", local=tmp_path
    )
    assert seeded.returncode == 0, seeded.stderr
    command = next(line.strip() for line in seeded.stdout.splitlines() if "gatewayctl chat" in line)
    key = command.split("--key ")[1].split()[0]
    again = await asyncio.to_thread(
        gatewayctl, suite, "--key", suite.admin_key, "demo-seed", local=tmp_path
    )
    assert again.returncode == 0 and key in again.stdout  # idempotent: same key reused
    chat = await asyncio.to_thread(gatewayctl, suite, "chat", "--key", key, "hello", local=tmp_path)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == "Echo: hello"
    bad = await asyncio.to_thread(gatewayctl, suite, "chat", "--key", "nope", "hi", local=tmp_path)
    assert bad.returncode == 7 and "UNAUTHENTICATED" in bad.stderr
    usage = await asyncio.to_thread(
        gatewayctl,
        suite,
        "usage",
        "--key",
        key,
        "--user",
        _user_of(tmp_path),
        "--json",
        local=tmp_path,
    )
    assert usage.returncode == 0, usage.stderr
    assert '"used": "1"' in usage.stdout or '"used": 1' in usage.stdout
    # A user key needs no ids: its own tenant and user are the default scope.
    own = await asyncio.to_thread(
        gatewayctl, suite, "usage", "--key", key, "--json", local=tmp_path
    )
    assert own.returncode == 0, own.stderr
    assert '"used": "1"' in own.stdout or '"used": 1' in own.stdout
    listed = await asyncio.to_thread(
        gatewayctl, suite, "history", "list", "--key", key, "--json", local=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert "Echo: hello" in listed.stdout


def _user_of(local: Path) -> str:
    import json

    return str(json.loads((local / "demo.json").read_text())["user_id"])
