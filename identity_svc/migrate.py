"""Apply identity's migrations: ``python -m identity_svc.migrate`` (reads
IDENTITY_DATABASE_URL) or ``upgrade(url)``. Safe when replicas run it at once."""

from __future__ import annotations

from pathlib import Path

from gateway_common import migrations

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x1D3A71  # the same for every replica of identity: "identity schema"


def upgrade(database_url: str, revision: str = "head") -> None:
    migrations.upgrade(database_url, MIGRATIONS, LOCK_KEY, revision)


if __name__ == "__main__":
    from identity_svc.config import IdentitySettings

    migrations.cli("identity", lambda: IdentitySettings().database_url, upgrade)
