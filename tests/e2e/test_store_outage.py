"""A real service whose database is down reports NOT_SERVING, and recovers by itself."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from gateway_common.healthcheck import check
from tests.support import (
    INTERNAL_TOKEN,
    PG_PORT,
    Cable,
    ServiceProcess,
    free_port,
    fresh_pg_database,
    sqlalchemy_url,
)


async def wait_state(target: str, wanted: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    state = ""
    while asyncio.get_running_loop().time() < deadline:
        state = await check(target, timeout=1.0)
        if state == wanted:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{target} stayed {state}, wanted {wanted}")


@pytest.mark.parametrize("module,prefix", [("identity_svc", "IDENTITY"), ("quota_svc", "QUOTA")])
async def test_starts_without_database_then_migrates_and_serves(module, prefix, log_dir):
    cable = Cable(PG_PORT)
    cable.port = free_port()  # nothing listens there yet: the database is "down"
    port = free_port()
    target = f"127.0.0.1:{port}"
    with fresh_pg_database("outage") as dsn:
        db_name = dsn.rsplit("/", 1)[1]
        env = {
            f"{prefix}_PORT": str(port),
            f"{prefix}_DATABASE_URL": sqlalchemy_url(
                f"postgresql://gateway:gateway@127.0.0.1:{cable.port}/{db_name}"
            ),
            f"{prefix}_HEALTH_INTERVAL_SECONDS": "0.2",
            "GATEWAY_INTERNAL_TOKEN": INTERNAL_TOKEN,
        }
        proc = ServiceProcess(module, env, log_dir).start()
        try:
            await wait_state(target, "NOT_SERVING")
            await asyncio.sleep(1.0)
            assert await check(target) == "NOT_SERVING", proc.log()[-2000:]
            await cable.plug()  # the database comes back
            await wait_state(target, "SERVING")
            with psycopg.connect(dsn) as conn:  # it migrated once the database answered
                assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
            await cable.unplug()  # and goes away again while serving
            await wait_state(target, "NOT_SERVING")
            await cable.plug()
            await wait_state(target, "SERVING")
        finally:
            proc.stop()
            await cable.unplug()


async def test_history_follows_its_mongodb(log_dir):
    from urllib.parse import urlparse

    from tests.support import MONGO_URL, fresh_mongo_database

    upstream = urlparse(MONGO_URL)
    cable = Cable(upstream.port or 27017)
    cable.port = free_port()
    port = free_port()
    target = f"127.0.0.1:{port}"
    env = {
        "HISTORY_PORT": str(port),
        "MONGO_URL": f"mongodb://127.0.0.1:{cable.port}/?directConnection=true",
        "HISTORY_DATABASE": fresh_mongo_database("outage"),
        "HISTORY_HEALTH_INTERVAL_SECONDS": "0.2",
        "HISTORY_MONGO_TIMEOUT_MS": "500",
        "GATEWAY_INTERNAL_TOKEN": INTERNAL_TOKEN,
    }
    proc = ServiceProcess("history_svc", env, log_dir).start()
    try:
        await wait_state(target, "NOT_SERVING")
        await cable.plug()
        await wait_state(target, "SERVING")
        await cable.unplug()
        await wait_state(target, "NOT_SERVING")
        await cable.plug()
        await wait_state(target, "SERVING")
    finally:
        proc.stop()
        await cable.unplug()
