"""The one migration runner of the services that own PostgreSQL (Alembic, programmatic).

:func:`upgrade` takes a session-level advisory lock, so replicas starting together apply
the migrations once (the others wait, then find nothing to do), and hands the locked
connection to the service's ``migrations/env.py``, which only calls :func:`run_env`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger("gateway.migrate")


def sync_url(database_url: str) -> str:
    """Alembic runs synchronously: psycopg 3 serves both, only the driver name differs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def upgrade(database_url: str, migrations: Path, lock_key: int, revision: str = "head") -> None:
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
            conn.commit()
            try:
                config = Config()
                config.set_main_option("script_location", str(migrations))
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
                conn.commit()
    finally:
        engine.dispose()
    log.info("migrations applied", extra={"revision": revision, "path": str(migrations)})


def run_env() -> None:
    """The body of every ``migrations/env.py``: online only, on the locked connection."""
    if context.is_offline_mode():
        raise SystemExit("migrations run online only (python -m <svc>.migrate)")
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


@dataclass(frozen=True)
class Runner:
    """One service's migrations: its ``migrations/`` folder and its advisory-lock key."""

    name: str
    folder: Path
    lock_key: int

    def upgrade(self, database_url: str, revision: str = "head") -> None:
        upgrade(database_url, self.folder, self.lock_key, revision)

    def cli(self, database_url: Callable[[], str]) -> None:
        """``python -m <svc>.migrate``: migrate the service's configured database."""
        logging.basicConfig(level=logging.INFO)
        self.upgrade(database_url())
        print(f"{self.name}: migrations applied")
