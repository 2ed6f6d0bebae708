"""The one migration runner of the services that own PostgreSQL (Alembic, programmatic).

:func:`upgrade` runs every pending migration in one transaction that first takes a
transaction-level advisory lock (``pg_advisory_xact_lock``), so replicas starting together
apply them once (the others wait, then find nothing to do) and a failed migration leaves
nothing behind. No session state: the lock dies with the transaction, so this also holds
through PgBouncer in transaction pooling mode (though ``*_MIGRATION_DATABASE_URL`` should
name the primary directly). The locked connection goes to the service's
``migrations/env.py``, which only calls :func:`run_env`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from gateway_common import system_events

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
        with engine.begin() as conn:  # commits (and unlocks) at the end, or rolls back
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            before = _version(conn)
            config = Config()
            config.set_main_option("script_location", str(migrations))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            after = _version(conn)
    finally:
        engine.dispose()
    log.info("migrations applied", extra={"revision": revision, "path": str(migrations)})
    if after != before:  # something was applied (a replica that found nothing to do: silent)
        system_events.emit(
            "migrations_applied",
            system_events.Severity.INFO,
            schema=migrations.parent.name,
            from_revision=before,
            to_revision=after,
        )


def _version(conn: Connection) -> str:
    """The schema's Alembic revision ("" before the first migration)."""
    exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
    if exists is None:
        return ""
    return ",".join(
        sorted(
            str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        )
    )


def run_env() -> None:
    """The body of every ``migrations/env.py``: online only, inside the locked transaction."""
    if context.is_offline_mode():
        raise SystemExit("migrations run online only (python -m <svc>.migrate)")
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=None)
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
