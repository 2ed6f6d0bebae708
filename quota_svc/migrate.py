"""Schema migrations of quota's database (Alembic, programmatic config).

``python -m quota_svc.migrate`` upgrades the database of QUOTA_DATABASE_URL;
the service also calls :func:`upgrade` at start. A session-level advisory
lock makes concurrent starts (two replicas) migrate one after the other."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x51_07A_5E4  # arbitrary, constant: "quota schema" advisory lock


def sync_url(url: str) -> str:
    """A URL usable by a blocking engine (psycopg 3 serves both)."""
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return url


def upgrade(database_url: str, revision: str = "head") -> None:
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            conn.commit()
            try:
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def main() -> None:
    from quota_svc.config import QuotaSettings

    upgrade(QuotaSettings().database_url)


if __name__ == "__main__":
    main()
