"""Migrations on an empty database, twice and from two "replicas" at once."""

from __future__ import annotations

import threading

import psycopg

from quota_svc import migrate
from tests.support import fresh_pg_database


def test_upgrade_on_empty_database_concurrently_and_again() -> None:
    with fresh_pg_database("quotamig") as dsn:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                migrate.upgrade(dsn)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        migrate.upgrade(dsn)  # a no-op now
        with psycopg.connect(dsn) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            }
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        wanted = {
            "plano_de_uso",
            "assinatura_plano",
            "reserva_requisicao",
            "historico_plano",
            "outbox",
        }
        assert wanted <= tables
        assert version == ("0005_audit_outbox",)
