"""No List/Get/Search/Stats call for tenant A ever returns a document of tenant B."""

from __future__ import annotations

import datetime as dt

import grpc

from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, bearer
from tests.integration.history.helpers import expect_error, record, ts
from tests.unit.history.factories import BASE, interaction

# Tenant B deliberately reuses tenant A's user ids, model ids and words.
A_CALLERS = ["key-platform", "key-admin-a", "key-user-a1"]


async def _seed(api: Api) -> tuple[set[str], set[str]]:
    ids: dict[str, set[str]] = {"tenant-a": set(), "tenant-b": set()}
    for i in range(12):
        for tenant in ids:
            item = interaction(
                tenant, "user-a1", seconds=i, question=f"shared secret {i}", answer="shared answer"
            )
            await record(api, item)
            ids[tenant].add(item.interaction_id)
    return ids["tenant-a"], ids["tenant-b"]


async def _all_pages(call, request) -> list[pb.Interaction]:
    out: list[pb.Interaction] = []
    while True:
        reply = await call(request)
        out.extend(reply.interactions)
        if not reply.next_page_token:
            return out
        request.page_token = reply.next_page_token


async def test_tenant_a_never_sees_tenant_b(api: Api):
    a_ids, b_ids = await _seed(api)
    for key in A_CALLERS:
        md = bearer(key)
        listed = await _all_pages(
            lambda r, md=md: api.public.ListInteractions(r, metadata=md),
            pb.ListInteractionsRequest(tenant_id="tenant-a", page_size=5),
        )
        found = await _all_pages(
            lambda r, md=md: api.public.SearchInteractions(r, metadata=md),
            pb.SearchInteractionsRequest(tenant_id="tenant-a", query="shared", page_size=5),
        )
        for rows in (listed, found):
            assert {i.interaction_id for i in rows} == a_ids
            assert {i.tenant_id for i in rows} == {"tenant-a"}
        for day in (pb.GROUP_BY_DAY, pb.GROUP_BY_USER, pb.GROUP_BY_MODEL):
            stats = await api.public.GetUsageStats(
                pb.GetUsageStatsRequest(
                    tenant_id="tenant-a",
                    start_time=ts(BASE),
                    end_time=ts(BASE + dt.timedelta(days=1)),
                    group_by=day,
                ),
                metadata=md,
            )
            assert stats.total.interactions == len(a_ids)
            assert sum(b.interactions for b in stats.buckets) == len(a_ids)
        for b_id in b_ids:
            get = pb.GetInteractionRequest(tenant_id="tenant-a", interaction_id=b_id)
            await expect_error(
                api.public.GetInteraction(get, metadata=md), grpc.StatusCode.NOT_FOUND
            )
    # A's callers asking for tenant B directly (except the platform admin) are refused.
    for key in ("key-admin-a", "key-user-a1"):
        md = bearer(key)
        b_id = next(iter(b_ids))
        calls = [
            api.public.ListInteractions(
                pb.ListInteractionsRequest(tenant_id="tenant-b"), metadata=md
            ),
            api.public.SearchInteractions(
                pb.SearchInteractionsRequest(tenant_id="tenant-b", query="shared"), metadata=md
            ),
            api.public.GetInteraction(
                pb.GetInteractionRequest(tenant_id="tenant-b", interaction_id=b_id), metadata=md
            ),
            api.public.GetUsageStats(
                pb.GetUsageStatsRequest(
                    tenant_id="tenant-b",
                    start_time=ts(BASE),
                    end_time=ts(BASE + dt.timedelta(days=1)),
                    group_by=pb.GROUP_BY_DAY,
                ),
                metadata=md,
            ),
        ]
        for call in calls:
            await expect_error(call, grpc.StatusCode.PERMISSION_DENIED, "TENANT_ACCESS_DENIED")
