"""The gRPC surface through a real in-process server: codes, ErrorInfo reasons, limits."""

from __future__ import annotations

import datetime as dt

import grpc

from history_svc.mongo_documents import escape_text
from history_svc.mongo_interactions import stores_nul
from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import INTERNAL, Api, bearer
from tests.integration.history.helpers import expect_error, record, record_many, to_proto, ts
from tests.support import as_service, wait_serving
from tests.unit.history.factories import BASE, interaction

C = grpc.StatusCode
KIB256 = 256 * 1024


async def test_serving_once_the_store_answers(api: Api):
    await wait_serving(api.target, timeout=10)


async def test_internal_rpcs_need_a_service_credential(api: Api):
    batch = pb.RecordInteractionsRequest(interactions=[to_proto(interaction())])
    wrong = (("x-service-token", "nope"),)
    for metadata in (None, wrong, bearer("key-platform")):
        await expect_error(
            api.internal.RecordInteractions(batch, metadata=metadata),
            C.UNAUTHENTICATED,
            "INTERNAL_ONLY",
        )
        await expect_error(
            api.internal.ListErasures(pb.ListErasuresRequest(), metadata=metadata),
            C.UNAUTHENTICATED,
            "INTERNAL_ONLY",
        )
    for caller in ("llm", "history", "identity"):  # known services, but not the relay's quota
        await expect_error(
            api.internal.RecordInteractions(batch, metadata=as_service(caller)),
            C.PERMISSION_DENIED,
            "CALLER_NOT_ALLOWED",
        )
        await expect_error(
            api.internal.ListErasures(pb.ListErasuresRequest(), metadata=as_service(caller)),
            C.PERMISSION_DENIED,
            "CALLER_NOT_ALLOWED",
        )
    assert await api.collection.count_documents({}) == 0


