"""Apply quota's migrations: ``python -m quota_svc.migrate`` (reads QUOTA_DATABASE_URL)
or ``upgrade(url)``. Safe when replicas run it at once (gateway_common.migrations)."""

from __future__ import annotations

from pathlib import Path

from gateway_common.migrations import Runner

# The lock key is the same for every replica of quota, and differs from the other services'.
RUNNER = Runner("quota", Path(__file__).resolve().parent / "migrations", 0x51_07A_5E4)
upgrade = RUNNER.upgrade

if __name__ == "__main__":
    from quota_svc.config import QuotaSettings

    RUNNER.cli(lambda: QuotaSettings().migrations_url())
