"""Apply identity's migrations: ``python -m identity_svc.migrate`` (reads IDENTITY_DATABASE_URL)
or ``upgrade(url)``. Safe when replicas run it at once (gateway_common.migrations)."""

from __future__ import annotations

from pathlib import Path

from gateway_common.migrations import Runner

# The lock key is the same for every replica of identity, and differs from the other services'.
RUNNER = Runner("identity", Path(__file__).resolve().parent / "migrations", 0x1D3A71)
upgrade = RUNNER.upgrade

if __name__ == "__main__":
    from identity_svc.config import IdentitySettings

    RUNNER.cli(lambda: IdentitySettings().migrations_url())
