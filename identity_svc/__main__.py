"""python -m identity_svc: load settings once, build, serve (migrating before SERVING)."""

from __future__ import annotations

import asyncio

from gateway_common import logs, metrics, server, tracing
from identity_svc import migrate
from identity_svc.bootstrap import build
from identity_svc.config import IdentitySettings


def main() -> None:
    settings = IdentitySettings()
    logs.configure("identity", settings.log_level)
    tracing.configure_from_env("identity")
    metrics.serve_metrics(settings.metrics_port)
    spec = build(settings)
    if settings.migrate_on_start:

        async def prepare() -> None:
            # Retried by the health loop while the database is down; replicas starting
            # together serialise on an advisory lock inside upgrade().
            await asyncio.to_thread(migrate.upgrade, settings.database_url)

        spec.prepare = prepare
    asyncio.run(server.run(settings, spec))


if __name__ == "__main__":
    main()
