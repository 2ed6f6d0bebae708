"""Alembic environment of identity_svc: sync psycopg, one advisory lock so replicas
starting together apply the migrations once (the others wait, then find nothing to do)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

# Any constant works as long as it is the same for every replica of identity.
ADVISORY_LOCK_ID = 0x1D3A71


def run_migrations_online() -> None:
    url = context.config.attributes["database_url"]
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("identity_svc migrations run online only")
run_migrations_online()
