"""python -m identity_svc: load settings once, build, serve (migrating before SERVING)."""

from __future__ import annotations

from gateway_common.entrypoint import serve_main
from identity_svc import migrate
from identity_svc.bootstrap import build
from identity_svc.config import IdentitySettings


def main() -> None:
    settings = IdentitySettings()
    serve_main(
        "identity",
        settings,
        lambda: build(settings),
        # Replicas starting together serialise on an advisory lock inside upgrade().
        (lambda: migrate.upgrade(settings.migrations_url())) if settings.migrate_on_start else None,
    )


if __name__ == "__main__":
    main()
