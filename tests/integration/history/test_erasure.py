"""Right to erasure: nothing of that user remains; nothing of anyone else went."""

from __future__ import annotations

from typing import Any

from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, bearer
from tests.integration.history.helpers import record
from tests.unit.history.factories import interaction


async def _ids(api: Api, query: dict[str, Any]) -> set[str]:
    return {d["_id"] async for d in api.collection.find(query, projection={"_id": 1})}


async def test_tenant_admin_erases_one_user(api: Api):
    population = [("tenant-a", "user-a1")] * 7 + [("tenant-a", "user-a2")] * 3
    population += [("tenant-b", "user-a1")] * 4  # same user id in another tenant stays
    for i, (tenant, user) in enumerate(population):
        await record(api, interaction(tenant, user, seconds=i))
    others_before = await _ids(
        api, {"$or": [{"distribuidor_id": "tenant-b"}, {"usuario_id": "user-a2"}]}
    )
    assert len(others_before) == 7
    req = pb.DeleteUserInteractionsRequest(tenant_id="tenant-a", user_id="user-a1", request_id="r1")
    reply = await api.public.DeleteUserInteractions(req, metadata=bearer("key-admin-a"))
    assert reply.deleted_count == 7
    assert (
        await api.collection.count_documents(
            {"distribuidor_id": "tenant-a", "usuario_id": "user-a1"}
        )
        == 0
    )
    assert await _ids(api, {}) == others_before
    listed = await api.public.ListInteractions(
        pb.ListInteractionsRequest(tenant_id="tenant-a", user_id="user-a1"),
        metadata=bearer("key-admin-a"),
    )
    assert list(listed.interactions) == []
    replay = await api.public.DeleteUserInteractions(req, metadata=bearer("key-admin-a"))
    assert replay.deleted_count == 0
    by_platform = await api.public.DeleteUserInteractions(
        pb.DeleteUserInteractionsRequest(tenant_id="tenant-b", user_id="user-a1"),
        metadata=bearer("key-platform"),
    )
    assert by_platform.deleted_count == 4
    assert len(await _ids(api, {})) == 3
