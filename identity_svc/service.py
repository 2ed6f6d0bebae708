"""Use cases for tenants and users, and the helpers every identity use case shares:
idempotent creation on request_id, keyset pages, field-mask updates."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway_common import audit
from gateway_common.errors import Aborted, FailedPrecondition, NotFound
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens, clamp_page_size
from gateway_common.principal import Principal
from identity_svc import audit_events as ae
from identity_svc import domain as d
from identity_svc.ports import DuplicateRequest, TimeKey, UnitOfWork, UowFactory
from identity_svc.service_revocations import RevocationUseCases

T = TypeVar("T")

TENANT_PATHS = frozenset({"name", "contact", "time_zone"})
USER_PATHS = frozenset({"name", "email"})


class UseCases:
    def __init__(self, uow: UowFactory, pages: PageTokens | None = None) -> None:
        self.uow = uow
        self.pages = pages or PageTokens.ephemeral()

    def after(self, token: str, scope: dict[str, Any]) -> TimeKey | None:
        """The (create_time, id) position a page token continues after."""
        return self.pages.decode_position(token, scope)

    def page(self, items: list[Any], limit: int, id_attr: str, scope: dict[str, Any]) -> d.Page:
        """A page ordered by (create_time, id): ``items`` holds up to limit + 1 rows."""
        rows, token = self.pages.next_page(
            items, limit, lambda i: (i.create_time, getattr(i, id_attr)), scope
        )
        return d.Page(rows, token)

    async def once(
        self,
        principal: Principal,
        kind: str,
        request: RequestKey,
        create: Callable[[UnitOfWork, str], Awaitable[T]],
        load: Callable[[UnitOfWork, str], Awaitable[T | None]],
    ) -> tuple[T, bool]:
        """Run ``create`` once per (caller's tenant, kind, request_id); a replay of the
        same content returns ``load`` of the first result and True, other content under
        the same id is REQUEST_ID_REUSED."""
        rid = d.request_id_field(request.request_id)
        scope = principal.tenant_id or "platform"
        new_id = str(uuid.uuid4())
        for _ in range(2):  # a concurrent twin may commit first: then read its result
            try:
                async with self.uow() as uow:
                    if rid:
                        found = await uow.requests.find(scope, kind, rid)
                        if found is not None:
                            request.require_same(found[1])
                            return await _replayed(uow, found[0], load), True
                        await uow.requests.add(scope, kind, rid, new_id, request.fingerprint)
                    result = await create(uow, new_id)
                    await uow.commit()
                    return result, False
            except DuplicateRequest:
                continue
        raise Aborted("a request with this request_id is in progress", "REQUEST_IN_PROGRESS")


class EndingUseCases(UseCases):
    """Use cases whose deletions end principals: they record a revocation event."""

    def __init__(
        self,
        uow: UowFactory,
        pages: PageTokens | None = None,
        revocations: RevocationUseCases | None = None,
    ) -> None:
        super().__init__(uow, pages)
        self.revocations = revocations or RevocationUseCases(uow)


async def _replayed(
    uow: UnitOfWork, resource_id: str, load: Callable[[UnitOfWork, str], Awaitable[T | None]]
) -> T:
    result = await load(uow, resource_id)
    if result is None:
        raise NotFound("the resource created by this request_id is gone", "RESOURCE_GONE")
    return result


def page_limit(page_size: int) -> int:
    return clamp_page_size(page_size)


class TenantUseCases(EndingUseCases):
    async def create(
        self, p: Principal, name: str, contact: str, time_zone: str, request: RequestKey
    ) -> d.Tenant:
        p.require_platform_admin()
        tenant = d.Tenant(
            tenant_id="",
            name=d.name_field(name, "tenant.name"),
            contact=d.optional_text(contact, "tenant.contact", d.CONTACT_MAX),
            time_zone=d.time_zone_field(time_zone, "tenant.time_zone"),
        )

        async def create(uow: UnitOfWork, new_id: str) -> d.Tenant:
            added = await uow.tenants.add(_with(tenant, tenant_id=new_id))
            changes = audit.created(ae.tenant_fields(added))
            await uow.audit.record(
                ae.event(p, "tenant", new_id, "created", changes, tenant_id=new_id,
                         request_id=request.request_id)
            )  # fmt: skip
            return added

        async def load(uow: UnitOfWork, tenant_id: str) -> d.Tenant | None:
            return await uow.tenants.get(tenant_id)

        return (await self.once(p, "tenant", request, create, load))[0]

    async def get(self, p: Principal, tenant_id: str) -> d.Tenant:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        p.require_tenant_member(tenant_id, p.user_id)
        async with self.uow() as uow:
            return _found(await uow.tenants.get(tenant_id), "tenant")

    async def list_page(self, p: Principal, page_size: int, page_token: str) -> d.Page:
        p.require_platform_admin()
        limit, scope = page_limit(page_size), {"list": "tenants"}
        after = self.after(page_token, scope)
        async with self.uow() as uow:
            items = await uow.tenants.list(after, limit + 1)
        return self.page(items, limit, "tenant_id", scope)

    async def update(
        self, p: Principal, tenant_id: str, values: dict[str, str], paths: list[str]
    ) -> d.Tenant:
        tenant_id = d.uuid_field(tenant_id, "tenant.tenant_id")
        mask = d.mask_paths(paths, TENANT_PATHS)
        p.require_tenant_admin(tenant_id)
        checks: dict[str, Callable[[str], str]] = {
            "name": lambda v: d.name_field(v, "tenant.name"),
            "contact": lambda v: d.optional_text(v, "tenant.contact", d.CONTACT_MAX),
            "time_zone": lambda v: d.time_zone_field(v, "tenant.time_zone"),
        }
        changes = {path: checks[path](values.get(path, "")) for path in mask}
        async with self.uow() as uow:
            before = _found(await uow.tenants.get(tenant_id), "tenant")
            tenant = _found(await uow.tenants.update(tenant_id, changes), "tenant")
            diff = audit.diff(ae.tenant_fields(before), ae.tenant_fields(tenant))
            await uow.audit.record(
                ae.event(p, "tenant", tenant_id, "updated", diff, tenant_id=tenant_id)
            )
            await uow.commit()
        return tenant

    async def delete(self, p: Principal, tenant_id: str, cascade: bool) -> None:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        p.require_platform_admin()
        async with self.uow() as uow:
            before = _found(await uow.tenants.get(tenant_id), "tenant")
            if not cascade and await uow.tenants.has_users(tenant_id):
                raise FailedPrecondition(
                    "the tenant still has users: delete them or set cascade", "TENANT_HAS_USERS"
                )
            _found(await uow.tenants.delete(tenant_id) or None, "tenant")  # deleted meanwhile
            event = await self.revocations.record(uow, "tenant", tenant_id)
            gone = audit.deleted(ae.tenant_fields(before))
            await uow.audit.record(
                ae.event(p, "tenant", tenant_id, "deleted", gone, tenant_id=tenant_id)
            )
            await uow.commit()
        self.revocations.applied(event)


class UserUseCases(EndingUseCases):
    async def create(
        self, p: Principal, tenant_id: str, name: str, email: str, request: RequestKey
    ) -> d.User:
        tenant_id = d.uuid_field(tenant_id, "user.tenant_id")
        user = d.User(
            user_id="",
            tenant_id=tenant_id,
            name=d.name_field(name, "user.name"),
            email=d.email_field(email, "user.email"),
        )
        p.require_tenant_admin(tenant_id)

        async def create(uow: UnitOfWork, new_id: str) -> d.User:
            _found(await uow.tenants.get(tenant_id), "tenant")
            added = await uow.users.add(_with(user, user_id=new_id))
            changes = audit.created(ae.user_fields(added), ae.USER_PERSONAL)
            await uow.audit.record(
                ae.event(p, "user", new_id, "created", changes, tenant_id=tenant_id,
                         user_id=new_id, request_id=request.request_id)
            )  # fmt: skip
            return added

        async def load(uow: UnitOfWork, user_id: str) -> d.User | None:
            return await uow.users.get(tenant_id, user_id)

        return (await self.once(p, "user", request, create, load))[0]

    async def get(self, p: Principal, tenant_id: str, user_id: str) -> d.User:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        user_id = d.uuid_field(user_id, "user_id")
        p.require_tenant_member(tenant_id, user_id)
        async with self.uow() as uow:
            return _found(await uow.users.get(tenant_id, user_id), "user")

    async def check_membership(self, tenant_id: str, user_id: str) -> None:
        """For an internal caller: NOT_FOUND unless the user belongs to the tenant, the same
        answer for another tenant's user as for no user at all (nothing to probe)."""
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        user_id = d.uuid_field(user_id, "user_id")
        async with self.uow() as uow:
            if await uow.users.get(tenant_id, user_id) is None:
                raise NotFound("no such user in this tenant", "USER_NOT_FOUND")

    async def list_page(
        self, p: Principal, tenant_id: str, page_size: int, page_token: str
    ) -> d.Page:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        p.require_tenant_admin(tenant_id)
        limit, scope = page_limit(page_size), {"list": "users", "tenant": tenant_id}
        after = self.after(page_token, scope)
        async with self.uow() as uow:
            items = await uow.users.list(tenant_id, after, limit + 1)
        return self.page(items, limit, "user_id", scope)

    async def update(
        self, p: Principal, tenant_id: str, user_id: str, values: dict[str, str], paths: list[str]
    ) -> d.User:
        tenant_id = d.uuid_field(tenant_id, "user.tenant_id")
        user_id = d.uuid_field(user_id, "user.user_id")
        mask = d.mask_paths(paths, USER_PATHS)
        p.require_tenant_admin(tenant_id)
        changes: dict[str, Any] = {}
        if "name" in mask:
            changes["name"] = d.name_field(values.get("name", ""), "user.name")
        if "email" in mask:
            changes["email"] = d.email_field(values.get("email", ""), "user.email")
        async with self.uow() as uow:
            before = _found(await uow.users.get(tenant_id, user_id), "user")
            user = _found(await uow.users.update(tenant_id, user_id, changes), "user")
            diff = audit.diff(ae.user_fields(before), ae.user_fields(user), ae.USER_PERSONAL)
            await uow.audit.record(
                ae.event(p, "user", user_id, "updated", diff, tenant_id=tenant_id, user_id=user_id)
            )
            await uow.commit()
        return user

    async def delete(self, p: Principal, tenant_id: str, user_id: str) -> None:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        user_id = d.uuid_field(user_id, "user_id")
        p.require_tenant_admin(tenant_id)
        async with self.uow() as uow:
            before = await uow.users.get(tenant_id, user_id)
            # The user's keys go with it (ON DELETE CASCADE): refused from now on.
            if before is None or not await uow.users.delete(tenant_id, user_id):
                raise NotFound("user not found", "USER_NOT_FOUND")
            event = await self.revocations.record(uow, "user", user_id)
            # A deleted user's personal data leaves the trail with it (history clears the
            # user's earlier events on this one): ids only.
            gone = audit.forgotten(audit.deleted(ae.user_fields(before), ae.USER_PERSONAL))
            await uow.audit.record(
                ae.event(p, "user", user_id, "deleted", gone, tenant_id=tenant_id, user_id=user_id)
            )
            await uow.commit()
        self.revocations.applied(event)


def _found(item: T | None, what: str) -> T:
    if item is None:
        raise NotFound(f"{what} not found", f"{what.upper().replace(' ', '_')}_NOT_FOUND")
    return item


def _with(item: T, **changes: Any) -> T:
    from dataclasses import replace

    return replace(item, **changes)  # type: ignore[type-var]
