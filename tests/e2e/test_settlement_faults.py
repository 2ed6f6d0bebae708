"""Settlement under faults (issue 11's acceptance): the four services as processes, each
case bounded and on loopback. After recovery, for the case's tenant:
answers served == committed reservations == history records OK/CANCELLED (by id); every
failed reservation (released or expired) == one ERROR record; no reservation left open,
no duplicate record, nothing left in the outbox, no dead letter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.e2e.conftest import Suite, running_suite, suite_environment
from tests.e2e.world import Tenant, bearer, make_tenant
from tests.support import ServiceProcess, free_port, service_env, wait_serving

TTL = 15  # seconds an unsettled reservation stays open before quota's sweep expires it
TEXT_LIMIT = 2048  # GATEWAY_MAX_TEXT_BYTES of this suite
OK = {history_pb2.INTERACTION_STATUS_OK, history_pb2.INTERACTION_STATUS_CANCELLED}


@pytest.fixture(scope="module")
async def faults(log_dir: Path) -> AsyncIterator[tuple[Suite, str]]:
    overrides = {
        "QUOTA_RESERVATION_TTL_SECONDS": str(TTL),
        "QUOTA_SETTLE_INTERVAL_SECONDS": "0.5",
        "GATEWAY_MAX_TEXT_BYTES": str(TEXT_LIMIT),
    }
    with suite_environment(overrides) as env:
        async with running_suite(env, log_dir) as suite:
            yield suite, env["quota_dsn"]


async def restarted(suite: Suite, name: str) -> None:
    """Started again, and the other services' channels to it reconnected (their reconnect
    backoff is at most 1 s)."""
    await suite.restart(name)
    await asyncio.sleep(1.2)


@dataclass
class Load:
    """What the clients saw: interaction ids of the answers served, failure codes."""

    served: set[str] = field(default_factory=set)
    failures: list[grpc.StatusCode] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


async def chat_into(
    load: Load, call: Awaitable[llm_pb2.ChatResponse], *, replays: bool = False
) -> None:
    """``replays``: calls share idempotency keys, so one answer may come back again."""
    try:
        reply = await call
    except grpc.aio.AioRpcError as err:
        load.failures.append(err.code())
        load.details.append(f"{err.code().name}: {err.details()}")
        return
    if not replays:
        assert reply.interaction_id not in load.served, "one answer served twice"
    load.served.add(reply.interaction_id)


async def served_some(load: Load, n: int = 5, timeout: float = 30.0) -> None:
    """Waits until the load is really flowing (so a fault lands mid-load)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if len(load.served) >= n:
            return
        await asyncio.sleep(0.05)


async def drive(t: Tenant, workers: int, per_worker: int, text: str, load: Load) -> None:
    async def worker(w: int) -> None:
        for i in range(per_worker):
            await chat_into(load, t.chat(f"{text} {w}-{i}"))

    await asyncio.gather(*(worker(w) for w in range(workers)))


