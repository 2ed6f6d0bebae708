"""identity and quota behind a real PgBouncer in transaction pooling mode (Debian's 1.18):
prepared statements are what breaks there, so they are a setting; migrations take only a
transaction-level lock; the quota counting and identity suites pass through it."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from quota_svc.unit_of_work import make_counting_pool
from tests.ops.pgtools import pg_bin, pgbouncer, run
from tests.support import PG_PORT, ROOT, fresh_pg_database

STATEMENTS = ["SELECT 1", "SELECT 2", "SELECT 3"]


async def run_alternating(url: str, prepare: bool) -> None:
    """Two pooled clients take turns; each statement is its own transaction, so PgBouncer
    hands both the same server connection, one after the other."""
    pool = make_counting_pool(url, 2, 0, prepare=prepare)
    await pool.open(wait=True)
    try:
        async with pool.connection() as a, pool.connection() as b:
            for _ in range(3):
                for conn in (a, b):
                    for sql in STATEMENTS:
                        await conn.execute(sql)
    finally:
        await pool.close()


async def test_prepared_statements_break_behind_the_pooler_and_off_works() -> None:
    with pgbouncer(pool_size=1) as port, fresh_pg_database("bouncer") as dsn:
        url = dsn.replace(f":{PG_PORT}/", f":{port}/")
        with pytest.raises(psycopg.errors.DatabaseError, match="prepared statement"):
            await run_alternating(url, prepare=True)
        await run_alternating(url, prepare=False)  # QUOTA_DB_PREPARED_STATEMENTS=false


def test_quota_counting_and_identity_suites_through_pgbouncer() -> None:
    with pgbouncer() as port:
        env = {
            **os.environ,
            "TEST_PG_POOLER_PORT": str(port),
            "QUOTA_DB_PREPARED_STATEMENTS": "false",
            "IDENTITY_DB_PREPARED_STATEMENTS": "false",
        }
        suites = ["tests/integration/quota/test_counting.py", "tests/integration/identity"]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        served = transactions_by_database(port)
    # The suites' databases really were served by the pooler, heavily.
    assert sum(n for db, n in served.items() if db.startswith("t_quota_")) > 100, served
    assert sum(n for db, n in served.items() if db.startswith("t_identity")) > 100, served


def transactions_by_database(port: int) -> dict[str, int]:
    """PgBouncer's admin console (``SHOW STATS``): transactions per database."""
    argv = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d"]
    lines = run([*argv, "pgbouncer", "-AtF", "|", "-c", "SHOW STATS"]).splitlines()
    return {line.split("|")[0]: int(line.split("|")[1]) for line in lines if "|" in line}
