from __future__ import annotations

import pytest

from gateway_common.errors import InvalidArgument
from gateway_common.pagination import clamp_page_size, decode_token, encode_token


def test_token_round_trip_for_same_scope():
    scope = {"tenant": "t1", "user": "u1"}
    token = encode_token(["2026-11-25T10:00:00Z", "id-9"], scope)
    assert decode_token(token, scope) == ["2026-11-25T10:00:00Z", "id-9"]


def test_empty_token_means_first_page():
    assert decode_token("", {"tenant": "t1"}) is None


def test_token_from_other_scope_is_refused():
    token = encode_token([1], {"tenant": "t1"})
    with pytest.raises(InvalidArgument):
        decode_token(token, {"tenant": "t2"})


@pytest.mark.parametrize("bad", ["%%%", "bm90IGpzb24", "eyJ4IjogMX0"])
def test_malformed_tokens_are_invalid_argument(bad):
    with pytest.raises(InvalidArgument) as exc:
        decode_token(bad, {})
    assert exc.value.violations[0].field == "page_token"


def test_page_size_default_and_clamp():
    assert clamp_page_size(0) == 50
    assert clamp_page_size(10_000) == 500
    assert clamp_page_size(7, default=20, maximum=200) == 7
    with pytest.raises(InvalidArgument):
        clamp_page_size(-1)
