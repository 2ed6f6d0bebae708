"""Turning domain errors into ``google.rpc.Status`` and back."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway_common.errors import DomainError, InvalidArgument, ResourceExhausted

GRPC_CODES: dict[str, grpc.StatusCode] = {c.name: c for c in grpc.StatusCode}


def to_rpc_status(error: DomainError, domain: str) -> status_pb2.Status:
    """Build the rich status a client receives for ``error``."""
    code = GRPC_CODES.get(error.code_name, grpc.StatusCode.UNKNOWN)
    details: list[any_pb2.Any] = []
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    details.append(_pack(info))
    if isinstance(error, InvalidArgument) and error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad))
    if isinstance(error, ResourceExhausted) and error.violations:
        qf = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=v.subject, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(qf))
    if isinstance(error, ResourceExhausted) and error.retry_delay is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(int(error.retry_delay * 1e9), 0))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)


def internal_status(message: str = "internal error") -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    return rpc_status.to_status(status)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def error_info(err: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a received error, if any (for clients and tests)."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
