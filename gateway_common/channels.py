"""Client channels to the other services: one long-lived channel per dependency,
deadlines from the caller's remaining time, retries only on UNAVAILABLE and only
for the idempotent methods named by the caller."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from gateway_common import tracing
from gateway_common.auth import REQUEST_ID
from gateway_common.logs import request_id_var
from gateway_common.service_auth import SERVICE_TOKEN
from gateway_common.settings import ServiceSettings

DEFAULT_TIMEOUT = 10.0


def retry_service_config(idempotent: Sequence[tuple[str, str]]) -> str:
    """gRPC service config retrying (service, method) pairs on UNAVAILABLE only."""
    if not idempotent:
        return json.dumps({"methodConfig": []})
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": s, "method": m} for s, m in idempotent],
                    "retryPolicy": {
                        "maxAttempts": 4,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def open_channel(
    target: str,
    settings: ServiceSettings,
    idempotent: Sequence[tuple[str, str]] = (),
    extra_options: Sequence[tuple[str, object]] = (),
) -> grpc.aio.Channel:
    options: list[tuple[str, object]] = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry_service_config(idempotent)),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        # A dependency back from a restart is used again within a second, not after the
        # default exponential reconnect backoff (which grows to minutes).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        # With a headless Service (dns:///name:port) calls spread over every replica.
        ("grpc.lb_policy_name", "round_robin"),
        *extra_options,
    ]
    creds = client_credentials(settings)
    interceptors = tracing.client_interceptors()
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)


def client_credentials(settings: ServiceSettings) -> grpc.ChannelCredentials | None:
    """TLS when a CA is configured; our own cert and key are presented for mTLS."""
    if not settings.tls_ca_file:
        return None
    ca = Path(settings.tls_ca_file).read_bytes()
    key = Path(settings.tls_key_file).read_bytes() if settings.tls_key_file else None
    cert = Path(settings.tls_cert_file).read_bytes() if settings.tls_cert_file else None
    return grpc.ssl_channel_credentials(ca, key, cert)


def call_metadata(service_token: str = "", api_key: str = "") -> tuple[tuple[str, str], ...]:
    """Metadata for an outgoing call: request id, and the credential to present."""
    md: list[tuple[str, str]] = []
    rid = request_id_var.get()
    if rid:
        md.append((REQUEST_ID, rid))
    if service_token:
        md.append((SERVICE_TOKEN, service_token))
    if api_key:
        md.append(("authorization", f"Bearer {api_key}"))
    return tuple(md)


def remaining(
    context: grpc.aio.ServicerContext[Any, Any] | None, default: float = DEFAULT_TIMEOUT
) -> float:
    """The caller's remaining deadline in seconds (``default`` when it set none)."""
    if context is None:
        return default
    left = context.time_remaining()
    if left is None:
        return default
    return max(left, 0.001)
