"""Alembic environment, driven programmatically by :mod:`quota_svc.migrate`.

Runs online only, on the connection migrate.py hands over (it holds the
advisory lock that keeps two starting replicas from migrating at once)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
