"""Plan and usage use cases. Who may do what is checked here, before any
existence check, so tenants cannot probe each other."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway_common import audit
from gateway_common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens, clamp_page_size
from gateway_common.principal import Principal, Role
from quota_svc import audit_events as ae
from quota_svc import domain
from quota_svc.domain import Clock, NewPlan, Plan, Usage
from quota_svc.ports import UnitOfWorkFactory

PLAN_PATHS = frozenset(
    {
        "name",
        "description",
        "monthly_request_limit",
        "requests_per_minute_limit",
        "monthly_token_limit",
        "allowed_models",
    }
)


def require_admin(principal: Principal) -> None:
    """Platform admins and tenant admins (of any tenant)."""
    if principal.role is Role.USER:
        raise PermissionDenied("only administrators may manage plans", "ADMIN_REQUIRED")


def require_plan_admin(principal: Principal, plan_tenant: str) -> None:
    """Global plans: platform admins; a tenant's plans: its admins too."""
    if plan_tenant:
        principal.require_tenant_admin(plan_tenant)
    else:
        principal.require_platform_admin()


class PlanService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, pages: PageTokens | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._pages = pages or PageTokens.ephemeral()

    async def create(self, principal: Principal, plan: NewPlan, request: RequestKey) -> Plan:
        tenant = domain.optional_uuid(plan.tenant_id, "plan.tenant_id")
        require_plan_admin(principal, tenant)
        domain.validate_plan_fields(plan.name, plan.monthly_request_limit)
        domain.validate_limits(
            plan.requests_per_minute_limit, plan.monthly_token_limit, plan.allowed_models
        )
        request = replace(request, request_id=domain.request_id(request.request_id, required=False))
        rid = request.request_id
        plan = replace(plan, tenant_id=tenant, name=plan.name.strip())
        async with self._uow() as uow:
            # request_id is scoped by the plan's tenant, which the caller administers.
            if rid and (first := await uow.plans.by_request_id(tenant, rid)) is not None:
                request.require_same(first[1])
                return first[0]
            created = await uow.plans.create(plan, request)
            ours = created is not None
            if created is None:  # the same request_id won a race: answer with it
                raced = await uow.plans.by_request_id(tenant, rid)
                if raced is not None:
                    request.require_same(raced[1])
                created = raced[0] if raced else None
            if created is None:
                raise Aborted(
                    "a request with this request_id is in progress", "REQUEST_IN_PROGRESS"
                )
            if ours:  # not a twin's result: that one recorded its own event
                changes = audit.created(ae.plan_fields(created))
                await uow.audit.record(
                    ae.event(principal, "plan", created.plan_id, "created", changes,
                             tenant_id=tenant, request_id=rid)
                )  # fmt: skip
            await uow.commit()
            return created

    async def get(self, principal: Principal, plan_id: str) -> Plan:
        pid = domain.parse_uuid(plan_id, "plan_id")
        require_admin(principal)
        async with self._uow() as uow:
            plan = await uow.plans.get(pid)
        if plan is None:
            raise NotFound("no such plan", "PLAN_NOT_FOUND")
        if plan.tenant_id:
            principal.require_tenant_admin(plan.tenant_id)
        return plan

    async def list(
        self, principal: Principal, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[Plan], str]:
        tenant = domain.optional_uuid(tenant_id, "tenant_id")
        if tenant:
            principal.require_tenant_admin(tenant)
        else:
            require_admin(principal)
        size = clamp_page_size(page_size)
        scope = {"rpc": "ListPlans", "tenant": tenant}
        after = self._pages.decode_position(page_token, scope)
        async with self._uow() as uow:
            plans = await uow.plans.list(tenant, after, size + 1)
        return self._pages.next_page(plans, size, lambda p: (p.create_time, p.plan_id), scope)

    async def update(self, principal: Principal, plan_id: str, changes: dict[str, Any]) -> Plan:
        pid = domain.parse_uuid(plan_id, "plan_id")
        require_admin(principal)
        if not changes:
            raise InvalidArgument.field("update_mask", "name at least one path")
        unknown = set(changes) - PLAN_PATHS
        if unknown:
            raise InvalidArgument.field("update_mask", f"unknown paths: {sorted(unknown)}")
        async with self._uow() as uow:
            plan = await uow.plans.get(pid)
            if plan is None:
                raise NotFound("no such plan", "PLAN_NOT_FOUND")
            require_plan_admin(principal, plan.tenant_id)
            domain.validate_plan_fields(
                changes.get("name", plan.name),
                changes.get("monthly_request_limit", plan.monthly_request_limit),
            )
            domain.validate_limits(
                changes.get("requests_per_minute_limit", plan.requests_per_minute_limit),
                changes.get("monthly_token_limit", plan.monthly_token_limit),
                changes.get("allowed_models", plan.allowed_models),
            )
            updated = await uow.plans.update(pid, changes)
            if updated is None:  # deleted meanwhile
                raise NotFound("no such plan", "PLAN_NOT_FOUND")
            diff = audit.diff(ae.plan_fields(plan), ae.plan_fields(updated))
            await uow.audit.record(
                ae.event(principal, "plan", pid, "updated", diff, tenant_id=plan.tenant_id)
            )
            await uow.commit()
        return updated

    async def delete(self, principal: Principal, plan_id: str) -> None:
        pid = domain.parse_uuid(plan_id, "plan_id")
        require_admin(principal)
        async with self._uow() as uow:
            plan = await uow.plans.get(pid)
            if plan is None:
                raise NotFound("no such plan", "PLAN_NOT_FOUND")
            require_plan_admin(principal, plan.tenant_id)
            if not await uow.plans.delete(pid):  # deleted meanwhile
                raise NotFound("no such plan", "PLAN_NOT_FOUND")
            gone = audit.deleted(ae.plan_fields(plan))
            await uow.audit.record(
                ae.event(principal, "plan", pid, "deleted", gone, tenant_id=plan.tenant_id)
            )
            await uow.commit()


class UsageService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def usage(
        self, principal: Principal, tenant_id: str, user_id: str, at: datetime | None
    ) -> Usage:
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        user = domain.optional_uuid(user_id, "user_id")
        if user:
            principal.require_tenant_member(tenant, user)
        else:
            principal.require_tenant_admin(tenant)
        when = at or self._clock.now()
        async with self._uow() as uow:
            # The zone counting last used for this tenant/user, so usage and
            # counting agree on where the month starts.
            tz = await uow.subscriptions.zone_of(tenant, user)
            if tz is None:
                tz = principal.time_zone if principal.tenant_id == tenant else "UTC"
            period = domain.period_of(when, tz)
            count = await uow.subscriptions.usage(tenant, user, period, when)
        if user and not count.seen:
            raise FailedPrecondition(
                "the user has no subscription in that period", "NO_ACTIVE_SUBSCRIPTION"
            )
        return Usage(
            used=count.used,
            limit=count.limit,
            period=period,
            tokens_used=count.tokens_used,
            token_limit=count.token_limit,
        )
