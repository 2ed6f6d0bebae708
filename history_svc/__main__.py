"""python -m history_svc: load settings once, build, serve."""

from __future__ import annotations

from gateway_common.entrypoint import serve_main
from history_svc.bootstrap import build
from history_svc.config import HistorySettings


def main() -> None:
    settings = HistorySettings()
    serve_main("history", settings, lambda: build(settings))


if __name__ == "__main__":
    main()
