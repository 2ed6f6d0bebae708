"""Another service's gRPC error, in the caller's own domain errors (reason and details kept
where they mean something to our caller). The one translation every client adapter uses."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway_common.errors import (
    Aborted,
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaViolation,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from gateway_common.service_auth import REFUSED_CREDENTIAL


def details(err: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[QuotaViolation]]:
    info = error_details_pb2.ErrorInfo()
    violations: list[QuotaViolation] = []
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            qf = error_details_pb2.QuotaFailure()
            detail.Unpack(qf)
            violations += [QuotaViolation(v.subject, v.description) for v in qf.violations]
    return info, violations


def retry_delay(err: grpc.aio.AioRpcError) -> float | None:
    """The RetryInfo delay of a received error, in seconds, if it has one."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            ri = error_details_pb2.RetryInfo()
            detail.Unpack(ri)
            return float(ri.retry_delay.ToNanoseconds()) / 1e9
    return None


def translate(err: grpc.aio.AioRpcError, dependency: str) -> DomainError:
    """Codes our callers can act on pass through; anything else means the dependency is
    not working for us (UNAVAILABLE), e.g. a refused service credential or an INTERNAL error."""
    code = err.code()
    info, violations = details(err)
    message = err.details() or f"{dependency} refused the call"
    reason = info.reason or None
    metadata = dict(info.metadata)
    if reason in REFUSED_CREDENTIAL:  # our own credential: never the end caller's fault
        return Unavailable(
            f"{dependency} refused this service's credential", f"{dependency.upper()}_UNAVAILABLE"
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(message, reason, violations, metadata, retry_delay(err))
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(message, reason, metadata=metadata)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message, reason, metadata)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message, reason, metadata)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(message, reason, metadata)
    if code == grpc.StatusCode.ABORTED:  # e.g. an idempotency key still in progress
        return Aborted(message, reason, metadata)
    if code == grpc.StatusCode.UNAUTHENTICATED and dependency == "identity":
        return Unauthenticated(message, reason, metadata)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(
            f"{dependency} did not answer in time", f"{dependency.upper()}_TIMEOUT"
        )
    return Unavailable(f"{dependency} service unavailable", f"{dependency.upper()}_UNAVAILABLE")
