"""LlmService through a real in-process gRPC server, with the real quota and history:
codes, ErrorInfo reasons, what reaches the provider, what is charged and recorded."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2
from llmgw.llm.v1 import llm_pb2
from tests.integration.llm.conftest import TEXT_LIMIT, Stack

USER = (("authorization", "Bearer user-key"), ("x-request-id", "req-123"))


def chat(text: str = "hello there", model: str = "demo-model", **kw: object) -> llm_pb2.ChatRequest:
    return llm_pb2.ChatRequest(
        model=model,
        messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content=text)],
        **kw,  # type: ignore[arg-type]
    )


async def fails(call: object, code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value.details()
    info = error_info(err.value)
    assert info is not None and info.reason == reason and info.domain == "llm.llmgw"
    return err.value


async def test_chat_happy_path(stack: Stack) -> None:
    reply = await stack.llm.Chat(chat(max_tokens=500), metadata=USER, timeout=5)
    assert reply.content == "Echo: hello there" and reply.finish_reason == "stop"
    assert reply.usage.prompt_tokens == 2 and reply.usage.completion_tokens == 3
    assert reply.usage.total_tokens == 5 and reply.model == "demo-model"
    # provider got the tenant's credential, the capped max_tokens, tenant parameters
    assert stack.provider.last_authorization == "Bearer sk-tenant-A"
    sent = stack.provider.last_request
    assert sent["model"] == "demo-model" and sent["max_tokens"] == 50
    assert sent["temperature"] == 0.3 and sent["seed"] == 42
    assert stack.committed() == 1 and list(stack.states()) == [reply.interaction_id]
    [stored] = await stack.records(1)
    assert stored.interaction_id == reply.interaction_id
    assert stored.status == history_pb2.INTERACTION_STATUS_OK
    assert stored.metadata.tokens_used == 5 and stored.request_id == "req-123"
    assert stored.subscription_id and stored.model_id == "mA"
    assert stored.question == "hello there" and stored.answer == reply.content
    assert stored.finish_reason == "stop" and not stored.answer_truncated
    # the request id reached identity
    assert stack.identity.metadata_seen[-1]["x-request-id"] == "req-123"


async def test_resolved_model_is_cached_for_a_short_time(stack: Stack) -> None:
    before = len(stack.identity.metadata_seen)  # one entry per ResolveModel call
    for _ in range(3):
        await stack.llm.Chat(chat(), metadata=USER, timeout=5)
    assert len(stack.identity.metadata_seen) - before <= 1
    assert stack.committed() == 3


@pytest.mark.parametrize(
    ("metadata", "code", "reason"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "MISSING_CREDENTIAL"),
        ((("authorization", "Bearer wrong"),), grpc.StatusCode.UNAUTHENTICATED, "INVALID_API_KEY"),
        (
            (("authorization", "Bearer admin-key"),),
            grpc.StatusCode.PERMISSION_DENIED,
            "USER_KEY_REQUIRED",
        ),
    ],
)
async def test_credentials(
    stack: Stack, metadata: tuple, code: grpc.StatusCode, reason: str
) -> None:
    await fails(stack.llm.Chat(chat(), metadata=metadata, timeout=5), code, reason)
    assert stack.provider.calls == 0 and not stack.states()


async def test_model_codes(stack: Stack) -> None:
    await fails(
        stack.llm.Chat(chat(model="nope"), metadata=USER, timeout=5),
        grpc.StatusCode.NOT_FOUND,
        "MODEL_NOT_FOUND",
    )
    await fails(
        stack.llm.Chat(chat(model="b-model"), metadata=USER, timeout=5),
        grpc.StatusCode.PERMISSION_DENIED,
        "MODEL_NOT_ENABLED",
    )
    assert not stack.states()


async def test_bad_request_has_field_violation(stack: Stack) -> None:
    req = llm_pb2.ChatRequest(model="demo-model", messages=[llm_pb2.Message(content="x")])
    err = await fails(
        stack.llm.Chat(req, metadata=USER, timeout=5),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert bad.field_violations[0].field == "messages[0].role"


async def test_quota_exhausted_no_provider_call_and_details_kept(stack: Stack) -> None:
    await stack.set_limit(0)
    err = await fails(
        stack.llm.Chat(chat(), metadata=USER, timeout=5),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
    )
    assert error_info(err).metadata["reset_time"]
    status = rpc_status.from_call(err)
    assert any(d.Is(error_details_pb2.QuotaFailure.DESCRIPTOR) for d in status.details)
    assert stack.provider.calls == 0


async def test_no_subscription(stack: Stack) -> None:
    await fails(
        stack.llm.Chat(chat(), metadata=(("authorization", "Bearer nosub-key"),), timeout=5),
        grpc.StatusCode.FAILED_PRECONDITION,
        "NO_ACTIVE_SUBSCRIPTION",
    )


@pytest.mark.parametrize(
    ("marker", "code", "reason"),
    [
        ("[[fail:503]]", grpc.StatusCode.UNAVAILABLE, "PROVIDER_ERROR"),
        ("[[fail:400]]", grpc.StatusCode.INVALID_ARGUMENT, "PROVIDER_REJECTED_REQUEST"),
        ("[[delay:3000]]", grpc.StatusCode.DEADLINE_EXCEEDED, "PROVIDER_TIMEOUT"),
    ],
)
async def test_provider_failure_refunds_and_records_error(
    stack: Stack, marker: str, code: grpc.StatusCode, reason: str
) -> None:
    await fails(stack.llm.Chat(chat(f"hi {marker}"), metadata=USER, timeout=1.5), code, reason)
    assert list(stack.states().values()) == ["released"]
    [stored] = await stack.records(1)
    assert stored.status == history_pb2.INTERACTION_STATUS_ERROR and stored.error_reason == reason


async def test_stream_deltas_then_done(stack: Stack) -> None:
    req = llm_pb2.ChatStreamRequest(
        model="demo-model",
        messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="a b c")],
    )
    events = [e async for e in stack.llm.ChatStream(req, metadata=USER, timeout=5)]
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    assert "".join(deltas) == "Echo: a b c" and len(deltas) == 4
    done = events[-1].done
    assert done.usage.completion_tokens == 4 and done.content == "Echo: a b c"
    assert stack.committed() == 1
    assert stack.provider.last_request["stream_options"] == {"include_usage": True}


async def test_stream_cancel_keeps_charge_and_records_partial(stack: Stack) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    req = llm_pb2.ChatStreamRequest(
        model="demo-model",
        messages=[
            llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content=f"{words} [[slowstream:50]]")
        ],
    )
    call = stack.llm.ChatStream(req, metadata=USER, timeout=10)
    got = []
    async for e in call:
        got.append(e.delta)
        if len(got) == 3:
            call.cancel()
            break
    [stored] = await stack.records(1)
    assert stored.status == history_pb2.INTERACTION_STATUS_CANCELLED
    assert stored.answer.startswith("".join(got)) and len(stored.answer.split()) < 20
    assert stack.committed() == 1


async def test_history_down_answers_served_then_delivered_once(stack: Stack) -> None:
    await stack.history_server.stop()
    replies = [await stack.llm.Chat(chat(f"q{i}"), metadata=USER, timeout=5) for i in range(3)]
    assert all(r.content.startswith("Echo") for r in replies)
    assert stack.committed() == 3
    await stack.history_server.start()
    stored = await stack.records(3)
    assert sorted(i.interaction_id for i in stored) == sorted(r.interaction_id for r in replies)


async def test_answer_over_historys_limit_is_cut_charged_and_recorded(stack: Stack) -> None:
    # The stack keeps TEXT_LIMIT bytes (GATEWAY_MAX_TEXT_BYTES, shared by llm and history).
    reply = await stack.llm.Chat(chat("y" * (TEXT_LIMIT + 100)), metadata=USER, timeout=10)
    assert reply.finish_reason == "length" and len(reply.content.encode()) == TEXT_LIMIT
    [stored] = await stack.records(1)
    assert stored.answer_truncated and stored.answer == reply.content
    assert len(stored.question.encode()) == TEXT_LIMIT
    assert stack.committed() == 1


async def test_idempotent_retry_charged_and_recorded_once(stack: Stack) -> None:
    first = await stack.llm.Chat(chat(idempotency_key="abc"), metadata=USER, timeout=5)
    second = await stack.llm.Chat(chat(idempotency_key="abc"), metadata=USER, timeout=5)
    assert second.interaction_id == first.interaction_id and second.content == first.content
    assert stack.provider.calls == 1 and stack.committed() == 1
    assert len(await stack.records(1)) == 1


async def test_list_models(stack: Stack) -> None:
    reply = await stack.llm.ListModels(llm_pb2.ListModelsRequest(), metadata=USER, timeout=5)
    [model] = reply.models
    assert model.name == "demo-model" and getattr(model, "global") is False
    await fails(
        stack.llm.ListModels(llm_pb2.ListModelsRequest(page_size=-1), metadata=USER, timeout=5),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda r: r.messages[0].parts.add(
                image_url=llm_pb2.ImageUrl(url="https://x", detail=99)
            ),
            "messages[0].parts[0].detail",
        ),
        (lambda r: r.messages[0].parts.add(), "messages[0].parts[0]"),
        (lambda r: setattr(r.tool_choice, "mode", 42), "tool_choice.mode"),
        (lambda r: setattr(r.response_format, "type", 42), "response_format.type"),
        (
            lambda r: r.messages.add(role=llm_pb2.MESSAGE_ROLE_TOOL, content="42"),
            "messages[1].tool_call_id",
        ),
        (
            lambda r: r.parameters.fields["x"].__setattr__("number_value", float("nan")),
            "parameters.x",
        ),
        (
            lambda r: (
                r.tools.add(name="f")
                .parameters.fields["x"]
                .__setattr__("number_value", float("inf"))
            ),
            "tools[0].parameters.x",
        ),
    ],
)
async def test_values_without_meaning_are_invalid_argument(
    stack: Stack, change: object, field: str
) -> None:
    req = chat()
    change(req)  # type: ignore[operator]
    err = await fails(
        stack.llm.Chat(req, metadata=USER, timeout=5),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert bad.field_violations[0].field == field
    assert stack.provider.calls == 0 and not stack.states()


async def test_unspecified_tool_choice_and_format_mean_not_set(stack: Stack) -> None:
    req = chat()
    req.tool_choice.mode = llm_pb2.TOOL_CHOICE_MODE_UNSPECIFIED
    req.response_format.type = llm_pb2.RESPONSE_FORMAT_TYPE_UNSPECIFIED
    reply = await stack.llm.Chat(req, metadata=USER, timeout=5)
    assert reply.content == "Echo: hello there"
    sent = stack.provider.last_request
    assert "tool_choice" not in sent and "response_format" not in sent
