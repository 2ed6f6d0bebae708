"""The outbox's sink for interaction records: history_svc's RecordInteractions (batch,
idempotent per interaction id) and its erasure tombstones (ListErasures)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2

from gateway_common.channels import call_metadata
from gateway_common.outbox import Entry
from gateway_common.outbox_relay import (
    Erasure,
    Result,
    Sink,
    SinkRefused,
    SinkUnavailable,
    Verdict,
)
from llmgw.history.v1 import history_pb2, history_pb2_grpc

_SERVICE = "llmgw.history.v1.HistoryInternalService"
IDEMPOTENT = ((_SERVICE, "RecordInteractions"), (_SERVICE, "ListErasures"))
# A failure that says nothing about the records: retry the batch later, whole.
_PASSING = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAUTHENTICATED,  # a credential being rotated, say
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,  # an older history during a rolling update
    grpc.StatusCode.CANCELLED,
}
_VERDICTS = {
    history_pb2.RECORD_OUTCOME_CREATED: Verdict.DELIVERED,
    history_pb2.RECORD_OUTCOME_DUPLICATE: Verdict.DELIVERED,
    history_pb2.RECORD_OUTCOME_ERASED: Verdict.DROPPED,
    history_pb2.RECORD_OUTCOME_REJECTED: Verdict.REJECTED,
}


class HistorySink(Sink):
    def __init__(self, channel: grpc.aio.Channel, service_token: str, timeout: float) -> None:
        self._stub = history_pb2_grpc.HistoryInternalServiceStub(channel)
        self._token = service_token
        self._timeout = timeout

    async def deliver(self, entries: Sequence[Entry]) -> list[Result]:
        request = history_pb2.RecordInteractionsRequest(
            interactions=[history_pb2.Interaction.FromString(e.payload) for e in entries]
        )
        try:
            reply = await self._stub.RecordInteractions(
                request, timeout=self._timeout, metadata=call_metadata(service_token=self._token)
            )
        except grpc.aio.AioRpcError as err:
            raise _failure(err) from None
        return [
            Result(
                r.interaction_id, _VERDICTS.get(r.outcome, Verdict.REJECTED), r.reason, r.message
            )
            for r in reply.results
        ]

    async def erasures(self, since: datetime) -> list[Erasure]:
        found: list[Erasure] = []
        start = timestamp_pb2.Timestamp()
        start.FromDatetime(since)
        token = ""
        while True:
            request = history_pb2.ListErasuresRequest(
                since_time=start, page_size=500, page_token=token
            )
            try:
                reply = await self._stub.ListErasures(
                    request,
                    timeout=self._timeout,
                    metadata=call_metadata(service_token=self._token),
                )
            except grpc.aio.AioRpcError as err:
                raise _failure(err) from None
            found += [
                Erasure(e.tenant_id, e.user_id, e.erase_time.ToDatetime(tzinfo=UTC))
                for e in reply.erasures
            ]
            token = reply.next_page_token
            if not token:
                return found


def _failure(err: grpc.aio.AioRpcError) -> SinkUnavailable | SinkRefused:
    code = err.code()
    name = code.name if code is not None else "UNKNOWN"
    if code in _PASSING:
        return SinkUnavailable(name, f"history: {err.details() or name}")
    return SinkRefused(name, f"history: {err.details() or name}")
