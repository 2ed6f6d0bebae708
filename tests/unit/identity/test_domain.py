import pytest

from gateway_common.errors import InvalidArgument, Unauthenticated
from identity_svc import domain as d


def test_new_secret_format_and_prefix_roundtrip():
    s = d.new_secret()
    assert s.secret.startswith(f"llmgw_{s.prefix}_") and len(s.prefix) == d.PREFIX_LEN
    assert d.key_prefix(s.secret) == s.prefix
    assert d.hash_matches(s.secret, s.hash)
    assert not d.hash_matches(s.secret + "x", s.hash)
    assert d.new_secret().secret != s.secret


@pytest.mark.parametrize(
    "key",
    ["", "llmgw", "llmgw_abc_def", "other_abcdefghij_" + "x" * 43, "llmgw_ABCDEFGHIJ_" + "x" * 43],
)
def test_malformed_keys_are_unauthenticated(key):
    with pytest.raises(Unauthenticated):
        d.key_prefix(key)


@pytest.mark.parametrize(
    ("fn", "value"),
    [
        (lambda v: d.name_field(v, "name"), "   "),
        (lambda v: d.name_field(v, "name"), "x" * 201),
        (lambda v: d.email_field(v), "no-at-sign"),
        (lambda v: d.email_field(v), "a@b"),
        (lambda v: d.email_field(v), "a" * 250 + "@x.io"),
        (lambda v: d.uuid_field(v, "id"), "1234"),
        (lambda v: d.uuid_field(v, "id"), ""),
        (lambda v: d.time_zone_field(v), "Not/AZone"),
        (lambda v: d.time_zone_field(v), "../../etc/passwd"),
        (lambda v: d.url_field(v), "ftp://x"),
        (lambda v: d.credential_field(v), "x" * 4097),
        (lambda v: d.request_id_field(v), "r" * 101),
    ],
)
def test_invalid_fields(fn, value):
    with pytest.raises(InvalidArgument) as caught:
        fn(value)
    assert caught.value.violations


def test_valid_fields_are_normalised():
    assert d.name_field("  Acme ", "n") == "Acme"
    assert d.email_field(" a.b@c.example ") == "a.b@c.example"
    assert d.time_zone_field("") == "UTC"
    assert d.uuid_field("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "id") == (
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    )
    assert d.uuid_field("", "id", required=False) == ""


def test_mask_paths():
    assert d.mask_paths(["name"], frozenset({"name", "email"})) == {"name"}
    for paths in ([], ["name", "bogus"]):
        with pytest.raises(InvalidArgument):
            d.mask_paths(paths, frozenset({"name"}))
