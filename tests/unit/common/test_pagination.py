from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from gateway_common.errors import InvalidArgument
from gateway_common.pagination import PageTokens, clamp_page_size

KEY = b"k" * 32


def test_token_round_trip_for_same_scope():
    tokens, scope = PageTokens(KEY), {"tenant": "t1", "user": "u1"}
    token = tokens.encode(["2026-11-25T10:00:00Z", "id-9"], scope)
    assert tokens.decode(token, scope) == ["2026-11-25T10:00:00Z", "id-9"]


def test_positions_round_trip_to_the_microsecond():
    tokens, when = PageTokens(KEY), datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
    token = tokens.encode_position((when, "id-1"), {})
    assert tokens.decode_position(token, {}) == (when, "id-1")


def test_empty_token_means_first_page():
    assert PageTokens(KEY).decode("", {"tenant": "t1"}) is None


def test_token_from_other_scope_is_refused():
    tokens = PageTokens(KEY)
    token = tokens.encode([1], {"tenant": "t1"})
    with pytest.raises(InvalidArgument):
        tokens.decode(token, {"tenant": "t2"})


def test_token_signed_with_another_key_is_refused():
    token = PageTokens(b"x" * 32).encode([1], {})
    with pytest.raises(InvalidArgument) as exc:
        PageTokens(KEY).decode(token, {})
    assert exc.value.reason == "INVALID_PAGE_TOKEN"


def _forge(key: list[object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
    return f"{body}.AAAAAAAAAAAAAAAAAAAAAA"


@pytest.mark.parametrize(
    "bad",
    ["%%%", "bm90IGpzb24", "eyJ4IjogMX0", _forge([10**30, "x"]), _forge(["x", "not-a-uuid"])],
)
def test_malformed_or_forged_tokens_are_invalid_argument(bad):
    with pytest.raises(InvalidArgument) as exc:
        PageTokens(KEY).decode_position(bad, {})
    assert exc.value.violations[0].field == "page_token"


def test_signed_but_out_of_range_position_is_invalid_argument():
    tokens = PageTokens(KEY)
    with pytest.raises(InvalidArgument):
        tokens.decode_position(tokens.encode([10**30, "x"], {}), {})


def test_the_key_is_derived_from_the_service_token_when_unset():
    a, b = PageTokens.from_secret("", "shared"), PageTokens.from_secret("", "shared")
    assert a.decode(b.encode([1], {}), {}) == [1]
    with pytest.raises(InvalidArgument):
        PageTokens.from_secret("", "other").decode(a.encode([1], {}), {})


def test_page_size_default_and_clamp():
    assert clamp_page_size(0) == 50
    assert clamp_page_size(10_000) == 500
    assert clamp_page_size(7, default=20, maximum=200) == 7
    with pytest.raises(InvalidArgument):
        clamp_page_size(-1)
