"""Issue 15: every error status of the HTTP door provoked and asserted, through the openai
SDK's exception types where it has one, and in OpenAI's error shape
(``{"error": {message, type, param, code}}``); a client that goes away is a cancel with
the gRPC path's charging rule."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import aiohttp
import openai
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_chat_surface import stored
from tests.e2e.test_http_door import async_client, iid, sync_client
from tests.e2e.world import make_tenant
from tests.support import free_port


def post(suite: Suite, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, Any]:
    """Status, JSON body and headers of a raw POST (what the SDK would not send)."""
    req = urllib.request.Request(f"{suite.http_url}{path}", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.load(r), r.headers
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), err.headers


def shape(body: Any) -> dict[str, Any]:
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, body
    assert "Traceback" not in error["message"]
    return dict(error)


def ask(model: str, text: str = "hi") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def test_sdk_exception_types(suite: Suite) -> None:
    t = await make_tenant(suite, limit=1)
    bad = sync_client(suite, "llmgw_not_a_key")
    with pytest.raises(openai.AuthenticationError) as auth:
        bad.chat.completions.create(**ask(t.model))  # type: ignore[call-overload]
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    admin = sync_client(suite, suite.admin_key)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        admin.chat.completions.create(**ask(t.model))  # type: ignore[call-overload]
    assert denied.value.code == "user_key_required"
    client = sync_client(suite, t.user_key)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(**ask("no-such-model"))  # type: ignore[call-overload]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad_range:
        client.chat.completions.create(**ask(t.model), temperature=5)  # type: ignore[call-overload]
    assert bad_range.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as outside:
        client.chat.completions.create(**ask(t.model), extra_body={"bogus": 1})  # type: ignore[call-overload]
    assert outside.value.param == "parameters.bogus"
    assert await t.used() == 0  # nothing refused was charged
    client.chat.completions.create(**ask(t.model))  # type: ignore[call-overload]
    with pytest.raises(openai.RateLimitError) as limit:
        client.chat.completions.create(**ask(t.model))  # type: ignore[call-overload]
    err = limit.value
    assert err.status_code == 429 and err.code == "insufficient_quota"
    assert err.type == "insufficient_quota"
    reset = datetime.fromisoformat(err.response.headers["x-quota-reset-requests"])
    wait = int(err.response.headers["Retry-After"])
    assert 0 < wait <= (reset - datetime.now(UTC)).total_seconds() + 1
    assert err.response.headers["x-quota-remaining-requests"] == "0"
    assert err.response.headers["x-should-retry"] == "false"  # the SDKs do not retry it
    assert await t.used() == 1


async def test_bad_bodies_are_400_413_415(suite: Suite) -> None:
    t = await make_tenant(suite)
    auth = {"Authorization": f"Bearer {t.user_key}", "Content-Type": "application/json"}
    status, body, _ = post(suite, "/v1/chat/completions", b'{"model": ', auth)
    assert status == 400 and shape(body)["code"] == "invalid_json"
    status, body, _ = post(suite, "/v1/chat/completions", b'{"temperature": NaN}', auth)
    assert status == 400 and shape(body)["code"] == "invalid_json"
    status, body, _ = post(suite, "/v1/chat/completions", b"[1]", auth)
    assert status == 400 and shape(body)["param"] == "body"
    status, body, _ = post(
        suite, "/v1/chat/completions", json.dumps({"model": t.model}).encode(), auth
    )
    assert status == 400 and shape(body)["param"] == "messages"
    plain = {**auth, "Content-Type": "text/plain"}
    status, body, _ = post(suite, "/v1/chat/completions", json.dumps(ask(t.model)).encode(), plain)
    assert status == 415 and shape(body)["code"] == "unsupported_media_type"
    huge = json.dumps(ask(t.model, "x" * (5 * 1024 * 1024))).encode()
    status, body, _ = post(suite, "/v1/chat/completions", huge, auth)
    assert status == 413 and shape(body)["code"] == "request_too_large"
    for bad, param in (({"input": []}, "input"), ({"input": [1]}, "input"), ({"x": 1}, "x")):
        raw = json.dumps({"model": t.model, **bad}).encode()
        status, body, _ = post(suite, "/v1/embeddings", raw, auth)
        assert status == 400 and shape(body)["param"] == param, body
    status, body, _ = post(suite, "/v1/nothing-here", b"{}", auth)
    assert status == 404 and shape(body)["code"] == "not_found"
    assert await t.used() == 0


async def test_conflict_503_and_504(suite: Suite) -> None:
    t = await make_tenant(suite)
    client = async_client(suite, t.user_key)
    slow: Any = {
        **ask(t.model, "slow [[delay:1500]]"),
        "extra_headers": {"Idempotency-Key": "busy-key"},
    }
    first = asyncio.create_task(client.chat.completions.create(**slow))
    await asyncio.sleep(0.7)
    with pytest.raises(openai.ConflictError) as busy:
        await client.chat.completions.create(**slow)
    assert busy.value.code == "idempotency_key_in_progress"
    assert (await first).choices[0].message.content
    with pytest.raises(openai.InternalServerError) as down:
        await client.chat.completions.create(**ask(t.model, "[[fail:503]]"))  # type: ignore[call-overload]
    assert down.value.status_code == 503 and down.value.code == "provider_error"
    dead = await make_tenant(suite, base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(openai.InternalServerError) as gone:
        await async_client(suite, dead.user_key).chat.completions.create(**ask(dead.model))  # type: ignore[call-overload]
    assert gone.value.status_code == 503 and gone.value.response.headers["Retry-After"]
    with pytest.raises(openai.InternalServerError) as late:
        await client.chat.completions.create(  # type: ignore[call-overload]
            **ask(t.model, "[[delay:3000]]"), extra_headers={"X-Request-Timeout": "1"}
        )
    assert late.value.status_code == 504
    await client.close()
    assert await t.used() == 1  # only the served one


async def test_a_client_gone_is_a_cancel_with_the_grpc_charging_rule(suite: Suite) -> None:
    t = await make_tenant(suite)
    url = f"{suite.http_url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {t.user_key}"}
    body = {**ask(t.model, "one two three four five [[slowstream:300]]"), "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        first = await resp.content.readuntil(b"\n\n")
    # the connection is closed here, part-way through the stream
    chunk = json.loads(first.removeprefix(b"data: "))
    doc = await stored(suite, iid(chunk["id"]))
    assert doc["status"] == "cancelled" and doc["conteudo_resposta"].startswith("Echo:")
    assert await t.used() == 1  # deltas were received: charged
    async with aiohttp.ClientSession() as session:
        unary = asyncio.create_task(
            session.post(url, json=ask(t.model, "[[delay:1500]]"), headers=headers)
        )
        await asyncio.sleep(0.7)
        unary.cancel()  # gone before any answer: released, recorded ERROR
        with pytest.raises(asyncio.CancelledError):
            await unary
    found = await t.interactions(want=2)
    errors = [i for i in found if i.error_reason == "CALLER_CANCELLED"]
    assert len(errors) == 1, found
    assert await t.used() == 1
