"""The Mongo adapter against the real server: indexes, search paths, statistics."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from history_svc.domain import Erasure, Filter, GroupBy, Outcome, Status
from history_svc.mongo_interactions import MongoInteractionRepository
from tests.unit.history.factories import BASE, interaction

DAY = dt.timedelta(days=1)


async def test_indexes_created_at_start(repo: MongoInteractionRepository):
    indexes = [ix async for ix in await repo.collection.list_indexes()]
    keys = {tuple(ix["key"].items()): ix for ix in indexes}
    spec = (("distribuidor_id", 1), ("usuario_id", 1), ("timestamp", -1))
    assert spec in keys
    assert keys[(("interacao_id", 1),)].get("unique") is True
    assert (("distribuidor_id", 1), ("timestamp", -1), ("interacao_id", -1)) in keys
    has_text = any("text" in ix["key"].values() or "_fts" in ix["key"] for ix in indexes)
    assert has_text == repo.text_search


async def test_insert_twice_stores_one(repo: MongoInteractionRepository):
    item = interaction().normalized(1024)
    other = interaction().normalized(1024)
    assert await repo.insert_many([item]) == [Outcome.CREATED]
    changed = dataclasses.replace(item, answer="other")
    assert await repo.insert_many([other, changed]) == [Outcome.CREATED, Outcome.DUPLICATE]
    docs = [d async for d in repo.collection.find({"interacao_id": item.interaction_id})]
    assert len(docs) == 1 and docs[0]["conteudo_resposta"] == "Paris."
    assert await repo.get("tenant-a", item.interaction_id) == item


async def test_document_has_the_spec_shape(repo: MongoInteractionRepository):
    item = interaction().normalized(1024)
    await repo.insert_many([item])
    doc = await repo.collection.find_one({"_id": item.interaction_id})
    assert doc is not None
    for name in (
        "interacao_id",
        "distribuidor_id",
        "usuario_id",
        "assinatura_id",
        "llm_id",
        "timestamp",
        "conteudo_pergunta",
        "conteudo_resposta",
    ):
        assert name in doc
    assert isinstance(doc["timestamp"], dt.datetime)
    meta = doc["metadados"]
    assert meta["tokens_utilizados"] == 9 and meta["tempo_resposta_ms"] == 120
    assert meta["parametros_prompt"] == {"temperature": 0.7, "max_tokens": 1000.0}


async def _seed_stats(repo: MongoInteractionRepository) -> None:
    rows = [
        # (day offset, user, model, status, prompt, completion, latency)
        (0, "u1", "m1", Status.OK, 10, 5, 100),
        (0, "u1", "m2", Status.ERROR, 3, 0, 50),
        (0, "u2", "m1", Status.OK, 7, 7, 300),
        (1, "u2", "m2", Status.OK, 1, 1, 10),
        (1, "u2", "m2", Status.CANCELLED, 2, 1, 20),
        (2, "u1", "m1", Status.ERROR, 4, 0, 60),
    ]
    for offset, user, model, status, p, c, ms in rows:
        item = interaction(
            user=user,
            at=BASE + offset * DAY,
            model=model,
            status=status,
            prompt_tokens=p,
            completion_tokens=c,
            latency_ms=ms,
        )
        await repo.insert_many([item.normalized(1024)])
    # Outside the range or of another tenant: never counted.
    await repo.insert_many([interaction(at=BASE + 3 * DAY).normalized(1024)])
    await repo.insert_many([interaction(at=BASE - dt.timedelta(milliseconds=1)).normalized(1024)])
    await repo.insert_many([interaction("tenant-b", "u1", at=BASE).normalized(1024)])


async def test_stats_by_day_user_model(repo: MongoInteractionRepository):
    await _seed_stats(repo)
    where = Filter("tenant-a", start=BASE, end=BASE + 3 * DAY)
    by_day = {b.key: b for b in await repo.stats(where, GroupBy.DAY)}
    assert list(by_day) == ["2025-03-01", "2025-03-02", "2025-03-03"]
    d0 = by_day["2025-03-01"]
    assert (d0.interactions, d0.tokens, d0.prompt_tokens, d0.completion_tokens) == (3, 32, 20, 12)
    assert (d0.latency_ms_sum, d0.errors) == (450, 1)
    assert d0.average_latency_ms == 150.0
    by_user = {
        b.key: (b.interactions, b.tokens, b.errors) for b in await repo.stats(where, GroupBy.USER)
    }
    assert by_user == {"u1": (3, 22, 2), "u2": (3, 19, 0)}
    by_model = {
        b.key: (b.interactions, b.latency_ms_sum) for b in await repo.stats(where, GroupBy.MODEL)
    }
    assert by_model == {"m1": (3, 460), "m2": (3, 80)}
    one_user = Filter("tenant-a", user_id="u2", start=BASE, end=BASE + 3 * DAY)
    assert [(b.key, b.interactions) for b in await repo.stats(one_user, GroupBy.USER)] == [
        ("u2", 3)
    ]


async def _seed_search(repo: MongoInteractionRepository) -> list[str]:
    texts = [
        ("How do I write C++ templates?", "Use template<typename T>."),
        ("Tell me about Paris", "PARIS is the capital (of France)."),
        ("Nothing here", "still nothing"),
        ("Olá, tudo bem? São Paulo", "Sim, 世界 😀 é grande"),
        ("price is $5.00 [approx]", "ok"),
    ]
    ids = []
    for i, (q, a) in enumerate(texts):
        item = interaction(question=q, answer=a, seconds=i).normalized(1024)
        await repo.insert_many([item])
        ids.append(item.interaction_id)
    await repo.insert_many([interaction("tenant-b", question="paris too").normalized(1024)])
    return ids


async def _search(repo: MongoInteractionRepository, text: str) -> list[str]:
    return [i.interaction_id for i in await repo.page(Filter("tenant-a", text=text), None, 50)]


async def test_search_fallback_regex(repo: MongoInteractionRepository):
    repo = MongoInteractionRepository(repo.collection, text_search=False)
    ids = await _seed_search(repo)
    assert await _search(repo, "paris") == [ids[1]]  # case-insensitive, question or answer
    assert await _search(repo, "C++") == [ids[0]]  # metacharacters are literal
    assert await _search(repo, "$5.00 [approx]") == [ids[4]]
    assert await _search(repo, "(of France)") == [ids[1]]
    assert await _search(repo, "世界 😀") == [ids[3]]
    assert await _search(repo, "São") == [ids[3]]
    assert await _search(repo, "is") == [ids[4], ids[1]]  # newest first
    assert await _search(repo, ".*") == []


async def test_search_text_index_when_the_server_has_one(repo: MongoInteractionRepository):
    if not repo.text_search:
        pytest.skip("this server has no text index (FerretDB v1): the $regex fallback is used")
    ids = await _seed_search(repo)
    assert await _search(repo, "paris") == [ids[1]]
    assert await _search(repo, "templates") == [ids[0]]
    assert await _search(repo, "nothing") == [ids[2]]


async def test_delete_user_only_that_user_of_that_tenant(repo: MongoInteractionRepository):
    for user, tenant in [("u1", "tenant-a")] * 3 + [("u2", "tenant-a"), ("u1", "tenant-b")]:
        await repo.insert_many([interaction(tenant, user).normalized(1024)])
    assert await repo.erase(Erasure("tenant-a", "u1", BASE)) == 3
    assert (
        await repo.collection.count_documents({"usuario_id": "u1", "distribuidor_id": "tenant-a"})
        == 0
    )
    assert await repo.collection.count_documents({}) == 2
