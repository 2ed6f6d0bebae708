"""quota_svc's internal ledger: Reserve before the provider, Settle after (the ledger
transition and the history record in one transaction), GetSettlement for replays."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from gateway_common.channels import call_metadata
from gateway_common.principal import Principal
from llm_svc import mapping
from llm_svc.clients.errors import translate
from llm_svc.domain import Interaction, Reservation, ReservationState
from llm_svc.ports import QuotaPort
from llm_svc.token_bound import Hold
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc

_SERVICE = "llmgw.quota.v1.QuotaInternalService"
IDEMPOTENT = ((_SERVICE, "Reserve"), (_SERVICE, "Settle"), (_SERVICE, "GetSettlement"))
_STATES = {
    quota_pb2.RESERVATION_STATE_RESERVED: ReservationState.RESERVED,
    quota_pb2.RESERVATION_STATE_COMMITTED: ReservationState.COMMITTED,
    quota_pb2.RESERVATION_STATE_RELEASED: ReservationState.RELEASED,
    quota_pb2.RESERVATION_STATE_EXPIRED: ReservationState.EXPIRED,
}


class GrpcQuota(QuotaPort):
    def __init__(self, channel: grpc.aio.Channel, service_token: str) -> None:
        self._stub = quota_pb2_grpc.QuotaInternalServiceStub(channel)
        self._token = service_token

    async def reserve(
        self,
        request_id: str,
        principal: Principal,
        idempotency_key: str,
        timeout: float,
        hold: Hold | None = None,
    ) -> Reservation:
        hold = hold or Hold()
        request = quota_pb2.ReserveRequest(
            request_id=request_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            time_zone=principal.time_zone,
            idempotency_key=idempotency_key,
            prompt_token_bound=hold.prompt_bound,
            choices=hold.choices,
            max_tokens=hold.max_tokens,
            model=hold.model,
        )
        try:
            reply = await self._stub.Reserve(request, timeout=timeout, metadata=self._metadata())
        except grpc.aio.AioRpcError as err:
            raise translate(err, "quota") from None
        r = reply.reservation
        return Reservation(
            request_id=r.request_id or request_id,
            subscription_id=r.subscription_id,
            state=_STATES.get(r.state, ReservationState.RESERVED),
            expires=r.expire_time.ToDatetime(tzinfo=UTC) if r.HasField("expire_time") else None,
            replayed=reply.replayed,
            limit=r.limit,
            remaining=r.remaining,
            resets=r.period_end.ToDatetime(tzinfo=UTC) if r.HasField("period_end") else None,
            minute_limit=r.minute_limit if r.HasField("minute_limit") else None,
            minute_used=r.minute_used,
            minute_reset=_time(r, "minute_reset"),
            token_limit=r.token_limit if r.HasField("token_limit") else None,
            tokens_used=r.tokens_used,
            max_tokens=r.max_tokens,
        )

    async def settle(self, interaction: Interaction, commit: bool, timeout: float) -> None:
        request = quota_pb2.SettleRequest(
            request_id=interaction.interaction_id,
            action=quota_pb2.SETTLE_ACTION_COMMIT if commit else quota_pb2.SETTLE_ACTION_RELEASE,
            reason="" if commit else interaction.error_reason[:500],
            interaction=mapping.interaction_to_proto(interaction),
        )
        try:
            await self._stub.Settle(request, timeout=timeout, metadata=self._metadata())
        except grpc.aio.AioRpcError as err:
            raise translate(err, "quota") from None

    async def settlement(self, request_id: str, timeout: float) -> Interaction | None:
        request = quota_pb2.GetSettlementRequest(request_id=request_id)
        try:
            reply = await self._stub.GetSettlement(
                request, timeout=timeout, metadata=self._metadata()
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise translate(err, "quota") from None
        if not reply.HasField("interaction"):
            return None
        return mapping.interaction_from_proto(reply.interaction)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return call_metadata(service_token=self._token)


def _time(r: quota_pb2.Reservation, name: str) -> datetime | None:
    return getattr(r, name).ToDatetime(tzinfo=UTC) if r.HasField(name) else None  # type: ignore[arg-type]
