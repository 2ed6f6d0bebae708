"""The ``grpc.aio`` server every service runs: health, reflection, the error
boundary, TLS by configuration, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway_common import metrics, reflection, system_events, tracing
from gateway_common.interceptors import ErrorBoundary, Slots
from gateway_common.settings import ServiceSettings

log = logging.getLogger("gateway.server")

Probe = Callable[[], Awaitable[None]]
"""Raises when the service's store does not answer."""


@dataclass
class ServiceSpec:
    """What a service contributes to the shared server."""

    domain: str  # ErrorInfo domain, e.g. "identity.llmgw"
    service_names: Sequence[str]  # full proto names, for health and reflection
    register: Callable[[grpc.aio.Server], None]  # adds the servicers
    probe: Probe | None = None  # readiness of the backing store
    close: Callable[[], Awaitable[None]] | None = None  # releases resources after the drain
    # One-time preparation needing the store (migrations): retried by the health loop
    # until it succeeds; the service stays NOT_SERVING until then.
    prepare: Callable[[], Awaitable[None]] | None = None
    # Called once, in the server's loop, when the store first answers after ``prepare``:
    # where background workers that need the migrated store start.
    on_ready: Callable[[], None] | None = None
    interceptors: Sequence[grpc.aio.ServerInterceptor] = field(default_factory=tuple)


class GrpcServer:
    def __init__(self, settings: ServiceSettings, spec: ServiceSpec) -> None:
        self.settings = settings
        self.spec = spec
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[
                *tracing.server_interceptors(),
                *spec.interceptors,
                ErrorBoundary(spec.domain, Slots(settings.max_concurrent_rpcs)),
            ],
            options=server_options(settings),
        )
        self.port = 0
        self._probe_task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> int:
        """Bind, start serving and return the bound port (useful with port 0)."""
        spec = self.spec
        spec.register(self.server)
        for name in spec.service_names:
            metrics.RPC_SHED.labels(name)  # 0 from the start (alerts see a series)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable([*spec.service_names, health.SERVICE_NAME], self.server)
        address = f"{self.settings.host}:{self.settings.port}"
        creds = server_credentials(self.settings)
        if creds is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, creds)
        await self._set_all(serving=spec.probe is None)
        await self.server.start()
        if spec.probe is not None:
            self._probe_task = asyncio.create_task(self._probe_loop(spec.probe, spec.prepare))
        log.info("serving", extra={"address": f"{self.settings.host}:{self.port}"})
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, so balancers stop sending; then drain; then close."""
        if self._stopping:
            return
        self._stopping = True
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        await self.health.enter_graceful_shutdown()
        if self.settings.shutdown_delay_seconds > 0:
            await asyncio.sleep(self.settings.shutdown_delay_seconds)
        await self.server.stop(self.settings.grace_seconds if grace is None else grace)
        if self.spec.close is not None:
            await self.spec.close()
        log.info("stopped")

    async def _set_all(self, *, serving: bool) -> None:
        state = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.spec.service_names):
            await self.health.set(name, state)

    async def _probe_loop(self, probe: Probe, prepare: Probe | None) -> None:
        serving: bool | None = None
        interval = self.settings.health_interval_seconds
        while True:
            try:
                if prepare is not None:
                    await prepare()
                    prepare = None
                    log.info("prepared")
                await asyncio.wait_for(probe(), timeout=max(interval * 2, 1.0))
                ok = True
                if self.spec.on_ready is not None:
                    started, self.spec.on_ready = self.spec.on_ready, None
                    started()
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                ok = False
                if serving is not False:
                    log.warning("store not answering: %s", type(exc).__name__)
            if ok != serving:
                if serving is not None or not ok:  # not the first SERVING at start
                    system_events.emit(
                        "store_serving" if ok else "store_not_serving",
                        system_events.Severity.INFO if ok else system_events.Severity.WARNING,
                        domain=self.spec.domain,
                    )
                serving = ok
                await self._set_all(serving=ok)
                log.info("health", extra={"serving": ok})
            await asyncio.sleep(interval)


def server_options(settings: ServiceSettings) -> list[tuple[str, int]]:
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    if settings.max_connection_age_seconds > 0:
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
            (
                "grpc.max_connection_age_grace_ms",
                int(settings.max_connection_age_grace_seconds * 1000),
            ),
        ]
    return options


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert_file:
        return None
    cert = Path(settings.tls_cert_file).read_bytes()
    key = Path(settings.tls_key_file).read_bytes()
    ca = Path(settings.tls_ca_file).read_bytes() if settings.tls_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=ca,
        require_client_auth=bool(ca) and settings.tls_require_client_cert,
    )


async def run(settings: ServiceSettings, spec: ServiceSpec) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully. Used by ``__main__``."""
    server = GrpcServer(settings, spec)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("signal received: draining")
    await server.stop()
