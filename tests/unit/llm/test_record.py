"""The history record of a chat (llm_svc/record.py) and a stream put back together."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from llm_svc.assembly import StreamAssembly
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChatRole,
    Choice,
    ChoiceDelta,
    Completion,
    ImagePart,
    Interaction,
    Outcome,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llm_svc.record import answer_of, record_content

RAW = b"\x89PNG" + b"\x00" * 100
DATA = "data:image/png;base64," + base64.b64encode(RAW).decode()
CALL = ToolCall("call_1", "get_weather", '{"city": "Lisbon"}')


def _request() -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=(
            ChatMessage(
                ChatRole.USER, parts=("see", ImagePart(DATA), ImagePart("https://x/a.png", "low"))
            ),
            ChatMessage(ChatRole.ASSISTANT, tool_calls=(CALL,)),
            ChatMessage(ChatRole.TOOL, "21 C", tool_call_id="call_1"),
        ),
    )


def test_record_holds_references_tool_results_choices_and_safe_keys() -> None:
    choices = (
        Choice(0, "", tool_calls=(CALL,), finish_reason="tool_calls"),
        Choice(1, "it is 21 C", finish_reason="stop"),
    )
    sent = {"temperature": 0.2, "response_format": {"schema": {"$defs": {"a.b": 1}, "50%": 2}}}
    content = record_content(_request(), sent, Completion.of(choices, Usage(10, 5, 4, 2)))
    p = content.prompt_parameters
    assert content.question == "see" and content.answer == ""
    assert p["images"] == [
        {
            "message": 0,
            "part": 1,
            "media_type": "image/png",
            "sha256": hashlib.sha256(RAW).hexdigest(),
            "bytes": len(RAW),
        },
        {"message": 0, "part": 2, "url": "https://x/a.png", "detail": "low"},
    ]
    assert p["tool_results"] == [{"tool_call_id": "call_1", "content": "21 C"}]
    assert p["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": CALL.arguments}]
    assert [c["index"] for c in p["choices"]] == [0, 1]
    assert p["usage_details"] == {"cached_tokens": 4, "reasoning_tokens": 2}
    assert p["response_format"] == {"schema": {"%24defs": {"a%2Eb": 1}, "50%25": 2}}
    assert DATA[22:] not in repr(p)


def test_replay_rebuilds_the_choices_from_the_record() -> None:
    choices = (Choice(0, "", tool_calls=(CALL,), finish_reason="tool_calls"),)
    content = record_content(_request(), {}, Completion.of(choices, Usage(3, 4)))
    stored = Interaction(
        "i",
        "t",
        "u",
        "s",
        "m",
        "model",
        datetime.now(UTC),
        content.question,
        content.answer,
        Usage(3, 4),
        5,
        content.prompt_parameters,
        Outcome.OK,
        "r",
    )
    answer = answer_of(stored)
    assert answer.choices[0].tool_calls == (CALL,) and answer.finish_reason == "tool_calls"


def test_stream_assembly_joins_fragments_per_choice_and_call() -> None:
    a = StreamAssembly()
    a.add(StreamChunk((ChoiceDelta(0, tool_calls=(ToolCallDelta(0, "c0", "f", ""),)),)))
    a.add(StreamChunk((ChoiceDelta(0, tool_calls=(ToolCallDelta(1, "c1", "g", "{}"),)),)))
    a.add(StreamChunk((ChoiceDelta(0, tool_calls=(ToolCallDelta(0, arguments='{"x"'),)),)))
    a.add(
        StreamChunk(
            (
                ChoiceDelta(1, content="hi"),
                ChoiceDelta(0, tool_calls=(ToolCallDelta(0, arguments=": 1}"),)),
            )
        )
    )
    sent = a.add(
        StreamChunk(
            (ChoiceDelta(0, finish_reason="tool_calls"), ChoiceDelta(1, finish_reason="stop"))
        )
    )
    assert sent == []  # nothing worth sending on
    a.add(StreamChunk((), Usage(1, 2)))
    done = a.completion()
    assert done.choices[0].tool_calls == (
        ToolCall("c0", "f", '{"x": 1}'),
        ToolCall("c1", "g", "{}"),
    )
    assert done.choices[1].content == "hi" and done.finish_reason == "tool_calls"
    assert done.usage == Usage(1, 2)
    assert a.completion("cancelled").choices[1].finish_reason == "cancelled"
