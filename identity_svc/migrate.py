"""Apply identity's migrations: ``python -m identity_svc.migrate`` (reads
IDENTITY_DATABASE_URL) or ``upgrade(url)``. Safe when replicas run it at once."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from identity_svc.config import IdentitySettings

log = logging.getLogger("identity.migrate")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not an option: URLs may contain '%' (configparser syntax).
    config.attributes["database_url"] = sync_url(database_url)
    return config


def sync_url(database_url: str) -> str:
    """Alembic runs synchronously: psycopg 3 serves both, only the driver name differs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
    log.info("migrations applied", extra={"revision": revision})


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    upgrade(IdentitySettings().database_url)
    print("identity: migrations applied")


if __name__ == "__main__":
    main()
