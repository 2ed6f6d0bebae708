"""The chat parameters: what is carried, ignored, refused and capped."""

from __future__ import annotations

from typing import Any

import openai.types.chat.completion_create_params as sdk
import pytest

from gateway_common.errors import InvalidArgument
from llm_svc.chat_schema import CHAT_SCHEMA, provider_parameters
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChatRole,
    ImagePart,
    ResolvedModel,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
)


def model(**kw: Any) -> ResolvedModel:
    base: dict[str, Any] = dict(model_id="m", name="n", config_id="c", token_limit=None)
    base.update(kw)
    return ResolvedModel(**base)


def req(*messages: ChatMessage, **kw: Any) -> ChatRequest:
    return ChatRequest(model="n", messages=messages or (ChatMessage(ChatRole.USER, "hi"),), **kw)


def refused(r: ChatRequest, m: ResolvedModel | None = None) -> list[str]:
    with pytest.raises(InvalidArgument) as err:
        provider_parameters(r, m or model())
    return [v.field for v in err.value.violations]


def test_the_schema_is_the_sdks_chat_completion_parameters() -> None:
    # A new SDK parameter must be classified here (carried, ignored or refused).
    assert set(sdk.CompletionCreateParamsBase.__annotations__) | {"stream"} == CHAT_SCHEMA


def test_tenant_defaults_under_request_parameters_under_typed_fields() -> None:
    m = model(extra_parameters={"temperature": 0.1, "seed": 7.0, "model": "evil", "stop": "x"})
    r = req(parameters={"stop": "y", "top_p": 0.5, "temperature": 1.0}, temperature=0.5)
    assert provider_parameters(r, m) == {"temperature": 0.5, "seed": 7, "stop": ["y"], "top_p": 0.5}


def test_unknown_parameters_refused_each_named_unless_allowed_extra() -> None:
    r = req(parameters={"frobnicate": 1, "top_k": 40, "temperature": 0.3})
    assert sorted(refused(r)) == ["parameters.frobnicate", "parameters.top_k"]
    allowed = model(allowed_extras=frozenset({"top_k", "frobnicate"}))
    assert provider_parameters(r, allowed) == {"frobnicate": 1, "top_k": 40, "temperature": 0.3}


@pytest.mark.parametrize("key", ["model", "api_key", "base_url", "stream", "messages"])
def test_model_credential_base_url_and_stream_never_settable(key: str) -> None:
    allowed = model(allowed_extras=frozenset({key}))
    assert refused(req(parameters={key: "x"}), allowed) == [f"parameters.{key}"]


def test_schema_fields_meaning_nothing_here_accepted_and_ignored() -> None:
    params = {"store": True, "metadata": {"a": "b"}, "service_tier": "auto", "stream_options": {}}
    assert provider_parameters(req(parameters=params), model()) == {}


