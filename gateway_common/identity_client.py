"""The shared client of identity's Authenticate, used by quota, history and llm.

Answers are cached briefly (``ttl`` seconds, bounded size) and forgotten when identity's
revocation feed (the internal ListRevocations, polled in the background) names their key,
user or tenant: a revoked key or a deleted user or tenant stops working within the
revocation bound (gateway_common.revocation); while the feed fails longer than that,
every call asks identity.
"""

from __future__ import annotations

import hashlib
from typing import Any

import grpc

from gateway_common import channels
from gateway_common.auth import bearer_token
from gateway_common.cache import TtlCache
from gateway_common.channels import call_metadata, remaining
from gateway_common.client_errors import translate
from gateway_common.errors import Unauthenticated
from gateway_common.principal import Principal, Role
from gateway_common.revocation import DEFAULT_TIMING, FeedTiming, Revocation, RevocationFeed
from gateway_common.settings import ServiceSettings
from llmgw.identity.v1 import identity_pb2, identity_pb2_grpc

IDEMPOTENT = (
    ("llmgw.identity.v1.IdentityService", "Authenticate"),
    ("llmgw.identity.v1.IdentityInternalService", "ListRevocations"),
)
POLL_TIMEOUT = 2.0

REVOCATION_KINDS = {
    identity_pb2.REVOCATION_KIND_KEY: "key",
    identity_pb2.REVOCATION_KIND_USER: "user",
    identity_pb2.REVOCATION_KIND_TENANT: "tenant",
}

_ROLES = {
    identity_pb2.ROLE_PLATFORM_ADMIN: Role.PLATFORM_ADMIN,
    identity_pb2.ROLE_TENANT_ADMIN: Role.TENANT_ADMIN,
    identity_pb2.ROLE_USER: Role.USER,
}


class Authenticator:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        service_token: str,
        ttl: float = 2.0,
        max_entries: int = 10_000,
        timing: FeedTiming = DEFAULT_TIMING,
    ) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(channel)
        self._internal = identity_pb2_grpc.IdentityInternalServiceStub(channel)
        self._token = service_token  # presented to ListRevocations
        self.feed = RevocationFeed(self._revocations, TtlCache(ttl, max_entries), timing)

    async def authenticate(self, api_key: str, timeout: float = 5.0) -> Principal:
        digest = hashlib.sha256(api_key.encode()).digest()
        hit = self.feed.get(digest)
        if hit is not None:
            return hit
        return self.feed.admit(digest, await self._call(api_key, timeout))

    async def close(self) -> None:
        """Stops the feed's polling (before the channel closes)."""
        await self.feed.close()

    async def _revocations(self, after: int, limit: int) -> list[Revocation]:
        reply = await self._internal.ListRevocations(
            identity_pb2.ListRevocationsRequest(after_sequence=after, page_size=limit),
            timeout=POLL_TIMEOUT,
            metadata=call_metadata(service_token=self._token),
        )
        return [
            Revocation(r.sequence, REVOCATION_KINDS[r.kind], r.target_id)
            for r in reply.revocations
            if r.kind in REVOCATION_KINDS
        ]

    async def authenticate_call(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        """The principal of an incoming call's ``authorization: Bearer <key>``, asked within
        the caller's remaining deadline (5 s at most)."""
        api_key = bearer_token(context.invocation_metadata())
        return await self.authenticate(api_key, timeout=remaining(context, 5.0))

    async def _call(self, api_key: str, timeout: float) -> Principal:
        try:
            reply = await self._stub.Authenticate(
                identity_pb2.AuthenticateRequest(api_key=api_key),
                timeout=timeout,
                metadata=call_metadata(),
            )
        except grpc.aio.AioRpcError as err:
            raise translate(err, "identity") from None
        p = reply.principal
        role = _ROLES.get(p.role)
        if role is None:
            raise Unauthenticated("key has no usable role", "INVALID_ROLE")
        return Principal(
            role=role,
            tenant_id=p.tenant_id,
            user_id=p.user_id,
            key_id=p.key_id,
            time_zone=p.tenant_time_zone or "UTC",
        )


def connect(
    settings: ServiceSettings, target: str, ttl: float
) -> tuple[Authenticator, grpc.aio.Channel]:
    """The authenticator every service but identity builds, on its own channel (to close)."""
    channel = channels.open_channel(target, settings, IDEMPOTENT)
    timing = settings.revocation_timing()
    return Authenticator(channel, settings.service_credential(), ttl=ttl, timing=timing), channel
