"""RecordInteractions and ListErasures through gRPC on the real store (FerretDB or MongoDB):
idempotent per interaction_id, one refused interaction does not fail the others, erased
users' records never come back."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc

from gateway_common import mongo
from history_svc.bootstrap import build
from history_svc.config import HistorySettings
from llmgw.history.v1 import history_pb2 as pb
from llmgw.history.v1 import history_pb2_grpc
from tests.integration.history.conftest import INTERNAL, Api, bearer
from tests.integration.history.helpers import expect_error, record_many, to_proto, ts
from tests.support import free_port, running_server, service_fields
from tests.unit.history.factories import interaction
from tests.unit.history.fakes import FakeAuthenticator

C = grpc.StatusCode
CREATED, DUPLICATE = pb.RECORD_OUTCOME_CREATED, pb.RECORD_OUTCOME_DUPLICATE
ERASED, REJECTED = pb.RECORD_OUTCOME_ERASED, pb.RECORD_OUTCOME_REJECTED
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
AGO = NOW - dt.timedelta(minutes=5)


def outcomes(results: list[pb.RecordResult]) -> list[int]:
    return [r.outcome for r in results]


async def test_idempotent_inside_a_batch_and_across_batches(api: Api):
    a, b, c = (interaction(seconds=i) for i in range(3))
    changed = to_proto(a)
    changed.answer = "something else"
    results = await record_many(api, a, b, changed, a)
    assert outcomes(results) == [CREATED, CREATED, DUPLICATE, DUPLICATE]
    assert [r.interaction_id for r in results] == [a.interaction_id, b.interaction_id] * 1 + [
        a.interaction_id
    ] * 2
    assert outcomes(await record_many(api, c, b, a)) == [CREATED, DUPLICATE, DUPLICATE]
    assert await api.collection.count_documents({}) == 3
    stored = await api.collection.find_one({"_id": a.interaction_id})
    assert stored is not None and stored["conteudo_resposta"] == "Paris."


async def test_concurrent_replays_store_each_id_once(api: Api):
    items = [interaction(seconds=i) for i in range(40)]
    replies = await asyncio.gather(*(record_many(api, *items) for _ in range(4)))
    for i in range(len(items)):
        assert sorted(r[i].outcome for r in replies) == [CREATED] + [DUPLICATE] * 3
    assert await api.collection.count_documents({}) == 40


async def test_a_rejected_interaction_does_not_fail_the_others(api: Api):
    no_time = to_proto(interaction())
    no_time.ClearField("timestamp")
    bad_id = to_proto(interaction())
    bad_id.interaction_id = "not-a-uuid"
    no_user = to_proto(interaction())
    no_user.user_id = ""
    bad_key = to_proto(interaction())
    bad_key.metadata.prompt_parameters.update({"a.b": 1})
    good = interaction()
    results = await record_many(api, no_time, bad_id, no_user, bad_key, good)
    assert outcomes(results) == [REJECTED] * 4 + [CREATED]
    assert [r.reason for r in results[:4]] == [
        "FIELD_REQUIRED",
        "INVALID_ID",
        "FIELD_REQUIRED",
        "INVALID_PARAMETER_KEY",
    ]
    assert results[1].interaction_id == "not-a-uuid"
    assert [d["_id"] async for d in api.collection.find({})] == [good.interaction_id]


async def test_an_id_used_by_another_tenant_is_rejected(api: Api):
    a = interaction()
    await record_many(api, a)
    other = to_proto(a)
    other.tenant_id = "tenant-b"
    (result,) = await record_many(api, other)
    assert (result.outcome, result.reason) == (REJECTED, "INTERACTION_ID_CONFLICT")
    assert "Paris" not in result.message


async def test_batch_bounds(api: Api):
    for size in (0, 501):
        req = pb.RecordInteractionsRequest(
            interactions=[to_proto(interaction(seconds=i)) for i in range(size)]
        )
        await expect_error(
            api.internal.RecordInteractions(req, metadata=INTERNAL), C.INVALID_ARGUMENT
        )
    full = [interaction(seconds=i, question="q", answer="a") for i in range(500)]
    assert outcomes(await record_many(api, *full)) == [CREATED] * 500


async def test_erasure_tombstone_drops_older_records_even_on_replay(api: Api):
    before = interaction(at=NOW - dt.timedelta(minutes=5))
    await record_many(api, before, interaction(user="user-a2", at=NOW - dt.timedelta(minutes=5)))
    erase = pb.DeleteUserInteractionsRequest(tenant_id="tenant-a", user_id="user-a1")
    assert (
        await api.public.DeleteUserInteractions(erase, metadata=bearer("key-admin-a"))
    ).deleted_count == 1
    listed = await api.internal.ListErasures(pb.ListErasuresRequest(), metadata=INTERNAL)
    (tombstone,) = listed.erasures
    assert (tombstone.tenant_id, tombstone.user_id) == ("tenant-a", "user-a1")
    erase_time = tombstone.erase_time.ToDatetime(tzinfo=dt.UTC)
    pending = interaction(at=erase_time - dt.timedelta(seconds=1))
    exactly = interaction(at=erase_time)
    later = interaction(at=erase_time + dt.timedelta(milliseconds=1))
    peer = interaction(user="user-a2", at=erase_time - dt.timedelta(seconds=1))
    other_tenant = interaction("tenant-b", "user-a1", at=erase_time - dt.timedelta(seconds=1))
    results = await record_many(api, before, pending, exactly, later, peer, other_tenant)
    assert outcomes(results) == [ERASED, ERASED, ERASED, CREATED, CREATED, CREATED]
    mine = {
        d["_id"]
        async for d in api.collection.find({"usuario_id": "user-a1", "distribuidor_id": "tenant-a"})
    }
    assert mine == {later.interaction_id}
    # A second erasure moves the tombstone forward, and is listed once.
    await api.public.DeleteUserInteractions(erase, metadata=bearer("key-admin-a"))
    again = await api.internal.ListErasures(pb.ListErasuresRequest(), metadata=INTERNAL)
    assert (
        len(again.erasures) == 1
        and again.erasures[0].erase_time.ToDatetime(tzinfo=dt.UTC) >= erase_time
    )


async def test_erasure_racing_batches_leaves_nothing_of_the_user(api: Api):
    batches = [
        [
            interaction(at=NOW - dt.timedelta(minutes=5), seconds=(b * 50 + i) / 1000)
            for i in range(50)
        ]
        for b in range(4)
    ]
    erase = pb.DeleteUserInteractionsRequest(tenant_id="tenant-a", user_id="user-a1")
    calls = [record_many(api, *b) for b in batches]
    calls.insert(2, api.public.DeleteUserInteractions(erase, metadata=bearer("key-admin-a")))
    await asyncio.gather(*calls)
    # Replays after the erasure: every one of them is older than it.
    for b in batches:
        assert set(outcomes(await record_many(api, *b))) == {ERASED}
    assert await api.collection.count_documents({"usuario_id": "user-a1"}) == 0


async def test_list_erasures_pages_oldest_first_since_a_time(api: Api):
    admin = bearer("key-admin-a")
    for i in range(5):
        await api.public.DeleteUserInteractions(
            pb.DeleteUserInteractionsRequest(tenant_id="tenant-a", user_id=f"user-{i}"),
            metadata=admin,
        )
    seen, token = [], ""
    while True:
        page = await api.internal.ListErasures(
            pb.ListErasuresRequest(page_size=2, page_token=token), metadata=INTERNAL
        )
        seen += list(page.erasures)
        token = page.next_page_token
        if not token:
            break
    assert [e.user_id for e in seen] == [f"user-{i}" for i in range(5)]
    times = [e.erase_time.ToDatetime(tzinfo=dt.UTC) for e in seen]
    assert times == sorted(times)
    since = await api.internal.ListErasures(
        pb.ListErasuresRequest(since_time=ts(times[3])), metadata=INTERNAL
    )
    assert [e.user_id for e in since.erasures][-2:] == ["user-3", "user-4"]
    await expect_error(
        api.internal.ListErasures(pb.ListErasuresRequest(page_token="zzz"), metadata=INTERNAL),
        C.INVALID_ARGUMENT,
    )


async def test_store_down_is_unavailable_for_the_whole_batch():
    settings = HistorySettings().model_copy(
        update={"database": "nowhere", **service_fields("history")}
    )
    down = mongo.make_client(f"mongodb://127.0.0.1:{free_port()}/", timeout_ms=300)
    spec = build(settings, authenticator=FakeAuthenticator(), client=down)
    async with running_server(settings, spec) as (_, channel):
        stub = history_pb2_grpc.HistoryInternalServiceStub(channel)
        req = pb.RecordInteractionsRequest(interactions=[to_proto(interaction())])
        await expect_error(
            stub.RecordInteractions(req, metadata=INTERNAL), C.UNAVAILABLE, "STORE_UNAVAILABLE"
        )
        await expect_error(
            stub.ListErasures(pb.ListErasuresRequest(), metadata=INTERNAL),
            C.UNAVAILABLE,
            "STORE_UNAVAILABLE",
        )
