import base64
import os

import pytest

from gateway_common.cache import TtlCache
from identity_svc.config import IdentitySettings
from identity_svc.crypto import DEV_KID, KeyRing, KeyRingError, parse_key_ring


def spec(kid: str, key: bytes) -> str:
    return f"{kid}:{base64.b64encode(key).decode()}"


def test_encrypt_is_authenticated_and_bound_to_its_row():
    ring = KeyRing(parse_key_ring(spec("a", os.urandom(32))))
    stored = ring.encrypt("sk-secret", "ctx-1")
    assert stored.startswith("v1:a:") and "sk-secret" not in stored
    assert ring.encrypt("sk-secret", "ctx-1") != stored  # fresh nonce
    assert ring.decrypt(stored, "ctx-1") == "sk-secret"
    with pytest.raises(KeyRingError):
        ring.decrypt(stored, "ctx-2")  # copied to another (tenant, model)
    tampered = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(KeyRingError):
        ring.decrypt(tampered, "ctx-1")
    assert ring.encrypt("", "ctx") == "" and ring.decrypt("", "ctx") == ""


def test_rotation_ring_decrypts_old_encrypts_new():
    old, new = os.urandom(32), os.urandom(32)
    stored = KeyRing([("old", old)]).encrypt("v", "c")
    ring = KeyRing(parse_key_ring(f"{spec('new', new)},{spec('old', old)}"))
    assert ring.decrypt(stored, "c") == "v" and ring.needs_rotation(stored)
    assert ring.encrypt("v", "c").startswith("v1:new:")
    with pytest.raises(KeyRingError):
        KeyRing([("new", new)]).decrypt(stored, "c")


@pytest.mark.parametrize(
    "bad",
    [
        "nokid",
        "a:!!!",
        "a:" + base64.b64encode(b"short").decode(),
        "bad kid:" + base64.b64encode(os.urandom(32)).decode(),
    ],
)
def test_bad_key_ring_specs(bad):
    with pytest.raises(KeyRingError):
        parse_key_ring(bad)


def test_dev_key_only_when_allowed():
    assert KeyRing.from_settings("", allow_dev_key=True).active_kid == DEV_KID
    with pytest.raises(KeyRingError):
        KeyRing.from_settings("", allow_dev_key=False)
    assert IdentitySettings(host="127.0.0.1").dev_key_allowed()
    assert not IdentitySettings(host="0.0.0.0").dev_key_allowed()
    assert not IdentitySettings(host="127.0.0.1", allow_dev_key=False).dev_key_allowed()


def test_ttl_cache_expires_and_is_bounded():
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(2.0, 3, clock=lambda: now[0])
    for i in range(5):
        cache.put(str(i), i)
    assert len(cache) == 3 and cache.get("0") is None and cache.get("4") == 4
    cache.put("short", 1, ttl=0.5)
    now[0] = 1.0
    assert cache.get("short") is None and cache.get("4") == 4
    now[0] = 2.5
    assert cache.get("4") is None
    cache.put("x", 1)
    cache.drop_if(lambda v: v == 1)
    assert cache.get("x") is None
