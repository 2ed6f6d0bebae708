"""Who is calling an internal RPC, and whether it may.

Each service presents its own credential (``x-service-token``, env ``GATEWAY_SERVICE_TOKEN``).
A receiver holds its accepted callers as ``name -> SHA-256 digest``
(``GATEWAY_ACCEPTED_SERVICE_TOKENS="llm=<hex>,quota=<hex>"``): digests, so a service that checks a
caller's credential cannot present it. Each internal RPC names the callers it allows
(:func:`allow`, declared on the servicer's method): an unknown or missing credential is
UNAUTHENTICATED, a known caller outside the RPC's list is PERMISSION_DENIED.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import grpc

from gateway_common.auth import Metadata, metadata_value
from gateway_common.errors import PermissionDenied, Unauthenticated

SERVICE_TOKEN = "x-service-token"
# The reasons of a refused service credential: for the calling service a deployment fault.
REFUSED_CREDENTIAL = frozenset({"INTERNAL_ONLY", "CALLER_NOT_ALLOWED"})
# The suite's services, by the names callers are known by.
SERVICES = ("identity", "quota", "history", "llm")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest(token: str) -> str:
    """The hex SHA-256 a receiver stores for a caller's token."""
    return hashlib.sha256(token.encode()).hexdigest()


def dev_token(service: str) -> str:
    """The public development credential of a service: loopback listeners only."""
    return f"dev-service-token-{service}"


def dev_accepted() -> str:
    """Every service's development credential, accepted by default on a local run."""
    return ",".join(f"{s}={digest(dev_token(s))}" for s in SERVICES)


def parse_accepted(value: str) -> dict[bytes, str]:
    """``"llm=<hex>,quota=<hex>"`` -> {digest: name}; ValueError names a malformed entry.
    A name may appear twice (its old and new token while it rotates); a digest may not."""
    accepted: dict[bytes, str] = {}
    for n, entry in enumerate(filter(None, (e.strip() for e in value.split(","))), 1):
        name, _, hexdigest = (p.strip() for p in entry.partition("="))
        if not _NAME.match(name) or not _DIGEST.match(hexdigest.lower()):
            # never echo the entry: a token pasted here by mistake must not reach a log
            raise ValueError(
                f"GATEWAY_ACCEPTED_SERVICE_TOKENS: entry {n} is not name=<sha256 hex of a token>"
            )
        known = accepted.setdefault(bytes.fromhex(hexdigest), name)
        if known != name:
            raise ValueError(
                f"GATEWAY_ACCEPTED_SERVICE_TOKENS: {name!r} and {known!r} share a token"
            )
    return accepted


class Callers:
    """The services allowed to call this one, known by the digest of their credential."""

    def __init__(self, accepted: Mapping[bytes, str]) -> None:
        self._accepted = dict(accepted)

    @classmethod
    def parse(cls, value: str) -> Callers:
        return cls(parse_accepted(value))

    def identify(self, metadata: Metadata | None) -> str:
        """The caller's name; UNAUTHENTICATED when its credential is missing or unknown."""
        given = metadata_value(metadata, SERVICE_TOKEN)
        found = ""
        if given:
            presented = hashlib.sha256(given.encode()).digest()
            for expected, name in self._accepted.items():  # every entry: no early exit
                if hmac.compare_digest(presented, expected):
                    found = name
        if not found:
            raise Unauthenticated(
                "this RPC is internal: a valid service credential is required", "INTERNAL_ONLY"
            )
        return found

    def require(self, metadata: Metadata | None, rpc: str, allowed: frozenset[str]) -> str:
        """The caller's name when ``rpc`` allows it; PERMISSION_DENIED for another service."""
        caller = self.identify(metadata)
        if caller not in allowed:
            raise PermissionDenied(
                f"service {caller!r} may not call {rpc}",
                "CALLER_NOT_ALLOWED",
                {"caller": caller, "rpc": rpc},
            )
        return caller


class InternalServicer(Protocol):
    """A servicer of internal RPCs: it holds the callers it accepts."""

    callers: Callers


S = TypeVar("S", bound=InternalServicer)
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Ctx = grpc.aio.ServicerContext[Any, Any]


def allow(
    *names: str,
) -> Callable[[Callable[[S, Req, Ctx], Awaitable[Resp]]], Callable[[S, Req, Ctx], Awaitable[Resp]]]:
    """Declare the only callers of an internal RPC; checked before the handler runs."""
    allowed = frozenset(names)
    unknown = allowed - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown caller names {sorted(unknown)}")

    def wrap(
        method: Callable[[S, Req, Ctx], Awaitable[Resp]],
    ) -> Callable[[S, Req, Ctx], Awaitable[Resp]]:
        @functools.wraps(method)
        async def checked(self: S, request: Req, context: Ctx) -> Resp:
            self.callers.require(context.invocation_metadata(), method.__name__, allowed)
            return await method(self, request, context)

        checked.allowed_callers = allowed  # type: ignore[attr-defined]
        return checked

    return wrap
