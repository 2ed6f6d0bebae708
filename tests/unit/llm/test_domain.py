from __future__ import annotations

import pytest

from gateway_common.errors import InvalidArgument
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChatRole,
    cut_text,
)


@pytest.mark.parametrize(
    ("text", "limit", "kept", "cut"),
    [("abc", 3, "abc", False), ("abcd", 3, "abc", True), ("aé", 2, "a", True), ("", 0, "", False)],
)
def test_cut_text_keeps_whole_characters(text: str, limit: int, kept: str, cut: bool) -> None:
    assert cut_text(text, limit) == (kept, cut)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        (dict(messages=()), "messages"),
        (dict(model=" "), "model"),
        (dict(idempotency_key="k" * 129), "idempotency_key"),
        (dict(messages=(ChatMessage(ChatRole.USER, "x" * 300_000),)), "messages"),
        (dict(messages=(ChatMessage(ChatRole.USER, parts=("x" * 300_000,)),)), "messages"),
    ],
)
def test_validation(kw: dict[str, object], field: str) -> None:
    base: dict[str, object] = dict(model="n", messages=(ChatMessage(ChatRole.USER, "hi"),))
    base.update(kw)
    with pytest.raises(InvalidArgument) as err:
        ChatRequest(**base).validate()  # type: ignore[arg-type]
    assert err.value.violations[0].field == field


def test_question_is_the_last_user_messages_text() -> None:
    from llm_svc.domain import ImagePart, ToolCall

    r = ChatRequest(
        model="n",
        messages=(
            ChatMessage(ChatRole.USER, "first"),
            ChatMessage(ChatRole.USER, parts=("look", ImagePart("https://x/y.png"), "here")),
            ChatMessage(ChatRole.ASSISTANT, tool_calls=(ToolCall("c1", "f", "{}"),)),
            ChatMessage(ChatRole.TOOL, "42", tool_call_id="c1"),
        ),
    )
    assert r.question == "look\nhere"