async def test_256_kib_question_and_answer_pass_and_one_more_byte_is_rejected(api: Api):
    big = interaction(question="q" * (KIB256 - 2) + "é", answer="😀" * (KIB256 // 4))
    await record(api, big)
    got = await api.public.GetInteraction(
        pb.GetInteractionRequest(tenant_id="tenant-a", interaction_id=big.interaction_id),
        metadata=bearer("key-admin-a"),
    )
    assert got.interaction.question == big.question and got.interaction.answer == big.answer
    overs = []
    for name in ("question", "answer"):
        over = to_proto(interaction())
        setattr(over, name, "a" * (KIB256 + 1))
        overs.append(over)
    results = await record_many(api, *overs)
    assert [(r.outcome, r.reason) for r in results] == [
        (pb.RECORD_OUTCOME_REJECTED, "FIELD_TOO_LONG")
    ] * 2
    assert "interaction.question" in results[0].message
    assert "interaction.answer" in results[1].message


async def test_finish_reason_and_truncation_flag_are_stored_and_returned(api: Api):
    item = interaction(answer="cut here")
    proto = to_proto(item)
    proto.finish_reason, proto.answer_truncated = "length", True
    await record_many(api, proto)
    got = await api.public.GetInteraction(
        pb.GetInteractionRequest(tenant_id="tenant-a", interaction_id=item.interaction_id),
        metadata=bearer("key-admin-a"),
    )
    assert (got.interaction.finish_reason, got.interaction.answer_truncated) == ("length", True)
    doc = await api.collection.find_one({"_id": item.interaction_id})
    assert doc is not None and doc["motivo_parada"] == "length" and doc["resposta_truncada"]


UNICODE = [
    "emoji 😀👍🏽👨‍👩‍👧‍👦🏳️‍🌈",
    "CJK 中文 日本語 한국어 𠀋𡈽",
    "RTL עברית العربية \u200f mixed \u202e",
    "combining e\u0301 a\u0308 n\u0303 Z\u0351\u0333\u0300",
    "controls \t\n\r \x00 nul \x7f \u2028 \ufeff",
    "math \U0001d518\U0001d52b\U0001d526 \U0010fffd",
]


async def test_any_unicode_stored_and_returned_intact(api: Api):
    # Where the server cannot hold U+0000 (FerretDB on PostgreSQL) the stored text is
    # the reversible escape of it; on MongoDB it is the text itself.
    raw_nul = await stores_nul(api.collection.database)
    for i, text in enumerate(UNICODE):
        item = interaction(question=text, answer=text[::-1], seconds=i)
        await record(api, item)
        got = await api.public.GetInteraction(
            pb.GetInteractionRequest(tenant_id="tenant-a", interaction_id=item.interaction_id),
            metadata=bearer("key-user-a1"),
        )
        assert got.interaction.question == text and got.interaction.answer == text[::-1]
        doc = await api.collection.find_one({"_id": item.interaction_id})
        assert doc is not None
        assert doc["conteudo_pergunta"] == (text if raw_nul else escape_text(text))


async def test_public_rpcs_need_a_valid_key(api: Api):
    req = pb.ListInteractionsRequest(tenant_id="tenant-a")
    await expect_error(api.public.ListInteractions(req), C.UNAUTHENTICATED, "MISSING_CREDENTIAL")
    await expect_error(
        api.public.ListInteractions(req, metadata=bearer("wrong")),
        C.UNAUTHENTICATED,
        "INVALID_API_KEY",
    )
    await expect_error(
        api.public.ListInteractions(req, metadata=INTERNAL), C.UNAUTHENTICATED, "MISSING_CREDENTIAL"
    )


async def test_codes_of_the_public_rpcs(api: Api):
    item = interaction(user="user-a2")
    await record(api, item)
    get = pb.GetInteractionRequest(tenant_id="tenant-a", interaction_id=item.interaction_id)
    await expect_error(
        api.public.GetInteraction(get, metadata=bearer("key-admin-b")),
        C.PERMISSION_DENIED,
        "TENANT_ACCESS_DENIED",
    )
    await expect_error(
        api.public.GetInteraction(get, metadata=bearer("key-user-a1")),
        C.NOT_FOUND,
        "INTERACTION_NOT_FOUND",
    )
    assert (
        await api.public.GetInteraction(get, metadata=bearer("key-user-a2"))
    ).interaction.user_id == "user-a2"
    await expect_error(
        api.public.ListInteractions(
            pb.ListInteractionsRequest(tenant_id="tenant-a", user_id="user-a2"),
            metadata=bearer("key-user-a1"),
        ),
        C.PERMISSION_DENIED,
        "USER_ACCESS_DENIED",
    )
    await expect_error(
        api.public.ListInteractions(pb.ListInteractionsRequest(), metadata=bearer("key-platform")),
        C.INVALID_ARGUMENT,
    )
    await expect_error(
        api.public.ListInteractions(
            pb.ListInteractionsRequest(tenant_id="tenant-a", page_token="zzz"),
            metadata=bearer("key-admin-a"),
        ),
        C.INVALID_ARGUMENT,
    )
    await expect_error(
        api.public.SearchInteractions(
            pb.SearchInteractionsRequest(tenant_id="tenant-a"), metadata=bearer("key-admin-a")
        ),
        C.INVALID_ARGUMENT,
    )
    stats = pb.GetUsageStatsRequest(
        tenant_id="tenant-a", start_time=ts(BASE), end_time=ts(BASE + dt.timedelta(days=1))
    )
    await expect_error(
        api.public.GetUsageStats(stats, metadata=bearer("key-admin-a")), C.INVALID_ARGUMENT
    )
    stats.group_by = pb.GROUP_BY_USER
    stats.end_time.CopyFrom(ts(BASE + dt.timedelta(days=367)))
    await expect_error(
        api.public.GetUsageStats(stats, metadata=bearer("key-admin-a")), C.INVALID_ARGUMENT
    )
    await expect_error(
        api.public.DeleteUserInteractions(
            pb.DeleteUserInteractionsRequest(tenant_id="tenant-a", user_id="user-a2"),
            metadata=bearer("key-user-a2"),
        ),
        C.PERMISSION_DENIED,
        "TENANT_ACCESS_DENIED",
    )


async def test_list_filters_and_stats_through_grpc(api: Api):
    await record(api, interaction(seconds=0, model="m1"))
    await record(
        api,
        interaction(seconds=10, model="m2", prompt_tokens=1, completion_tokens=1, latency_ms=40),
    )
    await record(api, interaction(seconds=20, model="m2", latency_ms=80))
    admin = bearer("key-admin-a")
    by_model = await api.public.ListInteractions(
        pb.ListInteractionsRequest(tenant_id="tenant-a", model_id="m2"), metadata=admin
    )
    assert [i.model_id for i in by_model.interactions] == ["m2", "m2"]
    window = await api.public.ListInteractions(
        pb.ListInteractionsRequest(
            tenant_id="tenant-a",
            start_time=ts(BASE + dt.timedelta(seconds=10)),
            end_time=ts(BASE + dt.timedelta(seconds=20)),
        ),
        metadata=admin,
    )
    assert [i.timestamp.ToDatetime(tzinfo=dt.UTC) for i in window.interactions] == [
        BASE + dt.timedelta(seconds=10)
    ]
    stats = await api.public.GetUsageStats(
        pb.GetUsageStatsRequest(
            tenant_id="tenant-a",
            start_time=ts(BASE),
            end_time=ts(BASE + dt.timedelta(hours=1)),
            group_by=pb.GROUP_BY_MODEL,
        ),
        metadata=admin,
    )
    assert [(b.key, b.interactions, b.tokens) for b in stats.buckets] == [
        ("m1", 1, 9),
        ("m2", 2, 11),
    ]
    assert stats.buckets[1].average_latency_ms == 60.0
    assert (stats.total.key, stats.total.interactions, stats.total.prompt_tokens) == ("", 3, 15)
    assert isinstance(stats.total.average_latency_ms, float)
