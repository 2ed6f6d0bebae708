"""Issue 14 acceptance: the chat completion surface through the whole suite (four service
processes; llm calls the fake provider with the real openai SDK), and the history it
leaves. Issue 13's findings 4 and 6 on this surface: test_chat_limits.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pymongo import AsyncMongoClient

from gateway_common.status import error_info
from llmgw.llm.v1 import llm_pb2
from tests.e2e.conftest import Suite
from tests.e2e.world import Tenant, bearer, make_tenant

USER = llm_pb2.MESSAGE_ROLE_USER
WEATHER = llm_pb2.Tool(name="get_weather", description="the weather in a city")
WEATHER.parameters.update(
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
)
TIME = llm_pb2.Tool(name="get_time", description="the time in a city")
TIME.parameters.update(
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # 2 KiB standing in for an image
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def user(text: str = "", *parts: llm_pb2.ContentPart) -> llm_pb2.Message:
    return llm_pb2.Message(role=USER, content=text, parts=list(parts))


def params(**values: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


async def chat(t: Tenant, *messages: llm_pb2.Message, **kw: Any) -> llm_pb2.ChatResponse:
    req = llm_pb2.ChatRequest(model=t.model, messages=list(messages), **kw)
    return await t.llm.Chat(req, metadata=bearer(t.user_key), timeout=10)


async def refusal(call: Any, code: grpc.StatusCode) -> tuple[str, list[str]]:
    """The reason and BadRequest fields of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    info = error_info(err.value)
    fields: list[str] = []
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return (info.reason if info else ""), fields


async def stored(suite: Suite, interaction_id: str) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(suite.env["MONGO_URL"])
    deadline = asyncio.get_running_loop().time() + 15
    try:
        while True:  # records reach history through quota's outbox, a moment after the answer
            doc = await client[suite.env["HISTORY_DATABASE"]]["interacoes"].find_one(
                {"interacao_id": interaction_id}
            )
            if doc is not None or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    assert doc is not None
    return doc


async def test_tool_calling_loop(suite: Suite) -> None:
    t = await make_tenant(suite)
    question = user("what is the weather in Lisbon? use get_weather")
    first = await chat(t, question, tools=[WEATHER, TIME])
    [choice] = first.choices
    assert choice.finish_reason == "tool_calls" and first.finish_reason == "tool_calls"
    [call] = choice.tool_calls
    assert call.name == "get_weather" and call.id.startswith("call_")
    args = json.loads(call.arguments)
    assert set(args) == {"city", "days"} and isinstance(args["days"], int)
    sent = suite.provider_stats()["last_request"]
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather", "get_time"]
    assistant = llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_ASSISTANT, tool_calls=[call])
    result = llm_pb2.Message(
        role=llm_pb2.MESSAGE_ROLE_TOOL, tool_call_id=call.id, content='{"celsius": 21}'
    )
    final = await chat(t, question, assistant, result, tools=[WEATHER, TIME])
    assert final.content == 'Tool results: {"celsius": 21}' and final.finish_reason == "stop"
    sent = suite.provider_stats()["last_request"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2]["tool_call_id"] == call.id
    assert await t.used() == 2
    # History: the tool call of the first, the tool result of the second.
    records = {i.interaction_id: i for i in await t.interactions(want=2)}
    one = json_format.MessageToDict(records[first.interaction_id].metadata.prompt_parameters)
    assert one["tool_calls"] == [{"id": call.id, "name": call.name, "arguments": call.arguments}]
    assert records[first.interaction_id].question == question.content
    two = json_format.MessageToDict(records[final.interaction_id].metadata.prompt_parameters)
    assert two["tool_results"] == [{"tool_call_id": call.id, "content": '{"celsius": 21}'}]


