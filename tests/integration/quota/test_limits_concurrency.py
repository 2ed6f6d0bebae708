"""The token budget and the per-minute limit under concurrency: two quota_svc processes
on one database, concurrent reservations against a small budget, zero overshoot asserted
in PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime

import grpc
import psycopg

from llmgw.quota.v1 import quota_pb2_grpc
from tests.integration.quota.conftest import INTERNAL, Quota
from tests.integration.quota.limits_support import limited_user, reserve_request, settle_tokens
from tests.integration.quota.test_concurrency import replicas  # noqa: F401 - the fixture

CALLS = 300
CHANNELS = 20
BUDGET = 5000  # tokens
BASE, MAX = 20, 30  # each hold is 50 tokens at most: 100 fit, if nobody settles short


async def _burst(targets: list[str], tenant_id: str, user_id: str, settle: bool) -> list[str]:
    channels = [grpc.aio.insecure_channel(targets[i % len(targets)]) for i in range(CHANNELS)]
    stubs = [quota_pb2_grpc.QuotaInternalServiceStub(c) for c in channels]
    gate = asyncio.Event()
    rng = random.Random(17)

    async def one(i: int) -> str:
        stub = stubs[i % CHANNELS]
        rid = f"tb-{uuid.uuid4().hex}"
        await gate.wait()
        try:
            reply = await stub.Reserve(
                reserve_request(tenant_id, user_id, BASE, 1, MAX, rid), metadata=INTERNAL,
                timeout=60,
            )  # fmt: skip
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
            return "refused"
        if settle:  # an actual usage within the bound: the rest goes back to the budget
            r = reply.reservation
            used = rng.randint(1, int(r.tokens_reserved))
            req = settle_tokens(tenant_id, user_id, rid, min(used, BASE), max(used - BASE, 0))
            await stub.Settle(req, metadata=INTERNAL, timeout=60)
        return "admitted"

    try:
        tasks = [asyncio.create_task(one(i)) for i in range(CALLS)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)
    finally:
        for c in channels:
            await c.close()


def _tokens_in_db(dsn: str, user_id: str) -> tuple[int, int, int]:
    """(the subscription's counter, the sum the ledger says is charged or held, rows)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT tokens_utilizados_mes FROM assinatura_plano WHERE usuario_id = %s",
            (user_id,),
        ).fetchone()
        led = conn.execute(
            "SELECT COALESCE(sum(COALESCE(tokens_cobrados, tokens_reservados)), 0), count(*)"
            " FROM reserva_requisicao WHERE usuario_id = %s AND estado <> 'refused'",
            (user_id,),
        ).fetchone()
    assert row is not None and led is not None
    return int(row[0]), int(led[0]), int(led[1])


async def _user(quota: Quota, **limits: int) -> tuple[str, str]:
    quota.clock.current = datetime.now(UTC)  # the replicas run the system clock
    tenant, user = await limited_user(quota, monthly=100_000, **limits)  # type: ignore[arg-type]
    return tenant.tenant_id, user


async def test_holds_never_exceed_the_budget(quota: Quota, replicas, quota_dsn: str) -> None:  # noqa: F811
    tenant_id, user_id = await _user(quota, tokens=BUDGET)
    outcomes = await _burst(replicas, tenant_id, user_id, settle=False)
    counter, ledger, rows = _tokens_in_db(quota_dsn, user_id)
    # Every hold is exactly 50 (20 + 1 x 30, never lowered while 50 fit): exactly 100 fit.
    assert outcomes.count("admitted") == rows == BUDGET // (BASE + MAX)
    assert counter == ledger == BUDGET


async def test_settling_short_makes_room_and_never_overshoots(
    quota: Quota,
    replicas,  # noqa: F811
    quota_dsn: str,
) -> None:
    tenant_id, user_id = await _user(quota, tokens=BUDGET)
    outcomes = await _burst(replicas, tenant_id, user_id, settle=True)
    counter, ledger, rows = _tokens_in_db(quota_dsn, user_id)
    assert counter == ledger <= BUDGET
    assert rows == outcomes.count("admitted") > BUDGET // (BASE + MAX)  # refunds made room
    with psycopg.connect(quota_dsn) as conn:
        open_rows = conn.execute(
            "SELECT count(*) FROM reserva_requisicao WHERE usuario_id = %s AND estado = 'reserved'",
            (user_id,),
        ).fetchone()
    assert open_rows is not None and open_rows[0] == 0


async def test_per_minute_limit_is_exact_across_replicas(
    quota: Quota,
    replicas,  # noqa: F811
    quota_dsn: str,
) -> None:
    now = datetime.now(UTC)
    if now.second >= 50:  # keep the burst inside one minute window
        await asyncio.sleep(61 - now.second)
    tenant_id, user_id = await _user(quota, per_minute=40)
    outcomes = await _burst(replicas, tenant_id, user_id, settle=False)
    with psycopg.connect(quota_dsn) as conn:
        windows = conn.execute(
            "SELECT minuto_fim, count(*) FROM reserva_requisicao WHERE usuario_id = %s"
            " AND estado = 'reserved' GROUP BY 1",
            (user_id,),
        ).fetchall()
    assert len(windows) == 1 and windows[0][1] == 40
    assert outcomes.count("admitted") == 40
