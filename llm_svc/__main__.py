"""python -m llm_svc: load settings once, build, serve."""

from __future__ import annotations

import asyncio

from gateway_common import logs, metrics, server
from llm_svc.bootstrap import build
from llm_svc.config import LlmSettings


def main() -> None:
    settings = LlmSettings()
    logs.configure("llm", settings.log_level)
    metrics.serve_metrics(settings.metrics_port)
    asyncio.run(server.run(settings, build(settings)))


if __name__ == "__main__":
    main()
