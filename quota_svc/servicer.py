"""gRPC servicers of quota: thin (credential -> one use case -> proto)."""

from __future__ import annotations

from typing import Any

import grpc

from gateway_common.channels import remaining
from gateway_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)
from gateway_common.idempotency import fingerprint, request_key
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal
from gateway_common.protoconv import from_timestamp
from gateway_common.service_auth import Callers, allow
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from quota_svc import mapping
from quota_svc.counting import CountingService
from quota_svc.deliveries import DeliveryService
from quota_svc.metrics import REFUSALS
from quota_svc.ports import SubscriptionDraft
from quota_svc.service import PlanService, UsageService
from quota_svc.service_subscriptions import SubscriptionService

Ctx = grpc.aio.ServicerContext[Any, Any]


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    def __init__(
        self,
        authenticator: Authenticator,
        plans: PlanService,
        subscriptions: SubscriptionService,
        usage: UsageService,
        deliveries: DeliveryService,
    ) -> None:
        self._auth = authenticator
        self._deliveries = deliveries
        self._plans = plans
        self._subs = subscriptions
        self._usage = usage

    async def _principal(self, context: Ctx) -> Principal:
        return await self._auth.authenticate_call(context)

    async def CreatePlan(
        self, request: quota_pb2.CreatePlanRequest, context: Ctx
    ) -> quota_pb2.CreatePlanResponse:
        who = await self._principal(context)
        plan = await self._plans.create(who, mapping.new_plan(request.plan), request_key(request))
        return quota_pb2.CreatePlanResponse(plan=mapping.plan(plan))

    async def GetPlan(
        self, request: quota_pb2.GetPlanRequest, context: Ctx
    ) -> quota_pb2.GetPlanResponse:
        who = await self._principal(context)
        plan = await self._plans.get(who, request.plan_id)
        return quota_pb2.GetPlanResponse(plan=mapping.plan(plan))

    async def ListPlans(
        self, request: quota_pb2.ListPlansRequest, context: Ctx
    ) -> quota_pb2.ListPlansResponse:
        who = await self._principal(context)
        plans, token = await self._plans.list(
            who, request.tenant_id, request.page_size, request.page_token
        )
        return quota_pb2.ListPlansResponse(
            plans=[mapping.plan(p) for p in plans], next_page_token=token
        )

    async def UpdatePlan(
        self, request: quota_pb2.UpdatePlanRequest, context: Ctx
    ) -> quota_pb2.UpdatePlanResponse:
        who = await self._principal(context)
        changes = mapping.plan_changes(request.plan, list(request.update_mask.paths))
        plan = await self._plans.update(who, request.plan.plan_id, changes)
        return quota_pb2.UpdatePlanResponse(plan=mapping.plan(plan))

    async def DeletePlan(
        self, request: quota_pb2.DeletePlanRequest, context: Ctx
    ) -> quota_pb2.DeletePlanResponse:
        who = await self._principal(context)
        await self._plans.delete(who, request.plan_id)
        return quota_pb2.DeletePlanResponse()

    async def CreateSubscription(
        self, request: quota_pb2.CreateSubscriptionRequest, context: Ctx
    ) -> quota_pb2.CreateSubscriptionResponse:
        who = await self._principal(context)
        draft = SubscriptionDraft(
            tenant_id=request.tenant_id,
            user_id=request.user_id,
            plan_id=request.plan_id,
            start_time=from_timestamp(request, "start_time"),
            end_time=from_timestamp(request, "end_time"),
            request_id=request.request_id,
            fingerprint=fingerprint(request),
        )
        view = await self._subs.create(who, draft, remaining(context, 5.0))
        return quota_pb2.CreateSubscriptionResponse(subscription=mapping.subscription(view))

    async def GetSubscription(
        self, request: quota_pb2.GetSubscriptionRequest, context: Ctx
    ) -> quota_pb2.GetSubscriptionResponse:
        who = await self._principal(context)
        view = await self._subs.get(who, request.tenant_id, request.subscription_id)
        return quota_pb2.GetSubscriptionResponse(subscription=mapping.subscription(view))

    async def ListSubscriptions(
        self, request: quota_pb2.ListSubscriptionsRequest, context: Ctx
    ) -> quota_pb2.ListSubscriptionsResponse:
        who = await self._principal(context)
        views, token = await self._subs.list(
            who,
            request.tenant_id,
            request.user_id,
            request.active_only,
            request.page_size,
            request.page_token,
        )
        return quota_pb2.ListSubscriptionsResponse(
            subscriptions=[mapping.subscription(v) for v in views], next_page_token=token
        )

    async def ChangeSubscriptionPlan(
        self, request: quota_pb2.ChangeSubscriptionPlanRequest, context: Ctx
    ) -> quota_pb2.ChangeSubscriptionPlanResponse:
        who = await self._principal(context)
        view = await self._subs.change_plan(
            who, request.tenant_id, request.subscription_id, request.plan_id, request_key(request)
        )
        return quota_pb2.ChangeSubscriptionPlanResponse(subscription=mapping.subscription(view))

    async def EndSubscription(
        self, request: quota_pb2.EndSubscriptionRequest, context: Ctx
    ) -> quota_pb2.EndSubscriptionResponse:
        who = await self._principal(context)
        view = await self._subs.end(
            who,
            request.tenant_id,
            request.subscription_id,
            from_timestamp(request, "end_time"),
            request_key(request),
        )
        return quota_pb2.EndSubscriptionResponse(subscription=mapping.subscription(view))

    async def GetUsage(
        self, request: quota_pb2.GetUsageRequest, context: Ctx
    ) -> quota_pb2.GetUsageResponse:
        who = await self._principal(context)
        usage = await self._usage.usage(
            who, request.tenant_id, request.user_id, from_timestamp(request, "time")
        )
        return mapping.usage(usage)

    async def ListDeadLetters(
        self, request: quota_pb2.ListDeadLettersRequest, context: Ctx
    ) -> quota_pb2.ListDeadLettersResponse:
        who = await self._principal(context)
        found, token = await self._deliveries.dead_letters(
            who, request.page_size, request.page_token
        )
        return quota_pb2.ListDeadLettersResponse(
            dead_letters=[mapping.dead_letter(d) for d in found], next_page_token=token
        )

    async def RetryDeadLetters(
        self, request: quota_pb2.RetryDeadLettersRequest, context: Ctx
    ) -> quota_pb2.RetryDeadLettersResponse:
        who = await self._principal(context)
        retried = await self._deliveries.retry(who, list(request.ids))
        return quota_pb2.RetryDeadLettersResponse(retried=retried)


