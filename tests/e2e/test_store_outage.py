"""A real service whose database is down reports NOT_SERVING, and recovers by itself."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from gateway_common.healthcheck import check
from tests.support import (
    PG_PORT,
    Cable,
    ServiceProcess,
    as_service,
    create_admin_key,
    free_port,
    fresh_pg_database,
    service_env,
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
            **service_env(module.removesuffix("_svc")),
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
        **service_env("history"),
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


async def test_identity_store_lost_in_the_middle_of_a_call_is_unavailable(log_dir):
    """The call is waiting on a lock inside its transaction when the database goes away:
    UNAVAILABLE (callers retry), never INTERNAL with a driver traceback."""
    import grpc

    from gateway_common.status import error_info
    from llmgw.identity.v1 import identity_pb2, identity_pb2_grpc

    cable = Cable(PG_PORT)
    await cable.plug()
    port = free_port()
    with fresh_pg_database("midcall") as dsn:
        db_name = dsn.rsplit("/", 1)[1]
        env = {
            "IDENTITY_PORT": str(port),
            "IDENTITY_DATABASE_URL": sqlalchemy_url(
                f"postgresql://gateway:gateway@127.0.0.1:{cable.port}/{db_name}"
            ),
            "IDENTITY_AUTH_CACHE_TTL_SECONDS": "120",  # the key stays verified meanwhile
            **service_env("identity"),
        }
        proc = ServiceProcess("identity_svc", env, log_dir).start()
        try:
            await wait_state(f"127.0.0.1:{port}", "SERVING")
            # Made on the database directly: the cable runs on this test's event loop.
            key = await asyncio.to_thread(
                create_admin_key, {**env, "IDENTITY_DATABASE_URL": sqlalchemy_url(dsn)}
            )
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = identity_pb2_grpc.IdentityServiceStub(channel)
                auth = (("authorization", f"Bearer {key}"),)
                await stub.ListTenants(identity_pb2.ListTenantsRequest(), metadata=auth)
                with psycopg.connect(dsn) as locker:
                    locker.execute("LOCK TABLE distribuidor IN ACCESS EXCLUSIVE MODE")
                    call = asyncio.ensure_future(
                        stub.ListTenants(
                            identity_pb2.ListTenantsRequest(), metadata=auth, timeout=20
                        )
                    )
                    await _blocked_on_lock(dsn)
                    await cable.unplug()  # the database goes away mid-call
                    with pytest.raises(grpc.aio.AioRpcError) as exc:
                        await call
                    locker.rollback()
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE, proc.log()[-3000:]
            info = error_info(exc.value)
            assert info is not None and info.reason == "DATABASE_UNAVAILABLE"
            assert "SELECT" not in (exc.value.details() or "")
        finally:
            proc.stop()
            await cable.unplug()


async def _blocked_on_lock(dsn: str, timeout: float = 10.0) -> None:
    """Until some session of the database waits for a lock (the service's call)."""
    deadline = asyncio.get_running_loop().time() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while asyncio.get_running_loop().time() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the call never reached the database")


async def test_history_store_down_during_calls_is_unavailable(log_dir):
    from urllib.parse import urlparse

    import grpc

    from gateway_common.status import error_info
    from llmgw.history.v1 import history_pb2, history_pb2_grpc
    from tests.support import MONGO_URL, fresh_mongo_database

    cable = Cable(urlparse(MONGO_URL).port or 27017)
    await cable.plug()
    port = free_port()
    env = {
        "HISTORY_PORT": str(port),
        "MONGO_URL": f"mongodb://127.0.0.1:{cable.port}/?directConnection=true",
        "HISTORY_DATABASE": fresh_mongo_database("outage_calls"),
        "HISTORY_MONGO_TIMEOUT_MS": "500",
        **service_env("history"),
    }
    proc = ServiceProcess("history_svc", env, log_dir).start()
    try:
        await wait_state(f"127.0.0.1:{port}", "SERVING")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = history_pb2_grpc.HistoryInternalServiceStub(channel)
            item = history_pb2.Interaction(
                interaction_id="0b7d2c1e-1111-4a4a-9c9c-000000000001",
                tenant_id="t",
                user_id="u",
                question="q",
                answer="a",
            )
            item.timestamp.GetCurrentTime()
            request = history_pb2.RecordInteractionsRequest(interactions=[item])
            md = as_service("quota")
            await stub.RecordInteractions(request, metadata=md, timeout=10)
            await cable.unplug()
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await stub.RecordInteractions(request, metadata=md, timeout=10)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE, proc.log()[-3000:]
        info = error_info(exc.value)
        assert info is not None and info.reason == "STORE_UNAVAILABLE"
    finally:
        proc.stop()
        await cable.unplug()
