from __future__ import annotations

import pytest

from gateway_common.errors import InvalidArgument
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChatRole,
    ResolvedModel,
    cut_text,
    provider_parameters,
)


def model(**kw: object) -> ResolvedModel:
    base: dict[str, object] = dict(
        model_id="m", name="n", config_id="c", base_url="", credential="", token_limit=None
    )
    base.update(kw)
    return ResolvedModel(**base)  # type: ignore[arg-type]


def req(**kw: object) -> ChatRequest:
    return ChatRequest(model="n", messages=(ChatMessage(ChatRole.USER, "hi"),), **kw)  # type: ignore[arg-type]


def test_parameters_merge_tenant_under_request_under_explicit_fields() -> None:
    m = model(extra_parameters={"temperature": 0.1, "seed": 7.0, "model": "evil", "stop": "x"})
    r = req(parameters={"stop": "y", "stream": True}, temperature=0.5)
    assert provider_parameters(r, m) == {"temperature": 0.5, "seed": 7, "stop": "y"}


@pytest.mark.parametrize(
    ("asked", "limit", "sent"),
    [(None, 100, 100), (50, 100, 50), (500, 100, 100), (500, None, 500), (None, None, None)],
)
def test_max_tokens_capped_by_token_limit(
    asked: int | None, limit: int | None, sent: int | None
) -> None:
    params = provider_parameters(req(max_tokens=asked), model(token_limit=limit))
    assert params.get("max_tokens") == sent


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
        (dict(top_p=1.5), "top_p"),
        (dict(max_tokens=0), "max_tokens"),
        (dict(idempotency_key="k" * 129), "idempotency_key"),
        (dict(messages=(ChatMessage(ChatRole.USER, "x" * 300_000),)), "messages"),
    ],
)
def test_validation(kw: dict[str, object], field: str) -> None:
    base: dict[str, object] = dict(model="n", messages=(ChatMessage(ChatRole.USER, "hi"),))
    base.update(kw)
    with pytest.raises(InvalidArgument) as err:
        ChatRequest(**base).validate()  # type: ignore[arg-type]
    assert err.value.violations[0].field == field
