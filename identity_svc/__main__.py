"""python -m identity_svc: load settings once, migrate, build, serve."""

from __future__ import annotations

import asyncio

from gateway_common import logs, metrics, server
from identity_svc import migrate
from identity_svc.bootstrap import build
from identity_svc.config import IdentitySettings


def main() -> None:
    settings = IdentitySettings()
    logs.configure("identity", settings.log_level)
    if settings.migrate_on_start:
        # Before serving; replicas starting together serialise on an advisory lock.
        migrate.upgrade(settings.database_url)
    metrics.serve_metrics(settings.metrics_port)
    asyncio.run(server.run(settings, build(settings)))


if __name__ == "__main__":
    main()
