"""The token hold llm asks quota for: a true upper bound without a tokenizer, and the
completion cap a budget lowered applied to what the provider is sent."""

from __future__ import annotations

from llm_svc.domain import ChatMessage, ChatRequest, ChatRole, ImagePart, ToolCall
from llm_svc.service import ChatService
from llm_svc.token_bound import PER_IMAGE, PER_MESSAGE, PRIMING, asked_cap, chat_hold, embed_hold
from tests.unit.llm.fakes import FakeHistory, FakeIdentity, FakeProvider, FakeQuota, request


def _req(*messages: ChatMessage) -> ChatRequest:
    return ChatRequest(model="demo", messages=messages)


def test_the_prompt_bound_counts_utf8_bytes_and_the_framing() -> None:
    text = "olá, 世界"  # 12 bytes in UTF-8, 8 characters
    hold = chat_hold(_req(ChatMessage(ChatRole.USER, text)), {})
    assert hold.prompt_bound == PRIMING + PER_MESSAGE + len(text.encode()) == PRIMING + 16
    assert (hold.choices, hold.max_tokens, hold.model) == (1, 0, "demo")


def test_images_tools_and_choices_are_in_the_bound() -> None:
    msgs = (
        ChatMessage(ChatRole.USER, parts=("look", ImagePart("https://x/y.png"))),
        ChatMessage(ChatRole.ASSISTANT, tool_calls=(ToolCall("c1", "f", '{"a":1}'),)),
        ChatMessage(ChatRole.TOOL, "42", tool_call_id="c1"),
    )
    tools = [{"type": "function", "function": {"name": "f"}}]
    hold = chat_hold(_req(*msgs), {"tools": tools, "n": 3, "max_tokens": 50})
    import json

    expected = PRIMING + 3 * PER_MESSAGE + 4 + PER_IMAGE + 7 + 2 + 1 + 2 + 2
    assert hold.prompt_bound == expected + len(json.dumps(tools).encode())
    assert (hold.choices, hold.max_tokens) == (3, 50)


def test_the_cap_is_the_lower_of_both_names() -> None:
    assert asked_cap({"max_tokens": 100, "max_completion_tokens": 40}) == 40
    assert asked_cap({"max_completion_tokens": 40}) == 40
    assert asked_cap({"max_tokens": True}) == 0 and asked_cap({}) == 0


def test_embeddings_hold_their_inputs_and_no_completion() -> None:
    hold = embed_hold("e", ("ab", "ção"))
    assert (hold.prompt_bound, hold.choices, hold.max_tokens) == (2 + 5, 0, 0)


async def test_a_cap_lowered_by_the_budget_is_what_the_provider_gets() -> None:
    quota, provider = FakeQuota(), FakeProvider()
    service = ChatService(FakeIdentity(), quota, FakeHistory(), provider)
    quota.grant = 25
    await service.chat("user-key", request("hi", max_tokens=80), lambda: 10.0, "r1")
    assert provider.calls[-1]["parameters"]["max_tokens"] == 25
    [held] = quota.holds.values()
    assert held.max_tokens == 80 and held.choices == 1
    # No cap asked: the tenant's token limit (100 in the fake) is the ask, lowered.
    await service.chat("user-key", request("hi"), lambda: 10.0, "r2")
    assert provider.calls[-1]["parameters"]["max_tokens"] == 25
    assert quota.holds[provider_rid(quota, 1)].max_tokens == 100
    quota.grant = 80  # granted what was asked: sent as asked
    await service.chat("user-key", request("hi", max_tokens=80), lambda: 10.0, "r3")
    assert provider.calls[-1]["parameters"]["max_tokens"] == 80


def provider_rid(quota: FakeQuota, i: int) -> str:
    return list(quota.holds)[i]


def test_cost_is_tokens_times_price_per_million() -> None:
    from llm_svc.domain import ResolvedModel, Usage

    m = ResolvedModel("m", "demo", "c", "", "", input_price_nanos=150_000_000,
                      output_price_nanos=600_000_000)  # fmt: skip
    # 1000 x 0.15/M + 500 x 0.60/M = 0.00045 units = 450_000 nanos
    assert m.cost_nanos(Usage(1000, 500)) == 450_000
    assert m.cost_nanos(Usage(1, 1)) == 750  # 150 + 600: exact below a micro-unit
    assert ResolvedModel("m", "d", "c", "", "").cost_nanos(Usage(10, 10)) == 0  # no price
    odd = ResolvedModel("m", "d", "c", "", "", input_price_nanos=1_500_000)
    assert odd.cost_nanos(Usage(1, 0)) == 2  # 1.5 rounds half up


async def test_the_record_carries_the_cost_of_the_model_that_answered() -> None:
    from dataclasses import replace

    identity, quota = FakeIdentity(), FakeQuota()
    service = ChatService(identity, quota, FakeHistory(), FakeProvider())
    base = identity.models[("t1", "demo")]
    identity.models[("t1", "demo")] = replace(
        base, input_price_nanos=2_000_000_000, output_price_nanos=8_000_000_000
    )
    answer = await service.chat("user-key", request("hello world"), lambda: 10.0, "r")
    [stored] = quota.records.values()
    u = answer.usage
    assert stored.cost_nanos == u.prompt_tokens * 2000 + u.completion_tokens * 8000
