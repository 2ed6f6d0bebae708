"""Search's bounds through a running server: the time budget, the concurrency per tenant and
in all, the shorter keyword of the $regex fallback (hardening finding 1).

The worst case is a keyword of one repeated letter then another, over long texts of that
letter: the $regex fallback's cost is about text bytes x keyword length."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, Client, bearer, started_api
from tests.integration.history.helpers import expect_error, record, record_many
from tests.unit.history.factories import interaction

C = grpc.StatusCode
LONG = "a" * 262_144  # 256 KiB: the longest question and answer history stores
WORST = "a" * 63 + "b"  # the longest keyword the fallback takes, never found in LONG
SLOW = 12  # long interactions: about 5 s of scan unbounded on FerretDB v1.24.2


async def store_slow_history(api: Api, user: str = "user-a1", tenant: str = "tenant-a") -> None:
    for start in range(0, SLOW, 3):
        items = [
            interaction(tenant, user, seconds=start + i, question=LONG, answer=LONG)
            for i in range(3)
        ]
        await record_many(api, *items)


async def searching(
    api: Api, key: str, tenant: str, query: str, timeout: float = 30.0
) -> pb.SearchInteractionsResponse:
    return await api.public.SearchInteractions(
        pb.SearchInteractionsRequest(tenant_id=tenant, query=query, page_size=5),
        metadata=bearer(key),
        timeout=timeout,
    )


async def test_a_worst_case_search_ends_by_its_time_budget(mongo_client: Client):
    async with started_api(mongo_client, text_search=False, search_max_seconds=0.5) as api:
        await store_slow_history(api)
        started = time.monotonic()
        err = await expect_error(
            searching(api, "key-user-a1", "tenant-a", WORST),
            C.DEADLINE_EXCEEDED,
            "SEARCH_TIME_LIMIT",
        )
        elapsed = time.monotonic() - started
        assert elapsed < 2.5, elapsed  # 0.5 s budget + FerretDB's overshoot + the call
        assert "budget" in (err.details() or "")
        # The budget bounds the scan, not the service: another user's search is served.
        await record(api, user="user-a2", question="where is the eiffel tower")
        found = await searching(api, "key-user-a2", "tenant-a", "EIFFEL")
        assert [i.question for i in found.interactions] == ["where is the eiffel tower"]


async def test_the_budget_follows_the_callers_deadline(mongo_client: Client):
    async with started_api(
        mongo_client, text_search=False, search_max_seconds=60, search_per_tenant=1
    ) as api:
        await store_slow_history(api)
        started = time.monotonic()
        await expect_error(
            searching(api, "key-user-a1", "tenant-a", WORST, timeout=1.5), C.DEADLINE_EXCEEDED
        )
        assert time.monotonic() - started < 2.5
        # The server stopped too and gave its slot back: the next search of the tenant runs.
        await asyncio.sleep(1.0)
        await searching(api, "key-user-a1", "tenant-a", "nothing like this")


async def test_the_fallback_takes_a_shorter_keyword(mongo_client: Client):
    async with started_api(mongo_client, text_search=False) as api:
        err = await expect_error(
            searching(api, "key-user-a1", "tenant-a", "a" * 199 + "b"), C.INVALID_ARGUMENT
        )
        assert "at most 64 characters" in (err.details() or "")
        await searching(api, "key-user-a1", "tenant-a", WORST)  # 64 characters pass


async def test_searches_of_one_tenant_are_bounded_and_others_still_search(mongo_client: Client):
    async with started_api(
        mongo_client, text_search=False, search_max_seconds=3, search_per_tenant=1
    ) as api:
        await store_slow_history(api)
        await record(api, tenant="tenant-b", user="user-b1", question="bonjour")
        slow = asyncio.create_task(searching(api, "key-user-a1", "tenant-a", WORST))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        err = await expect_error(
            searching(api, "key-admin-a", "tenant-a", "anything"),
            C.RESOURCE_EXHAUSTED,
            "TOO_MANY_TENANT_SEARCHES",
        )
        assert time.monotonic() - started < 1.0  # refused at once, never queued
        assert "retry" in (err.details() or "")
        found = await searching(api, "key-user-b1", "tenant-b", "bonjour")
        assert len(found.interactions) == 1
        # List is not a search: it is served meanwhile.
        page = await api.public.ListInteractions(
            pb.ListInteractionsRequest(tenant_id="tenant-a", page_size=1),
            metadata=bearer("key-admin-a"),
        )
        assert len(page.interactions) == 1
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await slow
        assert ended.value.code() == C.DEADLINE_EXCEEDED
        await searching(api, "key-admin-a", "tenant-a", "anything")  # its slot is free again


async def test_searches_in_all_are_bounded(mongo_client: Client):
    async with started_api(
        mongo_client, text_search=False, search_max_seconds=3, search_per_tenant=2, search_total=1
    ) as api:
        await store_slow_history(api)
        slow = asyncio.create_task(searching(api, "key-user-a1", "tenant-a", WORST))
        await asyncio.sleep(0.5)
        await expect_error(
            searching(api, "key-user-b1", "tenant-b", "bonjour"),
            C.RESOURCE_EXHAUSTED,
            "TOO_MANY_SEARCHES",
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await slow
        await searching(api, "key-user-b1", "tenant-b", "bonjour")
