"""quota_svc's internal ledger: Reserve before the provider, Commit or Release after."""

from __future__ import annotations

import grpc

from gateway_common.channels import call_metadata
from gateway_common.principal import Principal
from llm_svc.clients.errors import translate
from llm_svc.domain import Reservation, ReservationState
from llm_svc.ports import QuotaPort
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc

_SERVICE = "llmgw.quota.v1.QuotaInternalService"
IDEMPOTENT = ((_SERVICE, "Reserve"), (_SERVICE, "Commit"), (_SERVICE, "Release"))
_STATES = {
    quota_pb2.RESERVATION_STATE_RESERVED: ReservationState.RESERVED,
    quota_pb2.RESERVATION_STATE_COMMITTED: ReservationState.COMMITTED,
    quota_pb2.RESERVATION_STATE_RELEASED: ReservationState.RELEASED,
    quota_pb2.RESERVATION_STATE_EXPIRED: ReservationState.EXPIRED,
}


class GrpcQuota(QuotaPort):
    def __init__(self, channel: grpc.aio.Channel, internal_token: str) -> None:
        self._stub = quota_pb2_grpc.QuotaInternalServiceStub(channel)
        self._token = internal_token

    async def reserve(self, request_id: str, principal: Principal, timeout: float) -> Reservation:
        request = quota_pb2.ReserveRequest(
            request_id=request_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            time_zone=principal.time_zone,
        )
        try:
            reply = await self._stub.Reserve(request, timeout=timeout, metadata=self._md())
        except grpc.aio.AioRpcError as err:
            raise translate(err, "quota") from None
        r = reply.reservation
        return Reservation(
            request_id=r.request_id or request_id,
            subscription_id=r.subscription_id,
            state=_STATES.get(r.state, ReservationState.RESERVED),
        )

    async def commit(self, request_id: str, timeout: float) -> None:
        try:
            await self._stub.Commit(
                quota_pb2.CommitRequest(request_id=request_id), timeout=timeout, metadata=self._md()
            )
        except grpc.aio.AioRpcError as err:
            raise translate(err, "quota") from None

    async def release(self, request_id: str, reason: str, timeout: float) -> None:
        try:
            await self._stub.Release(
                quota_pb2.ReleaseRequest(request_id=request_id, reason=reason[:500]),
                timeout=timeout,
                metadata=self._md(),
            )
        except grpc.aio.AioRpcError as err:
            raise translate(err, "quota") from None

    def _md(self) -> tuple[tuple[str, str], ...]:
        return call_metadata(internal_token=self._token)
