"""Building and sending interactions through the gRPC API."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest

from gateway_common.status import error_info
from history_svc import mapping
from history_svc.domain import Interaction
from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import INTERNAL, Api
from tests.unit.history.factories import interaction


def to_proto(item: Interaction) -> pb.Interaction:
    return mapping.interaction_out(item)


async def record_many(api: Api, *items: Interaction | pb.Interaction) -> list[pb.RecordResult]:
    """One RecordInteractions call; the results in request order."""
    protos = [i if isinstance(i, pb.Interaction) else to_proto(i) for i in items]
    reply = await api.internal.RecordInteractions(
        pb.RecordInteractionsRequest(interactions=protos), metadata=INTERNAL
    )
    assert len(reply.results) == len(protos)
    return list(reply.results)


async def record(api: Api, item: Interaction | None = None, **kw: object) -> pb.RecordResult:
    """One interaction, which must be stored now."""
    item = item or interaction(**kw)  # type: ignore[arg-type]
    (result,) = await record_many(api, item)
    assert result.outcome == pb.RECORD_OUTCOME_CREATED, result
    return result


async def expect_error(
    call, code: grpc.StatusCode, reason: str | None = None
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    if reason is not None:
        info = error_info(err.value)
        assert info is not None and info.reason == reason and info.domain == "history.llmgw"
    return err.value


def ts(when: dt.datetime):
    return mapping.to_timestamp(when)


def new_id() -> str:
    return str(uuid.uuid4())
