from __future__ import annotations

import pytest

from gateway_common.errors import InvalidArgument
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChatRole,
    ResolvedModel,
    interaction_id_for,
    provider_parameters,
    request_id_for,
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


def test_request_ids_are_deterministic_with_a_key_and_random_without() -> None:
    assert request_id_for("t", "u", "k") == request_id_for("t", "u", "k")
    assert request_id_for("t", "u", "k") != request_id_for("t", "u2", "k")
    assert request_id_for("t", "u", "k", 1) != request_id_for("t", "u", "k")
    assert request_id_for("t", "u", "") != request_id_for("t", "u", "")
    assert interaction_id_for("a") == interaction_id_for("a") != interaction_id_for("b")


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
