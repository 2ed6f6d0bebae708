"""Subscription use cases: create, read, list, change plan, end."""

from __future__ import annotations

from datetime import datetime

from gateway_common import audit
from gateway_common.audit import Change
from gateway_common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens, clamp_page_size
from gateway_common.principal import Principal
from quota_svc import audit_events as ae
from quota_svc import domain
from quota_svc.domain import Clock, Plan, Subscription, SubscriptionView
from quota_svc.ports import Members, PlanEvent, SubscriptionDraft, UnitOfWork, UnitOfWorkFactory


def _not_found() -> NotFound:
    return NotFound("no such subscription in this tenant", "SUBSCRIPTION_NOT_FOUND")


class SubscriptionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        members: Members,
        pages: PageTokens | None = None,
    ) -> None:
        self._uow = uow
        self._members = members
        self._clock = clock
        self._pages = pages or PageTokens.ephemeral()

    def view(self, sub: Subscription) -> SubscriptionView:
        """The subscription with its usage in the current period of its zone."""
        period = domain.period_of(self._clock.now(), sub.time_zone)
        return SubscriptionView(sub, period, sub.used_in(period))

    async def _plan_for(self, uow: UnitOfWork, plan_id: str, tenant: str) -> Plan:
        plan = await uow.plans.get(plan_id)
        if plan is None:
            raise NotFound("no such plan", "PLAN_NOT_FOUND")
        if plan.tenant_id and plan.tenant_id != tenant:
            raise PermissionDenied("the plan belongs to another tenant", "PLAN_OF_ANOTHER_TENANT")
        return plan

    async def create(
        self,
        principal: Principal,
        draft: SubscriptionDraft,
        timeout: float = 5.0,
    ) -> SubscriptionView:
        """``timeout``: the caller's remaining time, for identity's membership answer."""
        tenant = domain.parse_uuid(draft.tenant_id, "tenant_id")
        user = domain.parse_uuid(draft.user_id, "user_id")
        plan_id = domain.parse_uuid(draft.plan_id, "plan_id")
        principal.require_tenant_admin(tenant)
        # Identity says whether the user is the tenant's, before any row is read: another
        # tenant's user and an unknown id get the same NOT_FOUND, whatever they subscribe to.
        await self._members.check(tenant, user, timeout)
        rid = domain.request_id(draft.request_id, required=False)
        request = RequestKey(rid, draft.fingerprint)
        now = self._clock.now()
        start = draft.start_time or now
        if draft.end_time is not None and draft.end_time < start:
            raise InvalidArgument.field("end_time", "must not be before start_time")
        tz = principal.time_zone if principal.tenant_id == tenant else "UTC"
        draft = SubscriptionDraft(
            tenant, user, plan_id, start, draft.end_time, rid,
            domain.period_of(now, tz).start, domain.zone(tz).key, draft.fingerprint,
        )  # fmt: skip
        async with self._uow() as uow:
            # request_id is scoped by the tenant the caller administers.
            if rid and (first := await uow.subscriptions.by_request_id(tenant, rid)) is not None:
                request.require_same(first[1])
                return self.view(first[0])
            plan = await self._plan_for(uow, plan_id, tenant)
            created = await uow.subscriptions.create(draft)
            if created is not None:  # ours (a twin's result recorded its own event)
                changes = audit.created(ae.subscription_fields(created, plan))
                await uow.audit.record(
                    ae.event(principal, "subscription", created.subscription_id, "created",
                             changes, tenant_id=tenant, user_id=user, request_id=rid)
                )  # fmt: skip
            if created is None:  # the same request_id won a race: answer with it
                raced = await uow.subscriptions.by_request_id(tenant, rid)
                if raced is not None:
                    request.require_same(raced[1])
                created = raced[0] if raced else None
            if created is None:
                raise Aborted(
                    "a request with this request_id is in progress", "REQUEST_IN_PROGRESS"
                )
            await uow.commit()
        return self.view(created)

    async def get(self, principal: Principal, tenant_id: str, sub_id: str) -> SubscriptionView:
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        sid = domain.parse_uuid(sub_id, "subscription_id")
        if not principal.is_platform_admin and principal.tenant_id != tenant:
            raise PermissionDenied("not allowed for this tenant", "TENANT_ACCESS_DENIED")
        async with self._uow() as uow:
            sub = await uow.subscriptions.get(tenant, sid)
        if sub is None:
            raise _not_found()
        principal.require_tenant_member(tenant, sub.user_id)
        return self.view(sub)

    async def list(
        self,
        principal: Principal,
        tenant_id: str,
        user_id: str,
        active_only: bool,
        page_size: int,
        page_token: str,
    ) -> tuple[list[SubscriptionView], str]:
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        user = domain.optional_uuid(user_id, "user_id")
        principal.require_tenant_admin(tenant)
        size = clamp_page_size(page_size)
        scope = {"rpc": "ListSubscriptions", "t": tenant, "u": user, "a": active_only}
        after = self._pages.decode_position(page_token, scope)
        active_at = self._clock.now() if active_only else None
        async with self._uow() as uow:
            subs = await uow.subscriptions.list(tenant, user, active_at, after, size + 1)
        rows, token = self._pages.next_page(
            subs, size, lambda s: (s.create_time, s.subscription_id), scope
        )
        return [self.view(s) for s in rows], token

    async def change_plan(
        self, principal: Principal, tenant_id: str, sub_id: str, plan_id: str, request: RequestKey
    ) -> SubscriptionView:
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        sid = domain.parse_uuid(sub_id, "subscription_id")
        pid = domain.parse_uuid(plan_id, "plan_id")
        principal.require_tenant_admin(tenant)
        rid = domain.request_id(request.request_id, required=False)
        now = self._clock.now()
        async with self._uow() as uow:
            if rid and (done := await self._replayed(uow, request, tenant, "change_plan")):
                return done
            sub = await uow.subscriptions.get(tenant, sid, lock=True)
            if sub is None:
                raise _not_found()
            if sub.end_time is not None and sub.end_time <= now:
                raise FailedPrecondition("the subscription has ended", "SUBSCRIPTION_ENDED")
            new_plan = await self._plan_for(uow, pid, tenant)
            old_plan = await uow.plans.get(sub.plan_id)
            event = PlanEvent(
                sid, tenant, "change_plan", sub.plan_id, pid, None,
                self.view(sub).used, principal.key_id, rid, request.fingerprint,
            )  # fmt: skip
            if not await uow.subscriptions.log_event(event):
                return await self._raced(uow, request, tenant, "change_plan")
            # Only plano_id changes: the month's count stays with the subscription.
            changed = self.view(await uow.subscriptions.set_plan(sid, pid))
            plans = Change("plan", ae.plan_fields(old_plan, sub.plan_id), ae.plan_fields(new_plan))
            used = Change("requests_used", event.requests_used, event.requests_used)
            await uow.audit.record(
                ae.event(principal, "subscription", sid, "plan_changed", (plans, used),
                         tenant_id=tenant, user_id=sub.user_id, request_id=rid)
            )  # fmt: skip
            await uow.commit()
            return changed

    async def end(
        self,
        principal: Principal,
        tenant_id: str,
        sub_id: str,
        end_time: datetime | None,
        request: RequestKey,
    ) -> SubscriptionView:
        tenant = domain.parse_uuid(tenant_id, "tenant_id")
        sid = domain.parse_uuid(sub_id, "subscription_id")
        principal.require_tenant_admin(tenant)
        rid = domain.request_id(request.request_id, required=False)
        end = end_time or self._clock.now()
        async with self._uow() as uow:
            if rid and (done := await self._replayed(uow, request, tenant, "end")):
                return done
            sub = await uow.subscriptions.get(tenant, sid, lock=True)
            if sub is None:
                raise _not_found()
            if end < sub.start_time:
                raise InvalidArgument.field("end_time", "must not be before start_time")
            event = PlanEvent(
                sid, tenant, "end", sub.plan_id, "", end,
                self.view(sub).used, principal.key_id, rid, request.fingerprint,
            )  # fmt: skip
            if not await uow.subscriptions.log_event(event):
                return await self._raced(uow, request, tenant, "end")
            ended = self.view(await uow.subscriptions.set_end(sid, end))
            changes = (
                Change("end_time", audit.plain(sub.end_time), audit.plain(end)),
                Change("requests_used", event.requests_used, event.requests_used),
            )
            await uow.audit.record(
                ae.event(principal, "subscription", sid, "ended", changes,
                         tenant_id=tenant, user_id=sub.user_id, request_id=rid)
            )  # fmt: skip
            await uow.commit()
            return ended

    async def _replayed(
        self, uow: UnitOfWork, request: RequestKey, tenant: str, kind: str
    ) -> SubscriptionView | None:
        """The subscription as it is now, when this tenant already logged a ``kind`` change
        under the request_id with the same content (REQUEST_ID_REUSED with other content)."""
        logged = await uow.subscriptions.event_subscription(tenant, kind, request.request_id)
        if logged is None:
            return None
        request.require_same(logged[1])
        return await self._current(uow, tenant, logged[0])

    async def _raced(
        self, uow: UnitOfWork, request: RequestKey, tenant: str, kind: str
    ) -> SubscriptionView:
        """A concurrent twin logged the request_id first: answer as its replay."""
        done = await self._replayed(uow, request, tenant, kind)
        if done is None:
            raise Aborted("a request with this request_id is in progress", "REQUEST_IN_PROGRESS")
        return done

    async def _current(self, uow: UnitOfWork, tenant: str, sid: str) -> SubscriptionView:
        sub = await uow.subscriptions.get(tenant, sid)
        if sub is None:
            raise _not_found()
        return self.view(sub)
