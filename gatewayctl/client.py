"""Connections to the suite's gRPC APIs, the caller's key, and exit codes scripts can trust."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from gateway_common.status import error_info

DEFAULT_TARGETS = {
    "identity": "127.0.0.1:50051",
    "quota": "127.0.0.1:50052",
    "history": "127.0.0.1:50053",
    "llm": "127.0.0.1:50054",
}

# gRPC status -> process exit code (0 is success; 1 an unexpected failure; 2 bad usage).
EXIT_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 3,
    grpc.StatusCode.NOT_FOUND: 4,
    grpc.StatusCode.ALREADY_EXISTS: 5,
    grpc.StatusCode.PERMISSION_DENIED: 6,
    grpc.StatusCode.UNAUTHENTICATED: 7,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 8,
    grpc.StatusCode.FAILED_PRECONDITION: 9,
    grpc.StatusCode.ABORTED: 10,
    grpc.StatusCode.UNAVAILABLE: 11,
    grpc.StatusCode.DEADLINE_EXCEEDED: 12,
    grpc.StatusCode.UNIMPLEMENTED: 13,
    grpc.StatusCode.CANCELLED: 14,
}
EXIT_HELP = (
    "exit codes: 0 ok, 1 unexpected error, 2 bad usage, 3 INVALID_ARGUMENT, 4 NOT_FOUND, "
    "5 ALREADY_EXISTS, 6 PERMISSION_DENIED, 7 UNAUTHENTICATED, 8 RESOURCE_EXHAUSTED, "
    "9 FAILED_PRECONDITION, 10 ABORTED, 11 UNAVAILABLE, 12 DEADLINE_EXCEEDED, "
    "13 UNIMPLEMENTED, 14 CANCELLED"
)


def target_from_env(service: str) -> str:
    """``GATEWAY_<SVC>_TARGET``, else 127.0.0.1 on ``<SVC>_PORT`` (the stack's port variable),
    else the default port."""
    name = service.upper()
    explicit = os.environ.get(f"GATEWAY_{name}_TARGET")
    if explicit:
        return explicit
    port = os.environ.get(f"{name}_PORT")
    return f"127.0.0.1:{port}" if port else DEFAULT_TARGETS[service]


class CliError(Exception):
    """A failure to report on stderr with its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def exit_code(err: grpc.RpcError) -> int:
    return EXIT_CODES.get(err.code(), 1)


def describe(err: grpc.RpcError) -> str:
    code = err.code()
    text = f"{code.name}: {err.details()}"
    info = error_info(err)
    if info is not None and info.reason:
        text += f" [{info.reason}]"
        if info.metadata:
            text += " " + ", ".join(f"{k}={v}" for k, v in sorted(info.metadata.items()))
    return text


@dataclass
class Session:
    """Channels opened on first use, the API key, and the per-call timeout."""

    api_key: str = ""
    timeout: float = 30.0
    targets: dict[str, str] = field(default_factory=dict)
    principal: Any = None  # the key's principal, once asked (gatewayctl.admin.principal_of)
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    @classmethod
    def from_env(cls, api_key: str | None, timeout: float) -> Session:
        targets = {name: target_from_env(name) for name in DEFAULT_TARGETS}
        key = api_key if api_key is not None else os.environ.get("GATEWAY_API_KEY", "")
        return cls(api_key=key, timeout=timeout, targets=targets)

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.insecure_channel(self.targets[service])
        return self._channels[service]

    def metadata(self, with_key: bool = True) -> list[tuple[str, str]]:
        md = [("x-request-id", "cli-" + uuid.uuid4().hex[:16])]
        if with_key:
            if not self.api_key:
                raise CliError("no API key: pass --key or set GATEWAY_API_KEY", 7)
            md.append(("authorization", f"Bearer {self.api_key}"))
        return md

    def call(self, method: Any, request: Any, *, with_key: bool = True) -> Any:
        return method(request, timeout=self.timeout, metadata=self.metadata(with_key))

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
