"""Encryption at rest of provider credentials (implantacao_llm.chave_api).

AES-256-GCM with a key ring: the first key encrypts, every key decrypts. A stored
value is ``v1:<kid>:<base64url(nonce || ciphertext+tag)>``; the associated data binds it
to its (tenant, model), so a value copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("identity.crypto")

VERSION = "v1"
NONCE_BYTES = 12
DEV_KID = "dev"
# Public, hence worthless: only for local development (see README, "Encryption").
DEV_KEY = hashlib.sha256(b"llmgw identity development key - not a secret").digest()
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyRingError(ValueError):
    """The key ring configuration is unusable, or a value cannot be decrypted."""


def parse_key_ring(spec: str) -> list[tuple[str, bytes]]:
    """``"kid1:base64key,kid2:base64key"`` -> [(kid, key)], first = active."""
    ring: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, b64 = item.partition(":")
        if not sep or not _KID_RE.match(kid):
            raise KeyRingError("each key is 'kid:base64key' with kid of [A-Za-z0-9_-]")
        try:
            key = base64.b64decode(b64 + "=" * (-len(b64) % 4), altchars=b"-_", validate=False)
        except (binascii.Error, ValueError):
            raise KeyRingError(f"key {kid}: not base64") from None
        if len(key) not in (16, 24, 32):
            raise KeyRingError(f"key {kid}: must be 16, 24 or 32 bytes")
        if any(kid == k for k, _ in ring):
            raise KeyRingError(f"key {kid}: duplicate kid")
        ring.append((kid, key))
    return ring


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyRingError("no encryption key configured (IDENTITY_ENCRYPTION_KEYS)")
        self.active_kid = keys[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def from_settings(cls, spec: str, *, allow_dev_key: bool) -> KeyRing:
        keys = parse_key_ring(spec)
        if not keys:
            if not allow_dev_key:
                raise KeyRingError(
                    "IDENTITY_ENCRYPTION_KEYS is empty and the development key is not allowed"
                )
            log.warning("using the public development encryption key: not for production")
            keys = [(DEV_KID, DEV_KEY)]
        return cls(keys)

    def encrypt(self, plaintext: str, context: str) -> str:
        if not plaintext:
            return ""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active_kid].encrypt(nonce, plaintext.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{VERSION}:{self.active_kid}:{body}"

    def decrypt(self, stored: str, context: str) -> str:
        if not stored:
            return ""
        version, kid = self.kid_of(stored)
        cipher = self._ciphers.get(kid)
        if version != VERSION or cipher is None:
            raise KeyRingError(f"no key {kid!r} in the ring for a stored credential")
        raw = base64.urlsafe_b64decode(stored.split(":", 2)[2].encode())
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except InvalidTag:
            raise KeyRingError("stored credential failed authentication") from None

    @staticmethod
    def kid_of(stored: str) -> tuple[str, str]:
        parts = stored.split(":", 2)
        if len(parts) != 3:
            raise KeyRingError("stored credential has an unknown format")
        return parts[0], parts[1]

    def needs_rotation(self, stored: str) -> bool:
        return bool(stored) and self.kid_of(stored)[1] != self.active_kid


def credential_context(tenant_id: str, model_id: str) -> str:
    """The associated data binding a credential to its row's tenant and model."""
    return f"configuracao_llm:{tenant_id}:{model_id}"
