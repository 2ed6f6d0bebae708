"""The Members port on identity's CheckMembership (quota's own service credential)."""

from __future__ import annotations

import grpc

from gateway_common.channels import call_metadata
from gateway_common.client_errors import translate
from gateway_common.errors import NotFound
from llmgw.identity.v1 import identity_pb2, identity_pb2_grpc
from quota_svc.ports import Members


class IdentityMembers(Members):
    def __init__(self, channel: grpc.aio.Channel, service_token: str) -> None:
        self._stub = identity_pb2_grpc.IdentityInternalServiceStub(channel)
        self._token = service_token

    async def check(self, tenant_id: str, user_id: str, timeout: float) -> None:
        try:
            await self._stub.CheckMembership(
                identity_pb2.CheckMembershipRequest(tenant_id=tenant_id, user_id=user_id),
                timeout=timeout,
                metadata=call_metadata(service_token=self._token),
            )
        except grpc.aio.AioRpcError as err:
            failure = translate(err, "identity")  # a refused credential of ours: UNAVAILABLE
            if isinstance(failure, NotFound):
                raise NotFound("no such user in this tenant", "USER_NOT_FOUND") from None
            raise failure from None
