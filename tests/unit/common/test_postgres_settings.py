"""The PostgreSQL knobs ops set for PgBouncer and failover (no database needed)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from gateway_common.db import libpq_conninfo
from quota_svc.config import QuotaSettings


def test_a_multi_host_url_becomes_a_libpq_failover_list() -> None:
    url = (
        "postgresql+psycopg://gateway:pw@/quota?host=pg-a:5432&host=pg-b:6543"
        "&target_session_attrs=read-write"
    )
    info = conninfo_to_dict(libpq_conninfo(url))
    assert info["host"] == "pg-a,pg-b" and info["port"] == "5432,6543"
    assert info["target_session_attrs"] == "read-write" and info["dbname"] == "quota"


def test_migrations_use_their_own_url_when_set(monkeypatch) -> None:
    monkeypatch.setenv("QUOTA_DATABASE_URL", "postgresql+psycopg://u:p@pgbouncer:6432/quota")
    assert QuotaSettings().migrations_url().endswith("@pgbouncer:6432/quota")
    monkeypatch.setenv("QUOTA_MIGRATION_DATABASE_URL", "postgresql+psycopg://u:p@primary/quota")
    monkeypatch.setenv("QUOTA_DB_PREPARED_STATEMENTS", "false")
    settings = QuotaSettings()
    assert settings.migrations_url() == "postgresql+psycopg://u:p@primary/quota"
    assert settings.db_prepared_statements is False