def _ledger(dsn: str, tenant_id: str) -> tuple[dict[str, str], dict[str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT request_id, estado FROM reserva_requisicao WHERE distribuidor_id = %s",
            (tenant_id,),
        ).fetchall()
        boxed = conn.execute(
            "SELECT id, state FROM outbox WHERE tenant_id = %s", (tenant_id,)
        ).fetchall()
    return {r[0]: r[1] for r in rows}, {b[0]: b[1] for b in boxed}


async def _records(suite: Suite, tenant_id: str) -> list[history_pb2.Interaction]:
    stub = history_pb2_grpc.HistoryServiceStub(suite.channel("history"))
    out: list[history_pb2.Interaction] = []
    token = ""
    while True:
        reply = await stub.ListInteractions(
            history_pb2.ListInteractionsRequest(
                tenant_id=tenant_id, page_size=200, page_token=token
            ),
            metadata=bearer(suite.admin_key),
            timeout=10,
        )
        out += reply.interactions
        token = reply.next_page_token
        if not token:
            return out


async def settled(
    suite: Suite, dsn: str, t: Tenant, timeout: float = TTL + 30
) -> tuple[set[str], set[str], list[history_pb2.Interaction]]:
    """Waits until every reservation of ``t`` is settled and delivered; returns
    (committed, failed, records)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ledger, outbox = _ledger(dsn, t.tenant_id)
        counted = {r for r, s in ledger.items() if s != "refused"}
        with contextlib.suppress(grpc.aio.AioRpcError):
            records = await _records(suite, t.tenant_id)
            done = "reserved" not in ledger.values()
            delivered = all(s == "delivered" for s in outbox.values())
            if done and delivered and len(records) >= len(counted):
                break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not settled in time: {ledger} / {outbox}")
        await asyncio.sleep(0.2)
    committed = {r for r, s in ledger.items() if s == "committed"}
    failed = {r for r, s in ledger.items() if s in ("released", "expired")}
    ids = [r.interaction_id for r in records]
    assert len(ids) == len(set(ids)), "a record was stored twice"
    assert {r.interaction_id for r in records if r.status in OK} == committed
    errors = {r.interaction_id for r in records if r.status == history_pb2.INTERACTION_STATUS_ERROR}
    assert errors == failed
    assert set(outbox) == committed | failed  # one outbox entry each, all delivered
    return committed, failed, records


async def test_kill_9_of_llm_mid_load(faults: tuple[Suite, str]) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, limit=1000)
    load = Load()
    run = asyncio.create_task(drive(t, 4, 25, "[[delay:40]] llm dies", load))
    await served_some(load)
    suite.kill("llm")
    await asyncio.sleep(0.5)
    await restarted(suite, "llm")
    await run
    committed, failed, _ = await settled(suite, dsn, t)
    assert load.served and load.failures and failed  # calls in flight at the kill expired
    assert load.served <= committed
    # A Settle that committed in the instant before the kill, whose answer never left the
    # process, is charged and recorded but was not received: at most one per worker.
    assert len(committed - load.served) <= 4


async def test_kill_9_of_quota_mid_load(faults: tuple[Suite, str]) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, limit=1000)
    load = Load()
    run = asyncio.create_task(drive(t, 4, 25, "[[delay:40]] quota dies", load))
    await served_some(load)
    suite.kill("quota")
    await asyncio.sleep(1.0)
    await restarted(suite, "quota")
    await run
    committed, _, _ = await settled(suite, dsn, t)
    # Calls that met the outage were retried (Reserve, Settle: idempotent) or failed.
    assert load.served and len(load.served) + len(load.failures) == 100
    assert load.served == committed
    assert await t.used() == len(committed)


async def test_kill_9_of_history_mid_load(faults: tuple[Suite, str]) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, limit=1000)
    load = Load()
    run = asyncio.create_task(drive(t, 4, 25, "history dies", load))
    await served_some(load)
    suite.kill("history")
    await asyncio.sleep(1.0)
    await restarted(suite, "history")
    await run
    committed, failed, _ = await settled(suite, dsn, t)
    assert not load.failures and not failed  # history is not on the answer's path
    assert load.served == committed and len(committed) == 100


async def test_provider_down_nothing_charged_every_attempt_recorded(
    faults: tuple[Suite, str],
) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, base_url=f"http://127.0.0.1:{free_port()}/v1")
    load = Load()
    await drive(t, 2, 5, "nobody home", load)
    assert not load.served and len(load.failures) == 10
    committed, failed, records = await settled(suite, dsn, t)
    assert not committed and len(failed) == 10
    assert all(r.error_reason.startswith("PROVIDER_") for r in records)
    assert await t.used() == 0


async def test_history_down_for_50_requests(faults: tuple[Suite, str]) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, limit=1000)
    suite.stop("history")
    load = Load()
    try:
        await drive(t, 5, 10, "while history sleeps", load)
    finally:
        await restarted(suite, "history")
    assert len(load.served) == 50 and not load.failures
    committed, _, _ = await settled(suite, dsn, t)
    assert committed == load.served


async def test_quota_down_at_settlement(faults: tuple[Suite, str]) -> None:
    suite, dsn = faults
    t = await make_tenant(suite)

    async def unary_call() -> llm_pb2.ChatResponse:
        req = llm_pb2.ChatRequest(
            model=t.model,
            messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="[[delay:800]] u")],
        )
        return await t.llm.Chat(req, metadata=bearer(t.user_key), timeout=2.5)

    unary = asyncio.create_task(unary_call())
    stream_events: list[Any] = []

    async def stream() -> grpc.StatusCode:
        req = llm_pb2.ChatStreamRequest(
            model=t.model,
            messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="[[delay:800]] s")],
        )
        try:
            async for e in t.llm.ChatStream(req, metadata=bearer(t.user_key), timeout=2.5):
                stream_events.append(e)
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    streamed = asyncio.create_task(stream())
    await asyncio.sleep(0.4)  # both reserved, now at the provider
    suite.kill("quota")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await unary
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await streamed == grpc.StatusCode.UNAVAILABLE
        assert stream_events and not any(e.WhichOneof("event") == "done" for e in stream_events)
    finally:
        await restarted(suite, "quota")
    committed, failed, records = await settled(suite, dsn, t)
    # The unary answer never left: released, an error. The stream's deltas did: charged.
    assert len(failed) == 1 and len(committed) == 1
    [charged] = [r for r in records if r.interaction_id in committed]
    assert charged.answer.startswith("Echo:")


async def test_answer_over_historys_limit_is_cut_charged_and_recorded(
    faults: tuple[Suite, str],
) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, token_limit=100_000)
    reply = await t.chat("z" * (TEXT_LIMIT + 500))
    assert reply.finish_reason == "length" and len(reply.content.encode()) == TEXT_LIMIT
    committed, _, records = await settled(suite, dsn, t)
    assert committed == {reply.interaction_id}
    assert records[0].answer_truncated and records[0].answer == reply.content


async def test_twenty_calls_with_one_idempotency_key_some_cancelled(
    faults: tuple[Suite, str],
) -> None:
    suite, dsn = faults
    t = await make_tenant(suite)
    calls = suite.provider_stats()["calls"]
    load = Load()
    first = asyncio.create_task(
        chat_into(load, t.chat("[[delay:600]] once", idempotency_key="k"), replays=True)
    )
    await asyncio.sleep(0.2)
    retries = [
        asyncio.create_task(
            chat_into(load, t.chat("[[delay:600]] once", idempotency_key="k"), replays=True)
        )
        for _ in range(19)
    ]
    await asyncio.sleep(0)
    for task in retries[:6]:
        task.cancel()
    await asyncio.gather(first, *retries, return_exceptions=True)
    assert set(load.failures) <= {grpc.StatusCode.ABORTED}, load.details
    again = await t.chat("[[delay:600]] once", idempotency_key="k")
    load.served.add(again.interaction_id)
    committed, failed, _ = await settled(suite, dsn, t)
    assert load.served == committed and len(committed) == 1 and not failed
    assert suite.provider_stats()["calls"] == calls + 1
    assert await t.used() == 1


async def test_two_llm_replicas_sharing_the_load_and_the_keys(
    faults: tuple[Suite, str],
) -> None:
    suite, dsn = faults
    t = await make_tenant(suite, limit=1000)
    port = free_port()
    env = {
        **service_env("llm"), **suite.env,
        "LLM_PORT": str(port), "LLM_METRICS_PORT": "0", "LLM_HTTP_ENABLED": "false",
    }  # fmt: skip
    second = ServiceProcess("llm_svc", env, suite.log_dir)
    second.start()
    try:
        await wait_serving(f"127.0.0.1:{port}", timeout=60)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stubs = [t.llm, llm_pb2_grpc.LlmServiceStub(channel)]
            calls = suite.provider_stats()["calls"]
            load = Load()

            def one(i: int, replica: int) -> Awaitable[llm_pb2.ChatResponse]:
                req = llm_pb2.ChatRequest(
                    model=t.model,
                    messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content=f"q{i}")],
                    idempotency_key=f"key-{i}",
                )
                return stubs[replica].Chat(req, metadata=bearer(t.user_key), timeout=10)

            await asyncio.gather(
                *(chat_into(load, one(i, r), replays=True) for i in range(30) for r in (0, 1))
            )
    finally:
        second.stop()
    assert set(load.failures) <= {grpc.StatusCode.ABORTED}, load.details
    committed, _, _ = await settled(suite, dsn, t)
    assert load.served == committed and len(committed) == 30
    assert suite.provider_stats()["calls"] == calls + 30  # one provider call per key


async def test_erasure_while_records_are_pending(faults: tuple[Suite, str]) -> None:
    suite, dsn = faults
    t = await make_tenant(suite)
    suite.stop("history")
    load = Load()
    try:
        await drive(t, 2, 5, "soon forgotten", load)
    finally:
        await restarted(suite, "history")
    assert len(load.served) == 10
    stub = history_pb2_grpc.HistoryServiceStub(suite.channel("history"))
    await stub.DeleteUserInteractions(
        history_pb2.DeleteUserInteractionsRequest(
            tenant_id=t.tenant_id, user_id=t.user_id, request_id="erase-1"
        ),
        metadata=bearer(suite.admin_key),
        timeout=10,
    )
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # each pending record is dropped on delivery or purged from the outbox
        _, outbox = _ledger(dsn, t.tenant_id)
        if not outbox or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert outbox == {}, "the erased user's records are still in quota's outbox"
    assert await _records(suite, t.tenant_id) == []  # never resurrected
    assert await t.used() == 10  # the charge stays: erasure removes content, not usage
    after = await t.chat("after the erasure")
    stored = await t.interactions(want=1)
    assert [i.interaction_id for i in stored] == [after.interaction_id]
