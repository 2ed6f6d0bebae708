from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from gateway_common.errors import InvalidArgument
from history_svc.domain import Bucket, Filter, Interaction, Metadata, utc_millis
from tests.unit.history.factories import interaction

LIMIT = 262_144


def _with(name: str, value: Any) -> Interaction:
    changes: dict[str, Any] = {name: value}
    return dataclasses.replace(interaction(), **changes)


def test_normalized_canonical_uuid_and_millisecond_utc():
    item = interaction(interaction_id="6F9619FF-8B86-D011-B42D-00C04FC964FF")
    when = dt.datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    item = dataclasses.replace(item, timestamp=when).normalized(LIMIT)
    assert item.interaction_id == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert item.timestamp == dt.datetime(2025, 1, 2, 6, 4, 5, 678_000, tzinfo=dt.UTC)
    assert item.day == "2025-01-02"


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "123"])
def test_interaction_id_must_be_uuid(bad):
    with pytest.raises(InvalidArgument) as err:
        dataclasses.replace(interaction(), interaction_id=bad).normalized(LIMIT)
    assert err.value.violations[0].field == "interaction.interaction_id"


@pytest.mark.parametrize("name", ["tenant_id", "user_id"])
def test_tenant_and_user_required(name):
    with pytest.raises(InvalidArgument) as err:
        _with(name, "").normalized(LIMIT)
    assert err.value.violations[0].field == f"interaction.{name}"


@pytest.mark.parametrize("name", ["question", "answer"])
def test_text_limit_counts_utf8_bytes(name):
    # "é" is 2 bytes: LIMIT/2 of them is exactly at the limit, one more byte is over.
    at_limit = "é" * (LIMIT // 2)
    assert _with(name, at_limit).normalized(LIMIT).timestamp
    with pytest.raises(InvalidArgument) as err:
        _with(name, at_limit + "x").normalized(LIMIT)
    assert err.value.violations[0].field == f"interaction.{name}"


def test_tokens_used_defaults_to_prompt_plus_completion():
    item = dataclasses.replace(interaction(), metadata=Metadata(0, 5, {}, 30, 12))
    assert item.normalized(LIMIT).metadata.tokens_used == 42


def test_negative_counts_refused():
    item = dataclasses.replace(interaction(), metadata=Metadata(0, -1, {}, 0, 0))
    with pytest.raises(InvalidArgument):
        item.normalized(LIMIT)


def test_bucket_sum_and_average():
    total = sum([Bucket("a", 2, 10, 6, 4, 300, 1), Bucket("b", 1, 5, 3, 2, 30, 0)], Bucket(""))
    assert total == Bucket("", 3, 15, 9, 6, 330, 1)
    assert total.average_latency_ms == 110.0
    assert Bucket("").average_latency_ms == 0.0


def test_scope_differs_per_filter():
    start = utc_millis(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    scopes = [
        Filter("t").scope(),
        Filter("t", user_id="u").scope(),
        Filter("t", model_id="m").scope(),
        Filter("t", start=start).scope(),
        Filter("t", end=start).scope(),
        Filter("t", text="x").scope(),
        Filter("t2").scope(),
    ]
    assert len({repr(s) for s in scopes}) == len(scopes)


def test_nul_escape_round_trips_any_text():
    from history_svc.mongo_documents import escape_text, unescape_text

    samples = [
        "",
        "plain",
        "a\x00b",
        "\x00\x00",
        "\ue000",
        "\ue0000",
        "\ue000\x00\ue000\ue000",
        "😀\x00中",
    ]
    for text in samples:
        encoded = escape_text(text)
        assert "\x00" not in encoded
        assert unescape_text(encoded) == text
    assert escape_text("no specials") == "no specials"


def test_documents_escape_only_when_asked():
    from history_svc.mongo_documents import from_document, to_document

    base = interaction(question="q\x00", answer="a")
    item = dataclasses.replace(
        base, metadata=dataclasses.replace(base.metadata, prompt_parameters={"k\x00": "v\x00"})
    )
    raw = to_document(item)
    assert raw["conteudo_pergunta"] == "q\x00"
    escaped = to_document(item, escape=True)
    assert "\x00" not in escaped["conteudo_pergunta"]
    assert "\x00" not in str(escaped["metadados"]["parametros_prompt"])
    assert from_document(escaped, escape=True) == item


def test_split_range_keeps_whole_days_and_cuts_edges_inside_one_day():
    from history_svc.domain import split_range

    t = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    h = dt.timedelta(hours=1)
    d = dt.timedelta(days=1)
    assert split_range(t, t + 3 * d) == ([], (t, t + 3 * d))
    assert split_range(t + 5 * h, t + 2 * d + h) == (
        [(t + 5 * h, t + d), (t + 2 * d, t + 2 * d + h)],
        (t + d, t + 2 * d),
    )
    assert split_range(t + h, t + 2 * h) == ([(t + h, t + 2 * h)], None)
    assert split_range(t + 20 * h, t + 30 * h) == ([(t + 20 * h, t + d), (t + d, t + 30 * h)], None)
    assert split_range(t + h, t + d) == ([(t + h, t + d)], None)
