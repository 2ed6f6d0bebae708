"""What every ``python -m <svc>`` does: logs, tracing, metrics, event loop, serve."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway_common import logs, metrics, server, tracing
from gateway_common.server import ServiceSpec
from gateway_common.settings import ServiceSettings


def serve_main(
    name: str,
    settings: ServiceSettings,
    build: Callable[[], ServiceSpec],
    migrate: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM. ``build`` runs inside the event loop; ``migrate`` (blocking) runs
    as the readiness step, retried while the database is down (NOT_SERVING until done)."""
    logs.configure(name, settings.log_level)
    settings.check_production_safety()
    tracing.configure_from_env(name)
    metrics.label_tenants(settings.metrics_tenants)
    metrics.serve_metrics(settings.metrics_port, settings.metrics_host)

    async def serve() -> None:
        spec = build()
        if migrate is not None:
            migrate_fn = migrate

            async def prepare() -> None:
                await asyncio.to_thread(migrate_fn)

            spec.prepare = prepare
        await server.run(settings, spec)

    if settings.event_loop == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())
