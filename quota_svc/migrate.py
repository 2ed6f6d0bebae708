"""Apply quota's migrations: ``python -m quota_svc.migrate`` (reads QUOTA_DATABASE_URL)
or ``upgrade(url)``. Safe when replicas run it at once."""

from __future__ import annotations

from pathlib import Path

from gateway_common import migrations

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x51_07A_5E4  # the same for every replica of quota: "quota schema"


def upgrade(database_url: str, revision: str = "head") -> None:
    migrations.upgrade(database_url, MIGRATIONS, LOCK_KEY, revision)


if __name__ == "__main__":
    from quota_svc.config import QuotaSettings

    migrations.cli("quota", lambda: QuotaSettings().database_url, upgrade)
