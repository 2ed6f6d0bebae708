"""Domain errors shared by every service.

Services raise these; the error boundary (:mod:`gateway_common.interceptors`)
turns each into a gRPC status with a ``google.rpc.Status`` carrying
``ErrorInfo`` and, where it fits, ``BadRequest`` or ``QuotaFailure``.
Standard library only, so domain modules may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class QuotaViolation:
    subject: str
    description: str


class DomainError(Exception):
    """Base of every error a client may see. ``reason`` is UPPER_SNAKE_CASE.

    ``message`` is shown to the client: never put SQL, secrets or internals in it.
    """

    code_name = "UNKNOWN"

    def __init__(
        self, message: str, reason: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code_name
        self.metadata = dict(metadata or {})


class InvalidArgument(DomainError):
    code_name = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        reason: str | None = None,
        violations: list[FieldViolation] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason, metadata)
        self.violations = violations or []

    @classmethod
    def field(cls, name: str, description: str) -> InvalidArgument:
        return cls(f"{name}: {description}", violations=[FieldViolation(name, description)])


class NotFound(DomainError):
    code_name = "NOT_FOUND"


class AlreadyExists(DomainError):
    code_name = "ALREADY_EXISTS"


class Unauthenticated(DomainError):
    code_name = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code_name = "PERMISSION_DENIED"


class FailedPrecondition(DomainError):
    code_name = "FAILED_PRECONDITION"


class Aborted(DomainError):
    code_name = "ABORTED"


class Unavailable(DomainError):
    code_name = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    code_name = "DEADLINE_EXCEEDED"


class Unimplemented(DomainError):
    code_name = "UNIMPLEMENTED"


class ResourceExhausted(DomainError):
    code_name = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        reason: str | None = None,
        violations: list[QuotaViolation] | None = None,
        metadata: dict[str, str] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message, reason, metadata)
        self.violations = violations or []
        # Seconds until the exhausted window resets (sent as google.rpc.RetryInfo).
        self.retry_delay = retry_delay