async def test_parallel_tool_calls_and_their_switch(suite: Suite) -> None:
    t = await make_tenant(suite)
    ask = user("use get_weather and get_time for Porto")
    both = await chat(t, ask, tools=[WEATHER, TIME])
    assert [c.name for c in both.choices[0].tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in both.choices[0].tool_calls}) == 2
    one = await chat(t, ask, tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [c.name for c in one.choices[0].tool_calls] == ["get_weather"]
    assert suite.provider_stats()["last_request"]["parallel_tool_calls"] is False
    forced = await chat(
        t,
        user("hello"),
        tools=[WEATHER, TIME],
        tool_choice=llm_pb2.ToolChoice(function_name="get_time"),
    )
    assert [c.name for c in forced.choices[0].tool_calls] == ["get_time"]


async def test_json_object_and_json_schema_answers_parse(suite: Suite) -> None:
    t = await make_tenant(suite)
    fmt = llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    reply = await chat(t, user("give me json"), response_format=fmt)
    assert json.loads(reply.content) == {"answer": "Echo: give me json"}
    schema = llm_pb2.JsonSchema(name="person", strict=True)
    schema.schema.update(
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "nick": {"type": "string"},
            },
            "required": ["name", "age", "tags"],
            "$defs": {"unused": {"type": "string"}},  # a key MongoDB cannot hold as is
        }
    )
    fmt = llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=schema)
    reply = await chat(t, user("a person"), response_format=fmt)
    person = json.loads(reply.content)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    assert isinstance(person["tags"], list)
    sent = suite.provider_stats()["last_request"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert "$defs" in sent["json_schema"]["schema"]  # sent as given
    [record] = [i for i in await t.interactions(want=2) if i.interaction_id == reply.interaction_id]
    kept = json_format.MessageToDict(record.metadata.prompt_parameters)["response_format"]
    assert kept["json_schema"]["name"] == "person"
    assert "%24defs" in kept["json_schema"]["schema"]  # stored, key encoded


async def test_image_message_counted_and_recorded_by_reference_only(suite: Suite) -> None:
    t = await make_tenant(suite)
    by_url = llm_pb2.ContentPart(
        image_url=llm_pb2.ImageUrl(
            url="https://images.test/cat.png", detail=llm_pb2.IMAGE_DETAIL_LOW
        )
    )
    inline = llm_pb2.ContentPart(image_url=llm_pb2.ImageUrl(url=DATA_URL))
    text = llm_pb2.ContentPart(text="what are these?")
    reply = await chat(t, user("", text, by_url, inline))
    assert reply.content == "Echo: what are these? [images: 2]"
    assert reply.usage.prompt_tokens == 3 + 2 * 85
    sent = suite.provider_stats()["last_request"]["messages"][0]["content"]
    assert sent[1] == {
        "type": "image_url",
        "image_url": {"url": by_url.image_url.url, "detail": "low"},
    }
    assert sent[2]["image_url"]["url"] == DATA_URL  # the provider gets the bytes
    [record] = await t.interactions(want=1)
    assert record.question == "what are these?"
    images = json_format.MessageToDict(record.metadata.prompt_parameters)["images"]
    assert images == [
        {"message": 0, "part": 1, "url": "https://images.test/cat.png", "detail": "low"},
        {
            "message": 0,
            "part": 2,
            "media_type": "image/png",
            "sha256": hashlib.sha256(PNG).hexdigest(),
            "bytes": len(PNG),
        },
    ]
    doc = await stored(suite, reply.interaction_id)
    raw = json.dumps(doc, default=str)
    assert DATA_URL[22:80] not in raw and "base64" not in raw  # no image bytes stored


async def _streamed(t: Tenant, req: llm_pb2.ChatStreamRequest) -> list[llm_pb2.ChatStreamResponse]:
    stream: AsyncIterator[llm_pb2.ChatStreamResponse] = t.llm.ChatStream(
        req, metadata=bearer(t.user_key), timeout=10
    )
    return [event async for event in stream]


async def test_streamed_tool_call_deltas_reassemble_into_the_unary_calls(suite: Suite) -> None:
    t = await make_tenant(suite)
    ask = user("use get_weather and get_time for Faro")
    unary = await chat(t, ask, tools=[WEATHER, TIME])
    events = await _streamed(
        t, llm_pb2.ChatStreamRequest(model=t.model, messages=[ask], tools=[WEATHER, TIME])
    )
    *deltas, last = events
    assert last.WhichOneof("event") == "done"
    pieces = [e.choice_delta for e in deltas if e.WhichOneof("event") == "choice_delta"]
    assert len(pieces) > 4  # an opening piece and argument fragments per call
    calls: dict[int, dict[str, str]] = {}
    for piece in pieces:
        for d in piece.tool_calls:
            call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or d.id
            call["name"] = call["name"] or d.name
            call["arguments"] += d.arguments
    expected = [
        {"id": c.id, "name": c.name, "arguments": c.arguments} for c in unary.choices[0].tool_calls
    ]
    assert [calls[i] for i in sorted(calls)] == expected
    assert list(last.done.choices[0].tool_calls) == list(unary.choices[0].tool_calls)
    assert last.done.finish_reason == "tool_calls"
    assert last.done.usage.completion_tokens == unary.usage.completion_tokens


async def test_text_stream_still_comes_as_delta(suite: Suite) -> None:
    t = await make_tenant(suite)
    events = await _streamed(t, llm_pb2.ChatStreamRequest(model=t.model, messages=[user("a b c")]))
    text = "".join(e.delta for e in events if e.WhichOneof("event") == "delta")
    assert text == "Echo: a b c" == events[-1].done.content


async def test_n_choices_one_request_charged_once_every_choice_recorded(suite: Suite) -> None:
    t = await make_tenant(suite)
    reply = await chat(t, user("two please"), n=2, seed=7, stop=["zzz"])
    assert [c.content for c in reply.choices] == ["Echo: two please", "Echo: two please #2"]
    assert reply.content == "Echo: two please"
    sent = suite.provider_stats()["last_request"]
    assert sent["n"] == 2 and sent["seed"] == 7 and sent["stop"] == ["zzz"]
    assert await t.used() == 1
    [record] = await t.interactions(want=1)
    choices = json_format.MessageToDict(record.metadata.prompt_parameters)["choices"]
    assert [c["content"] for c in choices] == ["Echo: two please", "Echo: two please #2"]
    events = await _streamed(
        t, llm_pb2.ChatStreamRequest(model=t.model, messages=[user("two please")], n=2)
    )
    assert [c.content for c in events[-1].done.choices] == [c.content for c in reply.choices]
    assert await t.used() == 2


async def test_usage_details_and_reasoning_effort(suite: Suite) -> None:
    t = await make_tenant(suite)
    system = llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_DEVELOPER, content="be brief now")
    reply = await chat(t, system, user("hi"), reasoning_effort="high", user="end-user-7")
    assert reply.usage.cached_tokens == 3 and reply.usage.reasoning_tokens == 8
    sent = suite.provider_stats()["last_request"]
    assert sent["reasoning_effort"] == "high" and sent["user"] == "end-user-7"
    assert sent["messages"][0]["role"] == "developer"