@pytest.mark.parametrize(
    ("asked", "limit", "sent"),
    [
        ({}, 100, {"max_tokens": 100}),
        ({"max_tokens": 50}, 100, {"max_tokens": 50}),
        ({"max_tokens": 500}, 100, {"max_tokens": 100}),
        ({"max_completion_tokens": 500}, 100, {"max_completion_tokens": 100}),
        (
            {"max_completion_tokens": 500, "max_tokens": 7},
            100,
            {"max_completion_tokens": 100, "max_tokens": 7},
        ),
        ({"max_completion_tokens": 500}, None, {"max_completion_tokens": 500}),
        ({}, None, {}),
    ],
)
def test_token_limit_lowers_both_caps(
    asked: dict[str, int], limit: int | None, sent: dict[str, int]
) -> None:
    assert provider_parameters(req(**asked), model(token_limit=limit)) == sent
    # The same through parameters.
    assert provider_parameters(req(parameters=asked), model(token_limit=limit)) == sent


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"x" * 10: "y" * 40_000}, "parameters"),  # over 32 KiB
        (
            {
                "prediction": {
                    "a": {
                        "b": {
                            "c": {
                                "d": {
                                    "e": {
                                        "f": {
                                            "g": {
                                                "h": {
                                                    "i": {
                                                        "j": {
                                                            "k": {
                                                                "l": {
                                                                    "m": {
                                                                        "n": {"o": {"p": {"q": 1}}}
                                                                    }
                                                                }
                                                            }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
            "parameters",
        ),
        ({"prediction": float("nan")}, "parameters"),
        ({"prediction": "a\x00b"}, "parameters"),
        ({"$where": "1"}, "parameters.$where"),
        ({"a.b": 1}, "parameters.a.b"),
        ({"temperature": "hot"}, "parameters.temperature"),
        ({"functions": []}, "parameters.functions"),
    ],
)
def test_parameters_bounded_in_size_depth_and_shape(params: dict[str, Any], field: str) -> None:
    assert refused(req(parameters=params))[0] == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_p=1.5), "top_p"),
        (dict(max_tokens=0), "max_tokens"),
        (dict(max_completion_tokens=-1), "max_completion_tokens"),
        (dict(n=9), "n"),
        (dict(presence_penalty=3.0), "presence_penalty"),
        (dict(top_logprobs=3), "top_logprobs"),
        (dict(stop=("a", "b", "c", "d", "e")), "stop"),
        (dict(logit_bias={"abc": 1}), "logit_bias"),
        (dict(logit_bias={"50256": 101}), "logit_bias.50256"),
        (dict(reasoning_effort="max"), "reasoning_effort"),
        (dict(tools=(Tool("bad name"),)), "tools[0].name"),
        (dict(tools=(Tool("f"), Tool("f"))), "tools[1].name"),
        (
            dict(tools=(Tool("f"),), tool_choice=ToolChoice(function="g")),
            "tool_choice.function_name",
        ),
        (dict(tool_choice=ToolChoice(mode="required")), "tool_choice"),
        (
            dict(response_format=ResponseFormat("json_schema", name="s")),
            "response_format.json_schema.schema",
        ),
        (dict(tools=(Tool("f", parameters={"a": float("inf")}),)), "tools[0].parameters"),
        (dict(tools=(Tool("f", description="a\x00b"),)), "request"),
        (dict(stop=("a\x00",)), "request"),
    ],
)
def test_typed_fields_checked(kw: dict[str, Any], field: str) -> None:
    assert refused(req(**kw)) == [field]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (ChatMessage(ChatRole.TOOL, "42"), "messages[0].tool_call_id"),
        (ChatMessage(ChatRole.USER, "x", tool_call_id="c"), "messages[0].tool_call_id"),
        (
            ChatMessage(ChatRole.USER, tool_calls=(ToolCall("c", "f", "{}"),)),
            "messages[0].tool_calls",
        ),
        (ChatMessage(ChatRole.SYSTEM, parts=(ImagePart("https://x/a.png"),)), "messages[0].parts"),
        (
            ChatMessage(ChatRole.USER, parts=(ImagePart("file:///etc/passwd"),)),
            "messages[0].parts[0].image_url.url",
        ),
        (ChatMessage(ChatRole.USER, "x", parts=("y",)), "messages[0].parts"),
        (ChatMessage(ChatRole.USER, "nul\x00here"), "messages"),
    ],
)
def test_messages_checked(message: ChatMessage, field: str) -> None:
    assert refused(req(message)) == [field]


def test_tools_and_formats_in_parameters_fill_the_typed_fields() -> None:
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object"}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}
    r = req(
        parameters={"tools": [tool], "tool_choice": "auto", "response_format": fmt, "seed": 3.0}
    )
    body = provider_parameters(r, model())
    assert body == {"tools": [tool], "tool_choice": "auto", "response_format": fmt, "seed": 3}


def test_typed_fields_written_as_openai_json() -> None:
    r = req(
        tools=(Tool("f", "does f", {"type": "object", "properties": {}}, strict=True),),
        tool_choice=ToolChoice(function="f"),
        parallel_tool_calls=False,
        response_format=ResponseFormat("json_object"),
        stop=("END",),
        n=2,
        logprobs=True,
        top_logprobs=2,
        logit_bias={"50256": -100},
        reasoning_effort="low",
        user="end-user-1",
    )
    assert provider_parameters(r, model()) == {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "does f",
                    "parameters": {"type": "object", "properties": {}},
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "stop": ["END"],
        "n": 2,
        "logprobs": True,
        "top_logprobs": 2,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
        "user": "end-user-1",
    }
