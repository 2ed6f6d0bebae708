"""API keys: issue (secret shown once), list, revoke, and Authenticate (the hot path)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from gateway_common import audit
from gateway_common.errors import InvalidArgument, NotFound, Unauthenticated
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens
from gateway_common.principal import Principal, Role
from identity_svc import audit_events as ae
from identity_svc import domain as d
from identity_svc.ports import UnitOfWork, UowFactory
from identity_svc.service import UseCases, page_limit
from identity_svc.service_revocations import RevocationUseCases

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ApiKeyUseCases(UseCases):
    def __init__(
        self,
        uow: UowFactory,
        revocations: RevocationUseCases | None = None,
        clock: Clock = utc_now,
        pages: PageTokens | None = None,
    ) -> None:
        super().__init__(uow, pages)
        self.clock = clock
        self.revocations = revocations or RevocationUseCases(uow)
        # sha256(api key) -> Principal; only verified, usable keys are cached, and only
        # while the revocation feed is fresh (gateway_common.revocation).
        self.feed = self.revocations.feed

    async def authenticate(self, api_key: str) -> Principal:
        if not api_key:
            raise InvalidArgument.field("api_key", "required")
        digest = hashlib.sha256(api_key.encode()).digest()
        cached = self.feed.get(digest)
        if cached is not None:
            return cached
        prefix = d.key_prefix(api_key)
        async with self.uow() as uow:
            stored = await uow.keys.by_prefix(prefix)
        now = self.clock()
        if stored is None or not d.hash_matches(api_key, stored.secret_hash):
            raise Unauthenticated("invalid API key", "INVALID_API_KEY")
        key = stored.key
        if not key.usable_at(now):
            reason = "API_KEY_REVOKED" if key.revoke_time else "API_KEY_EXPIRED"
            raise Unauthenticated("API key revoked or expired", reason)
        principal = Principal(key.role, key.tenant_id, key.user_id, key.key_id, stored.time_zone)
        ttl = None
        if key.expire_time is not None:  # never cache past the key's own expiry
            ttl = (key.expire_time - now).total_seconds()
        return self.feed.admit(digest, principal, ttl)

    async def create(
        self,
        p: Principal,
        draft: d.ApiKey,
        request: RequestKey,
    ) -> tuple[d.ApiKey, str]:
        """The key and its secret ("" on a replay of request_id)."""
        draft = self._validated(draft)
        _authorize_issue(p, draft)
        secret = d.new_secret()

        async def create(uow: UnitOfWork, new_id: str) -> d.ApiKey:
            tenant = await uow.tenants.get(draft.tenant_id) if draft.tenant_id else None
            if draft.tenant_id and tenant is None:
                raise NotFound("tenant not found", "TENANT_NOT_FOUND")
            if draft.user_id and await uow.users.get(draft.tenant_id, draft.user_id) is None:
                raise NotFound("user not found", "USER_NOT_FOUND")
            key = d.ApiKey(**{**draft.__dict__, "key_id": new_id, "prefix": secret.prefix})
            added = await uow.keys.add(key, secret.hash)
            changes = audit.created(ae.key_fields(added))
            await uow.audit.record(
                ae.event(p, "api_key", new_id, "created", changes, tenant_id=added.tenant_id,
                         user_id=added.user_id, request_id=request.request_id)
            )  # fmt: skip
            return added

        async def load(uow: UnitOfWork, key_id: str) -> d.ApiKey | None:
            return await uow.keys.get(key_id)

        key, replayed = await self.once(p, "api_key", request, create, load)
        return key, "" if replayed else secret.secret

    def _validated(self, draft: d.ApiKey) -> d.ApiKey:
        tenant_id = d.uuid_field(draft.tenant_id, "tenant_id", required=False)
        user_id = d.uuid_field(draft.user_id, "user_id", required=False)
        name = d.optional_text(draft.display_name, "display_name", d.NAME_MAX)
        if draft.role is Role.PLATFORM_ADMIN and (tenant_id or user_id):
            raise InvalidArgument.field("tenant_id", "platform admin keys belong to no tenant")
        if draft.role is not Role.PLATFORM_ADMIN and not tenant_id:
            raise InvalidArgument.field("tenant_id", "required for this role")
        if draft.role is Role.USER and not user_id:
            raise InvalidArgument.field("user_id", "required for user keys")
        if draft.role is Role.TENANT_ADMIN and user_id:
            raise InvalidArgument.field("user_id", "only user keys name a user")
        if draft.expire_time is not None and draft.expire_time <= self.clock():
            raise InvalidArgument.field("expire_time", "must be in the future")
        return d.ApiKey(
            key_id="",
            role=draft.role,
            prefix="",
            tenant_id=tenant_id,
            user_id=user_id,
            display_name=name,
            expire_time=draft.expire_time,
        )

    async def list_page(
        self,
        p: Principal,
        tenant_id: str,
        user_id: str,
        include_revoked: bool,
        page: tuple[int, str],
    ) -> d.Page:
        tenant_id = d.uuid_field(tenant_id, "tenant_id", required=False)
        user_id = d.uuid_field(user_id, "user_id", required=False)
        if tenant_id:
            p.require_tenant_admin(tenant_id)
        else:
            p.require_platform_admin()
        limit = page_limit(page[0])
        scope = {"list": "keys", "t": tenant_id, "u": user_id, "r": include_revoked}
        after = self.after(page[1], scope)
        async with self.uow() as uow:
            items = await uow.keys.list(tenant_id, user_id, include_revoked, after, limit + 1)
        return self.page(items, limit, "key_id", scope)

    async def revoke(self, p: Principal, key_id: str) -> d.ApiKey:
        key_id = d.uuid_field(key_id, "key_id")
        async with self.uow() as uow:
            key = await uow.keys.get(key_id)
            if key is None:
                raise NotFound("API key not found", "API_KEY_NOT_FOUND")
            if key.tenant_id:
                p.require_tenant_admin(key.tenant_id)
            else:
                p.require_platform_admin()
            revoked = await uow.keys.revoke(key_id)
            if revoked is None:  # deleted meanwhile (its user or tenant went)
                raise NotFound("API key not found", "API_KEY_NOT_FOUND")
            event = await self.revocations.record(uow, "key", key_id)
            diff = audit.diff(ae.key_fields(key), ae.key_fields(revoked))
            await uow.audit.record(
                ae.event(p, "api_key", key_id, "revoked", diff, tenant_id=key.tenant_id,
                         user_id=key.user_id)
            )  # fmt: skip
            await uow.commit()
        self.revocations.applied(event)
        return revoked

    async def issue_platform_admin_key(self, name: str) -> tuple[d.ApiKey, str]:
        """Bootstrap only (create_admin_key command): no caller to authorize."""
        bootstrap = Principal(Role.PLATFORM_ADMIN, key_id="bootstrap")
        return await self.create(
            bootstrap,
            d.ApiKey(key_id="", role=Role.PLATFORM_ADMIN, prefix="", display_name=name),
            RequestKey("", ""),
        )


def _authorize_issue(p: Principal, draft: d.ApiKey) -> None:
    if draft.role is Role.PLATFORM_ADMIN:
        p.require_platform_admin()
        return
    # Tenant admins issue tenant admin and user keys of their own tenant only.
    p.require_tenant_admin(draft.tenant_id)
