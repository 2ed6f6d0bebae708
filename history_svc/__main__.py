"""python -m history_svc: load settings once, build, serve."""

from __future__ import annotations

import asyncio

from gateway_common import logs, metrics, server
from history_svc.bootstrap import build
from history_svc.config import HistorySettings


def main() -> None:
    settings = HistorySettings()
    logs.configure("history", settings.log_level)
    metrics.serve_metrics(settings.metrics_port)
    asyncio.run(server.run(settings, build(settings)))


if __name__ == "__main__":
    main()
