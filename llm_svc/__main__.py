"""python -m llm_svc: load settings once, build, serve."""

from __future__ import annotations

from gateway_common.entrypoint import serve_main
from llm_svc.bootstrap import build
from llm_svc.config import LlmSettings


def main() -> None:
    settings = LlmSettings()
    serve_main("llm", settings, lambda: build(settings))


if __name__ == "__main__":
    main()