async def test_refusals_unknown_parameter_and_model_credential_base_url(suite: Suite) -> None:
    t = await make_tenant(suite)
    calls = suite.provider_stats()["calls"]
    reason, fields = await refusal(
        chat(t, user("hi"), parameters=params(top_k=40, frobnicate=1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason == "INVALID_PARAMETERS"
    assert sorted(fields) == ["parameters.frobnicate", "parameters.top_k"]
    for key in ("model", "api_key", "base_url", "stream"):
        _, fields = await refusal(
            chat(t, user("hi"), parameters=params(**{key: "http://evil.test"})),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert fields == [f"parameters.{key}"]
    assert suite.provider_stats()["calls"] == calls  # no provider call
    assert await t.used() == 0  # nothing charged
    # Ignored, so SDK-shaped parameters keep working.
    await chat(
        t, user("hi"), parameters=params(store=True, metadata={"k": "v"}, service_tier="auto")
    )
    sent = suite.provider_stats()["last_request"]
    assert "store" not in sent and "metadata" not in sent and "service_tier" not in sent


async def test_allowed_extras_pass_but_never_the_forbidden_ones(suite: Suite) -> None:
    t = await make_tenant(suite, allowed_extras=("top_k", "base_url"))
    await chat(t, user("hi"), parameters=params(top_k=40))
    assert suite.provider_stats()["last_request"]["top_k"] == 40
    _, fields = await refusal(
        chat(t, user("hi"), parameters=params(base_url="http://169.254.169.254/")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert fields == ["parameters.base_url"]


async def test_both_token_caps_lowered_to_the_limit(suite: Suite) -> None:
    t = await make_tenant(suite, token_limit=64)
    await chat(t, user("hi"), max_completion_tokens=500)
    sent = suite.provider_stats()["last_request"]
    assert sent["max_completion_tokens"] == 64 and "max_tokens" not in sent
    await chat(t, user("hi"), parameters=params(max_completion_tokens=500, max_tokens=900))
    sent = suite.provider_stats()["last_request"]
    assert sent["max_completion_tokens"] == 64 and sent["max_tokens"] == 64
    await chat(t, user("hi"), max_tokens=500)
    assert suite.provider_stats()["last_request"]["max_tokens"] == 64


async def test_gatewayctl_chat_sends_a_file_of_messages_and_tools(
    suite: Suite, tmp_path: Path
) -> None:
    from tests.e2e.test_llm_e2e import gatewayctl

    t = await make_tenant(suite)
    weather = json_format.MessageToDict(WEATHER)
    request = {
        "messages": [{"role": "user", "content": "use get_weather for Braga"}],
        "tools": [{"type": "function", "function": weather}],
        "tool_choice": "auto",
        "seed": 3,
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(request))
    for mode in ("--no-stream", None):
        args = ["chat", "--key", t.user_key, "--model", t.model, "--file", str(path)]
        done = await asyncio.to_thread(
            gatewayctl, suite, *([*args, mode] if mode else args), local=tmp_path
        )
        assert done.returncode == 0, done.stderr
        [line] = [x for x in done.stdout.splitlines() if x.startswith("tool call ")]
        call_id, call = line.removeprefix("tool call ").split(": ", 1)
        assert call_id.startswith("call_") and call.startswith("get_weather({")
        assert json.loads(call.removeprefix("get_weather(").removesuffix(")"))["city"]
    assert suite.provider_stats()["last_request"]["seed"] == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**request, "top_k": 5}))
    args = ["chat", "--key", t.user_key, "--model", t.model, "--file", str(bad), "--no-stream"]
    refused = await asyncio.to_thread(gatewayctl, suite, *args, local=tmp_path)
    assert refused.returncode == 3 and "parameters.top_k" in refused.stderr
