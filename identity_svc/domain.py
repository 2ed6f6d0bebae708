"""identity's entities, their invariants and the API-key format. Standard library only."""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway_common.errors import InvalidArgument, Unauthenticated
from gateway_common.principal import Role

NAME_MAX = 200
CONTACT_MAX = 200
EMAIL_MAX = 254
PROVIDER_MAX = 100
DESCRIPTION_MAX = 4000
REQUEST_ID_MAX = 100
CREDENTIAL_MAX_BYTES = 4096
EXTRA_PARAMETERS_MAX_BYTES = 16 * 1024
URL_MAX = 2048

KEY_SCHEME = "llmgw"
PREFIX_LEN = 10
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_RE = re.compile(rf"^[a-z0-9]{{{PREFIX_LEN}}}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


class AccessType(enum.Enum):
    CLOUD = "cloud"
    ON_PREMISE = "on-premise"


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    contact: str = ""
    time_zone: str = "UTC"
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class User:
    user_id: str
    tenant_id: str
    name: str
    email: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: Role
    prefix: str
    tenant_id: str = ""
    user_id: str = ""
    display_name: str = ""
    create_time: datetime | None = None
    expire_time: datetime | None = None
    revoke_time: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        if self.revoke_time is not None:
            return False
        return self.expire_time is None or self.expire_time > now


@dataclass(frozen=True)
class StoredKey:
    """A key row as authentication needs it: the key, its hash and the tenant's zone."""

    key: ApiKey
    secret_hash: bytes
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Model:
    model_id: str
    name: str
    provider: str
    access_type: AccessType
    tenant_id: str = ""  # empty: global
    description: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None
    # Per million tokens, in nanos of the platform currency; None: no price.
    input_price_nanos_per_million: int | None = None
    output_price_nanos_per_million: int | None = None


@dataclass(frozen=True)
class ModelConfig:
    """A tenant's configuration of a model: the per-model settings. Where the calls go is
    its deployments (:class:`Deployment`)."""

    config_id: str
    tenant_id: str
    model_id: str
    token_limit: int | None = None
    extra_parameters: dict[str, Any] = field(default_factory=dict)
    # Request parameters outside the chat schema llm_svc lets through (sorted, unique).
    allowed_extra_parameters: tuple[str, ...] = ()
    # The tenant's other models to try, in order, when every deployment fails retryably.
    fallback_models: tuple[str, ...] = ()
    fallback_on_context_length: bool = False  # a context-length refusal falls back too
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class Deployment:
    """One provider deployment of a configuration. ``credential`` is the *encrypted*
    value; ``upstream_model`` empty means the model's own name."""

    deployment_id: str
    tenant_id: str
    config_id: str
    base_url: str = ""
    credential: str = ""
    upstream_model: str = ""
    priority: int = 0  # lowest first
    weight: int = 1  # share among deployments of equal priority
    attempt_timeout_ms: int | None = None  # None: the caller's deadline only
    create_time: datetime | None = None
    update_time: datetime | None = None

    @property
    def has_credential(self) -> bool:
        return bool(self.credential)


@dataclass(frozen=True)
class ResolvedDeployment:
    deployment: Deployment
    credential: str  # decrypted: never log


@dataclass(frozen=True)
class ResolvedModel:
    model: Model
    config: ModelConfig
    deployments: tuple[ResolvedDeployment, ...]  # by priority, then age


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_page_token: str = ""


# --- API keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSecret:
    prefix: str
    secret: str  # the whole key as shown once to its owner

    @property
    def hash(self) -> bytes:
        return hash_key(self.secret)


def new_secret() -> NewSecret:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LEN))
    return NewSecret(prefix, f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}")


def hash_key(api_key: str) -> bytes:
    # The secret has 256 bits of entropy: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(api_key.encode()).digest()


def key_prefix(api_key: str) -> str:
    """The lookup prefix of a well-formed key; UNAUTHENTICATED otherwise."""
    scheme, _, rest = api_key.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not _PREFIX_RE.match(prefix) or len(secret) < 32:
        raise Unauthenticated("invalid API key", "INVALID_API_KEY")
    return prefix


def hash_matches(api_key: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_key(api_key), stored)


# --- validation -------------------------------------------------------------------------


def uuid_field(value: str, name: str, *, required: bool = True) -> str:
    """Canonical form of a UUID field; empty allowed when not required."""
    if not value:
        if required:
            raise InvalidArgument.field(name, "required")
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument.field(name, "must be a UUID") from None


def name_field(value: str, name: str, maximum: int = NAME_MAX) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument.field(name, "must not be empty")
    if len(value) > maximum:
        raise InvalidArgument.field(name, f"at most {maximum} characters")
    return value


def optional_text(value: str, name: str, maximum: int) -> str:
    value = value.strip()
    if len(value) > maximum:
        raise InvalidArgument.field(name, f"at most {maximum} characters")
    return value


def email_field(value: str, name: str = "email") -> str:
    value = value.strip()
    if not value:
        return ""
    if len(value) > EMAIL_MAX or not _EMAIL_RE.match(value):
        raise InvalidArgument.field(name, "not a well-formed e-mail address")
    return value


def time_zone_field(value: str, name: str = "time_zone") -> str:
    value = value.strip()
    if not value:
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument.field(name, "not an IANA time zone name") from None
    return value


def request_id_field(value: str) -> str:
    if len(value) > REQUEST_ID_MAX:
        raise InvalidArgument.field("request_id", f"at most {REQUEST_ID_MAX} characters")
    return value


def url_field(value: str, name: str = "base_url") -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if len(value) > URL_MAX or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument.field(name, "must be an http(s) URL")
    return value


def credential_field(value: str, name: str = "credential") -> str:
    if len(value.encode()) > CREDENTIAL_MAX_BYTES:
        raise InvalidArgument.field(name, f"at most {CREDENTIAL_MAX_BYTES} bytes")
    return value


def token_limit_field(value: int | None, name: str = "token_limit") -> int | None:
    if value is not None and value <= 0:
        raise InvalidArgument.field(name, "must be positive")
    return value


def mask_paths(paths: list[str], allowed: frozenset[str]) -> frozenset[str]:
    if not paths:
        raise InvalidArgument.field("update_mask", "name at least one field to change")
    unknown = sorted(set(paths) - allowed)
    if unknown:
        raise InvalidArgument.field("update_mask", f"unknown paths: {', '.join(unknown)}")
    return frozenset(paths)
