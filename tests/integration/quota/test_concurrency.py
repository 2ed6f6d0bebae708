"""Exact counting under concurrency: two quota_svc processes on one database,
many connections, one hot user."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psycopg
import pytest

from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from tests.integration.quota.conftest import (
    INTERNAL,
    Quota,
    new_plan,
    reason_of,
    settle_request,
    subscribe,
)
from tests.support import ServiceProcess, free_port, service_env, wait_serving

LIMIT = 100
CALLS = 500
CHANNELS = 20


@pytest.fixture(scope="module")
async def replicas(quota_settings, log_dir: Path) -> AsyncIterator[list[str]]:
    procs, targets = [], []
    for _ in range(2):
        port = free_port()
        env = {
            "QUOTA_DATABASE_URL": quota_settings.database_url,
            "QUOTA_PORT": str(port),
            "QUOTA_METRICS_PORT": "0",
            "QUOTA_DB_POOL_SIZE": "10",
            "QUOTA_SETTLE_INTERVAL_SECONDS": "0",
            "QUOTA_RELAY_ENABLED": "false",
            **service_env("quota"),
            "QUOTA_LOG_LEVEL": "WARNING",
        }
        procs.append(ServiceProcess("quota_svc", env, log_dir).start())
        targets.append(f"127.0.0.1:{port}")
    try:
        for target, proc in zip(targets, procs, strict=True):
            try:
                await wait_serving(target, timeout=30)
            except TimeoutError:
                pytest.fail(f"quota_svc did not start:\n{proc.log()[-3000:]}")
        yield targets
    finally:
        for proc in procs:
            proc.stop()


async def _fire(targets: list[str], tenant_id: str, user_id: str, release_every: int):
    """CALLS reserves over CHANNELS channels spread on the replicas, all at once;
    every ``release_every``-th success is released, the others committed."""
    channels = [grpc.aio.insecure_channel(targets[i % len(targets)]) for i in range(CHANNELS)]
    stubs = [quota_pb2_grpc.QuotaInternalServiceStub(c) for c in channels]
    gate = asyncio.Event()

    async def one(i: int) -> str:
        stub = stubs[i % CHANNELS]
        rid = f"cc-{uuid.uuid4().hex}"
        await gate.wait()
        try:
            await stub.Reserve(
                quota_pb2.ReserveRequest(request_id=rid, tenant_id=tenant_id, user_id=user_id),
                metadata=INTERNAL,
                timeout=60,
            )
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
            return "refused"
        released = bool(release_every) and i % release_every == 0
        await stub.Settle(settle_request(tenant_id, user_id, rid, not released), metadata=INTERNAL)
        return "released" if released else "committed"

    try:
        tasks = [asyncio.create_task(one(i)) for i in range(CALLS)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)
    finally:
        for c in channels:
            await c.close()


def _db_counts(dsn: str, user_id: str) -> tuple[int, dict[str, int]]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT requisicoes_utilizadas_mes FROM assinatura_plano WHERE usuario_id = %s",
            (user_id,),
        ).fetchone()
        assert row is not None
        counter = int(row[0])
        states: dict[str, int] = dict(
            conn.execute(
                "SELECT estado, count(*) FROM reserva_requisicao WHERE usuario_id = %s"
                " GROUP BY estado",
                (user_id,),
            ).fetchall()
        )
        records = conn.execute(
            "SELECT count(*) FROM outbox o JOIN reserva_requisicao r ON r.request_id = o.id"
            " WHERE r.usuario_id = %s AND r.estado IN ('committed', 'released')",
            (user_id,),
        ).fetchone()
    # Every settled reservation has exactly its one record in the outbox.
    assert records is not None
    assert records[0] == states.get("committed", 0) + states.get("released", 0)
    return counter, states


async def _hot_user(quota: Quota) -> tuple[str, str]:
    tenant = quota.new_tenant()
    plan = await new_plan(quota, tenant.admin_key, tenant.tenant_id, LIMIT)
    # Real time: the replicas run the system clock.
    quota.clock.current = datetime.now(UTC)
    sub = await subscribe(quota, tenant, plan)
    return tenant.tenant_id, sub.user_id


async def test_exactly_the_limit_succeeds(quota: Quota, replicas, quota_dsn: str) -> None:
    tenant_id, user_id = await _hot_user(quota)
    outcomes = await _fire(replicas, tenant_id, user_id, release_every=0)
    assert outcomes.count("committed") == LIMIT
    assert outcomes.count("refused") == CALLS - LIMIT
    counter, states = _db_counts(quota_dsn, user_id)
    assert counter == LIMIT
    assert states.get("committed") == LIMIT and "reserved" not in states


async def test_releases_mixed_in(quota: Quota, replicas, quota_dsn: str) -> None:
    tenant_id, user_id = await _hot_user(quota)
    outcomes = await _fire(replicas, tenant_id, user_id, release_every=3)
    reserves = outcomes.count("committed") + outcomes.count("released")
    releases = outcomes.count("released")
    assert releases > 0
    counter, states = _db_counts(quota_dsn, user_id)
    assert counter == reserves - releases == states["committed"]
    assert states["released"] == releases and "reserved" not in states
    # Releases made room, so more than LIMIT reserves succeeded, never more at once.
    assert reserves >= LIMIT
    assert counter <= LIMIT


async def test_one_idempotency_key_across_replicas_counts_once(
    quota: Quota, replicas, quota_dsn: str
) -> None:
    """20 concurrent Reserves with one key over two replicas: one reservation is made;
    the others are told it is in progress; once it is committed, they get it back."""
    tenant_id, user_id = await _hot_user(quota)
    channels = [grpc.aio.insecure_channel(t) for t in replicas]
    stubs = [quota_pb2_grpc.QuotaInternalServiceStub(c) for c in channels]
    gate = asyncio.Event()

    async def one(i: int) -> tuple[str, str]:
        await gate.wait()
        req = quota_pb2.ReserveRequest(
            request_id=f"k-{i}-{uuid.uuid4().hex}",
            tenant_id=tenant_id,
            user_id=user_id,
            idempotency_key="same-key",
        )
        try:
            reply = await stubs[i % 2].Reserve(req, metadata=INTERNAL, timeout=30)
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.ABORTED, err
            return "in_progress", reason_of(err)
        return "reserved", reply.reservation.request_id

    try:
        tasks = [asyncio.create_task(one(i)) for i in range(20)]
        gate.set()
        outcomes = await asyncio.gather(*tasks)
        winners = [rid for kind, rid in outcomes if kind == "reserved"]
        assert len(winners) == 1
        assert {r for k, r in outcomes if k == "in_progress"} == {"IDEMPOTENCY_KEY_IN_PROGRESS"}
        await stubs[0].Settle(settle_request(tenant_id, user_id, winners[0]), metadata=INTERNAL)
        again = await stubs[1].Reserve(
            quota_pb2.ReserveRequest(
                request_id="k-late", tenant_id=tenant_id, user_id=user_id,
                idempotency_key="same-key",
            ),
            metadata=INTERNAL,
        )  # fmt: skip
        assert again.replayed and again.reservation.request_id == winners[0]
    finally:
        for c in channels:
            await c.close()
    counter, states = _db_counts(quota_dsn, user_id)
    assert counter == 1 and states == {"committed": 1}
