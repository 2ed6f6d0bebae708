"""python -m quota_svc: load settings once, build, serve (migrating before SERVING)."""

from __future__ import annotations

from gateway_common.entrypoint import serve_main
from quota_svc import migrate
from quota_svc.bootstrap import build
from quota_svc.config import QuotaSettings


def main() -> None:
    settings = QuotaSettings()
    serve_main(
        "quota",
        settings,
        lambda: build(settings),
        # Replicas starting together serialise on an advisory lock inside upgrade().
        (lambda: migrate.upgrade(settings.migrations_url())) if settings.migrate_on_start else None,
    )


if __name__ == "__main__":
    main()
