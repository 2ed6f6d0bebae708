"""Thin gRPC servicers: check the caller, parse, one service call, map back."""

from __future__ import annotations

from typing import Any

import grpc

from gateway_common.errors import InvalidArgument
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal
from gateway_common.protoconv import from_timestamp
from gateway_common.service_auth import Callers, allow
from history_svc import mapping, mapping_audit
from history_svc.service import HistoryService
from history_svc.service_audit import AuditService
from llmgw.history.v1 import audit_pb2 as apb
from llmgw.history.v1 import history_pb2 as pb
from llmgw.history.v1 import history_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class HistoryServicer(history_pb2_grpc.HistoryServiceServicer):
    def __init__(
        self, service: HistoryService, authenticator: Authenticator, audit: AuditService
    ) -> None:
        self.service = service
        self.authenticator = authenticator
        self.audit = audit

    async def _caller(self, context: Context) -> Principal:
        return await self.authenticator.authenticate_call(context)

    async def GetInteraction(
        self, request: pb.GetInteractionRequest, context: Context
    ) -> pb.GetInteractionResponse:
        caller = await self._caller(context)
        item = await self.service.get(caller, request.tenant_id, request.interaction_id)
        return pb.GetInteractionResponse(interaction=mapping.interaction_out(item))

    async def ListInteractions(
        self, request: pb.ListInteractionsRequest, context: Context
    ) -> pb.ListInteractionsResponse:
        caller = await self._caller(context)
        page = await self.service.list(
            caller, mapping.list_filter(request), request.page_size, request.page_token
        )
        return pb.ListInteractionsResponse(
            interactions=[mapping.interaction_out(i) for i in page.items],
            next_page_token=page.next_page_token,
        )

    async def SearchInteractions(
        self, request: pb.SearchInteractionsRequest, context: Context
    ) -> pb.SearchInteractionsResponse:
        caller = await self._caller(context)
        page = await self.service.search(
            caller,
            mapping.search_filter(request),
            request.page_size,
            request.page_token,
            context.time_remaining(),
        )
        return pb.SearchInteractionsResponse(
            interactions=[mapping.interaction_out(i) for i in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetUsageStats(
        self, request: pb.GetUsageStatsRequest, context: Context
    ) -> pb.GetUsageStatsResponse:
        caller = await self._caller(context)
        group_by = mapping.GROUP_BY.get(request.group_by)
        if group_by is None:
            raise InvalidArgument.field("group_by", "GROUP_BY_DAY, _USER or _MODEL required")
        stats = await self.service.stats(caller, mapping.stats_filter(request), group_by)
        return pb.GetUsageStatsResponse(
            buckets=[mapping.bucket_out(b) for b in stats.buckets],
            total=mapping.bucket_out(stats.total),
        )

    async def DeleteUserInteractions(
        self, request: pb.DeleteUserInteractionsRequest, context: Context
    ) -> pb.DeleteUserInteractionsResponse:
        caller = await self._caller(context)
        deleted = await self.service.delete_user(
            caller, request.tenant_id, request.user_id, request.request_id
        )
        return pb.DeleteUserInteractionsResponse(deleted_count=deleted)

    async def ListAdjustments(
        self, request: apb.ListAdjustmentsRequest, context: Context
    ) -> apb.ListAdjustmentsResponse:
        caller = await self._caller(context)
        items, token = await self.audit.list_adjustments(
            caller, mapping_audit.adjustment_filter(request), request.page_size, request.page_token
        )
        return apb.ListAdjustmentsResponse(
            adjustments=[mapping_audit.adjustment_out(e) for e in items], next_page_token=token
        )

    async def ListSystemEvents(
        self, request: apb.ListSystemEventsRequest, context: Context
    ) -> apb.ListSystemEventsResponse:
        caller = await self._caller(context)
        items, token = await self.audit.list_events(
            caller, mapping_audit.event_filter(request), request.page_size, request.page_token
        )
        return apb.ListSystemEventsResponse(
            events=[mapping_audit.system_event_out(e) for e in items], next_page_token=token
        )


class HistoryInternalServicer(history_pb2_grpc.HistoryInternalServiceServicer):
    """For quota_svc only (its outbox relay delivers records); each RPC names its callers."""

    def __init__(self, service: HistoryService, callers: Callers, audit: AuditService) -> None:
        self.service = service
        self.callers = callers
        self.audit = audit

    @allow("quota")
    async def RecordInteractions(
        self, request: pb.RecordInteractionsRequest, context: Context
    ) -> pb.RecordInteractionsResponse:
        entries = [mapping.record_entry(msg) for msg in request.interactions]
        results = await self.service.record_batch(entries)
        return pb.RecordInteractionsResponse(
            results=[mapping.record_result_out(r) for r in results]
        )

    @allow("quota")
    async def ListErasures(
        self, request: pb.ListErasuresRequest, context: Context
    ) -> pb.ListErasuresResponse:
        since = from_timestamp(request, "since_time")
        erasures, token = await self.service.list_erasures(
            since, request.page_size, request.page_token
        )
        return pb.ListErasuresResponse(
            erasures=[mapping.erasure_out(e) for e in erasures], next_page_token=token
        )

    @allow("identity", "quota")
    async def RecordAdjustments(
        self, request: apb.RecordAdjustmentsRequest, context: Context
    ) -> apb.RecordAdjustmentsResponse:
        entries = [mapping_audit.adjustment_entry(msg) for msg in request.adjustments]
        results = await self.audit.record_adjustments(entries)
        return apb.RecordAdjustmentsResponse(results=[mapping_audit.result_out(r) for r in results])

    @allow("identity", "quota", "llm")
    async def RecordSystemEvents(
        self, request: apb.RecordSystemEventsRequest, context: Context
    ) -> apb.RecordSystemEventsResponse:
        entries = [mapping_audit.event_entry(msg) for msg in request.events]
        results = await self.audit.record_events(entries)
        return apb.RecordSystemEventsResponse(
            results=[mapping_audit.result_out(r) for r in results]
        )
