"""System events of a process without a database (llm): written to history's
RecordSystemEvents (idempotent per event id), best effort. The emitter keeps them in its
bounded buffer while history is away and tries again; those still buffered when the
process stops are lost (counted in ``llmgw_system_events_lost_total``)."""

from __future__ import annotations

import grpc

from gateway_common.audit_proto import system_event_out
from gateway_common.channels import call_metadata
from gateway_common.system_events import SystemEvent, Writer
from llmgw.history.v1 import audit_pb2, history_pb2_grpc

IDEMPOTENT = (("llmgw.history.v1.HistoryInternalService", "RecordSystemEvents"),)


class HistoryEventWriter(Writer):
    def __init__(self, channel: grpc.aio.Channel, service_token: str, timeout: float) -> None:
        self._stub = history_pb2_grpc.HistoryInternalServiceStub(channel)
        self._token = service_token
        self._timeout = timeout

    async def write(self, events: list[SystemEvent]) -> None:
        request = audit_pb2.RecordSystemEventsRequest(events=[system_event_out(e) for e in events])
        # Refused entries (REJECTED) are not retried: a best-effort path.
        await self._stub.RecordSystemEvents(
            request, timeout=self._timeout, metadata=call_metadata(service_token=self._token)
        )
