"""Issue 15 acceptance: the real openai SDK (sync and async, unary and streaming, tools and
JSON mode, embeddings) pointed at llm's HTTP door with a tenant user key gets the same
answers, usage, history records and quota counts as the gRPC path, through the four
services as processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from typing import Any

import grpc
import openai
import pytest

from devtools.fake_answers import vector
from llmgw.llm.v1 import llm_pb2
from tests.e2e.conftest import Suite
from tests.e2e.test_chat_surface import WEATHER, chat, stored, user
from tests.e2e.world import bearer, make_tenant
from tests.support import ROOT

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "the weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
]


def sync_client(suite: Suite, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{suite.http_url}/v1", max_retries=0)


def async_client(suite: Suite, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=f"{suite.http_url}/v1", max_retries=0)


def same_record(http: dict[str, Any], grpc_: dict[str, Any]) -> None:
    """Two history documents of the same question: equal but for ids, times, latency."""
    for doc in (http, grpc_):
        assert doc["status"] == "ok", doc
    assert http["conteudo_pergunta"] == grpc_["conteudo_pergunta"]
    assert http["conteudo_resposta"] == grpc_["conteudo_resposta"]
    a, b = http["metadados"], grpc_["metadados"]
    assert a["tokens_utilizados"] == b["tokens_utilizados"] > 0
    assert a["parametros_prompt"] == b["parametros_prompt"]


def iid(completion_id: str) -> str:
    assert completion_id.startswith("chatcmpl-")
    return completion_id.removeprefix("chatcmpl-")


async def test_sync_unary_is_the_grpc_answer_usage_record_and_count(suite: Suite) -> None:
    t = await make_tenant(suite)
    before = await t.used()
    raw = sync_client(suite, t.user_key).chat.completions.with_raw_response.create(
        model=t.model,
        messages=[{"role": "user", "content": "hello over http"}],
        extra_headers={"X-Request-Id": "http-req-1"},
    )
    got = raw.parse()
    want = await chat(t, user("hello over http"))
    assert got.choices[0].message.content == want.content == "Echo: hello over http"
    assert got.choices[0].finish_reason == want.finish_reason
    assert got.usage is not None
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, got.usage.total_tokens) == (
        want.usage.prompt_tokens,
        want.usage.completion_tokens,
        want.usage.total_tokens,
    )
    assert got.model == want.model == t.model
    assert await t.used() == before + 2
    assert raw.headers["x-request-id"] == "http-req-1"
    assert raw.headers["x-quota-limit-requests"] == "100"
    assert raw.headers["x-quota-remaining-requests"] == str(100 - before - 1)
    assert raw.headers["x-quota-reset-requests"].endswith("+00:00")
    http_doc = await stored(suite, iid(got.id))
    same_record(http_doc, await stored(suite, want.interaction_id))
    assert http_doc["request_id"] == "http-req-1"


async def test_async_stream_with_usage_is_the_grpc_answer(suite: Suite) -> None:
    t = await make_tenant(suite)
    client = async_client(suite, t.user_key)
    stream = await client.chat.completions.create(
        model=t.model,
        messages=[{"role": "user", "content": "stream me four words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, ids = "", None, None, set()
    async for chunk in stream:
        ids.add(chunk.id)
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
        usage = chunk.usage or usage
    await client.close()
    want = await chat(t, user("stream me four words"))
    assert text == want.content and finish == "stop"
    assert usage is not None and usage.total_tokens == want.usage.total_tokens
    assert len(ids) == 1
    same_record(await stored(suite, iid(ids.pop())), await stored(suite, want.interaction_id))
    assert await t.used() == 2


async def test_tools_and_json_mode_through_the_sdk(suite: Suite) -> None:
    t = await make_tenant(suite)
    client = async_client(suite, t.user_key)
    got = await client.chat.completions.create(
        model=t.model,
        messages=[{"role": "user", "content": "weather in Paris"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    want = await chat(
        t,
        user("weather in Paris"),
        tools=[WEATHER],
        tool_choice=llm_pb2.ToolChoice(function_name="get_weather"),
    )
    calls = got.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        (c.id, c.name, c.arguments) for c in want.choices[0].tool_calls
    ]
    assert got.choices[0].finish_reason == want.choices[0].finish_reason == "tool_calls"
    same_record(await stored(suite, iid(got.id)), await stored(suite, want.interaction_id))

    js = await client.chat.completions.create(
        model=t.model,
        messages=[{"role": "user", "content": "as json please"}],
        response_format={"type": "json_object"},
    )
    want_js = await chat(
        t,
        user("as json please"),
        response_format=llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT),
    )
    assert json.loads(js.choices[0].message.content or "") == json.loads(want_js.content)
    await client.close()
    assert await t.used() == 4


async def test_streamed_tool_calls_through_the_sdk(suite: Suite) -> None:
    t = await make_tenant(suite)
    client = async_client(suite, t.user_key)
    stream = await client.chat.completions.create(
        model=t.model,
        messages=[{"role": "user", "content": "weather in Lima"}],
        tools=TOOLS,
        tool_choice="required",
        stream=True,
    )
    calls: dict[int, list[str]] = {}
    finish = None
    async for chunk in stream:
        for c in chunk.choices:
            finish = c.finish_reason or finish
            for d in c.delta.tool_calls or []:
                got = calls.setdefault(d.index, ["", "", ""])
                got[0] += d.id or ""
                got[1] += (d.function.name or "") if d.function else ""
                got[2] += (d.function.arguments or "") if d.function else ""
    await client.close()
    want = await chat(
        t,
        user("weather in Lima"),
        tools=[WEATHER],
        tool_choice=llm_pb2.ToolChoice(mode=llm_pb2.TOOL_CHOICE_MODE_REQUIRED),
    )
    assert [tuple(calls[i]) for i in sorted(calls)] == [
        (c.id, c.name, c.arguments) for c in want.choices[0].tool_calls
    ]
    assert finish == "tool_calls"


async def test_an_idempotency_key_is_charged_once(suite: Suite) -> None:
    t = await make_tenant(suite)
    client = sync_client(suite, t.user_key)
    kw: Any = {
        "model": t.model,
        "messages": [{"role": "user", "content": "once only"}],
        "extra_headers": {"Idempotency-Key": "k-http-1"},
    }
    first = client.chat.completions.create(**kw)
    again = client.chat.completions.create(**kw)
    assert again.id == first.id and again.choices[0].message.content == "Echo: once only"
    assert await t.used() == 1


async def test_models_the_key_may_use(suite: Suite) -> None:
    t = await make_tenant(suite)
    client = sync_client(suite, t.user_key)
    names = [m.id for m in client.models.list()]
    assert t.model in names
    assert client.models.retrieve(t.model).id == t.model
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


async def test_embeddings_over_http_and_grpc_are_charged_and_recorded_once(
    suite: Suite,
) -> None:
    t = await make_tenant(suite)
    got = sync_client(suite, t.user_key).embeddings.create(
        model=t.model, input=["first text", "the second one"]
    )
    assert [d.embedding for d in got.data] == [vector("first text"), vector("the second one")]
    assert got.usage.prompt_tokens == 5
    stub_reply = await t.llm.Embed(
        llm_pb2.EmbedRequest(model=t.model, inputs=["first text", "the second one"]),
        metadata=bearer(t.user_key),
        timeout=10,
    )
    assert [list(e.values) for e in stub_reply.embeddings] == [d.embedding for d in got.data]
    assert stub_reply.usage.prompt_tokens == 5
    assert await t.used() == 2
    doc = await stored(suite, stub_reply.interaction_id)
    assert doc["status"] == "ok"
    assert doc["conteudo_pergunta"] == "first text\nthe second one"
    assert doc["conteudo_resposta"] == ""
    assert doc["metadados"]["tokens_utilizados"] == 5
    params = doc["metadados"]["parametros_prompt"]
    assert params == {"endpoint": "embeddings", "inputs": 2, "vector_dimensions": 8}
    text = json.dumps(doc, default=str)
    assert all(str(x) not in text for x in vector("first text")[:3])  # never the vectors
    records = await t.interactions(want=2)
    assert len(records) == 2
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await t.llm.Embed(
            llm_pb2.EmbedRequest(model=t.model), metadata=bearer(t.user_key), timeout=10
        )
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await t.used() == 2


def readme_examples() -> list[str]:
    text = (ROOT / "llm_svc" / "README.md").read_text()
    blocks = re.findall(r"<!-- curl-example -->\n```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    return blocks


async def test_the_readme_curl_examples_work_as_printed(suite: Suite) -> None:
    t = await make_tenant(suite)
    env = {**os.environ, "LLMGW_HTTP": suite.http_url, "LLMGW_KEY": t.user_key}
    env["LLMGW_MODEL"] = t.model
    outputs = []
    for block in readme_examples():
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", block],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    unary, stream, embeddings, models = outputs[:4]
    assert json.loads(unary)["choices"][0]["message"]["content"] == "Echo: hello"
    events = [line.removeprefix("data: ") for line in stream.splitlines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Echo: hello stream" and chunks[-1]["usage"]["total_tokens"] > 0
    assert [d["embedding"] for d in json.loads(embeddings)["data"]] == [
        vector("first text"),
        vector("second text"),
    ]
    assert t.model in [m["id"] for m in json.loads(models)["data"]]
    assert await t.used() == 3
