"""python -m quota_svc: load settings once, build, serve."""

from __future__ import annotations

import asyncio

from gateway_common import logs, metrics, server
from quota_svc.bootstrap import build
from quota_svc.config import QuotaSettings


def main() -> None:
    settings = QuotaSettings()
    logs.configure("quota", settings.log_level)
    metrics.serve_metrics(settings.metrics_port)
    asyncio.run(server.run(settings, build(settings)))


if __name__ == "__main__":
    main()