class QuotaInternalServicer(quota_pb2_grpc.QuotaInternalServiceServicer):
    """Counting, for llm_svc only (its x-service-token); each RPC names its callers."""

    def __init__(self, counting: CountingService, callers: Callers) -> None:
        self._counting = counting
        self.callers = callers

    @allow("llm")
    async def Reserve(
        self, request: quota_pb2.ReserveRequest, context: Ctx
    ) -> quota_pb2.ReserveResponse:
        try:
            res, replayed = await self._counting.reserve(
                request.request_id,
                request.tenant_id,
                request.user_id,
                request.time_zone,
                request.idempotency_key,
                (request.prompt_token_bound, request.choices, request.max_tokens),
                request.model,
            )
        except (ResourceExhausted, FailedPrecondition, PermissionDenied) as refused:
            REFUSALS.labels(refused.reason).inc()
            raise
        return quota_pb2.ReserveResponse(reservation=mapping.reservation(res), replayed=replayed)

    @allow("llm")
    async def Settle(
        self, request: quota_pb2.SettleRequest, context: Ctx
    ) -> quota_pb2.SettleResponse:
        commit = mapping.settle_action(request.action)
        record = request.interaction
        if record.interaction_id != request.request_id:
            raise InvalidArgument.field("interaction.interaction_id", "must be the request_id")
        res = await self._counting.settle(
            request.request_id,
            commit,
            request.reason,
            record.tenant_id,
            record.user_id,
            record.SerializeToString(),
            mapping.tokens_of(record),
        )
        return quota_pb2.SettleResponse(reservation=mapping.reservation(res))

    @allow("llm")
    async def GetSettlement(
        self, request: quota_pb2.GetSettlementRequest, context: Ctx
    ) -> quota_pb2.GetSettlementResponse:
        res, record = await self._counting.settlement(request.request_id)
        return quota_pb2.GetSettlementResponse(
            reservation=mapping.reservation(res),
            interaction=mapping.stored_record(record),
        )
