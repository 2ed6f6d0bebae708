"""Search's bounds through a running server: the time budget, the concurrency per tenant and
in all (hardening finding 1).

The worst case is a keyword of one repeated letter then another, over long texts of that
letter: FerretDB's $regex cost about text bytes x keyword length on it (1.2 s per interaction);
without a text index history now scans and matches itself."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc

from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, Client, bearer, started_api
from tests.integration.history.helpers import expect_error, record, record_many
from tests.unit.history.factories import interaction

C = grpc.StatusCode
LONG = "a" * 262_144  # 256 KiB: the longest question and answer history stores
WORST = "a" * 199 + "b"  # the longest keyword, never found in LONG
SLOW = 12  # long interactions of the searching user


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
    async with started_api(mongo_client, text_search=False, search_max_seconds=0.1) as api:
        await store_slow_history(api)
        started = time.monotonic()
        err = await expect_error(
            searching(api, "key-user-a1", "tenant-a", WORST),
            C.DEADLINE_EXCEEDED,
            "SEARCH_TIME_LIMIT",
        )
        assert time.monotonic() - started < 1.5, "0.1 s budget, one document late at most"
        assert "budget" in (err.details() or "")
        # The budget bounds the scan, not the service: another user's search is served.
        await record(api, user="user-a2", question="where is the eiffel tower")
        found = await searching(api, "key-user-a2", "tenant-a", "EIFFEL")
        assert [i.question for i in found.interactions] == ["where is the eiffel tower"]


async def test_the_worst_case_is_a_cheap_scan_and_the_budget_follows_the_deadline(
    mongo_client: Client,
):
    # The whole share: this test measures the scan, not the pacing.
    async with started_api(
        mongo_client, text_search=False, search_max_seconds=60, search_share=1.0
    ) as api:
        await store_slow_history(api)
        started = time.monotonic()
        found = await searching(api, "key-user-a1", "tenant-a", WORST)
        assert found.interactions == [] and time.monotonic() - started < 3.0
        # 0.6 s left to the caller: the server's budget is 0.1 s, so it answers in time.
        await expect_error(
            searching(api, "key-user-a1", "tenant-a", WORST, timeout=0.6), C.DEADLINE_EXCEEDED
        )


async def outcomes(calls: list) -> Counter[str]:  # type: ignore[type-arg]
    """How many ended OK, and how many with each refusal reason."""
    done = await asyncio.gather(*calls, return_exceptions=True)
    seen: Counter[str] = Counter()
    for result in done:
        if isinstance(result, grpc.aio.AioRpcError):
            info = error_info(result)
            seen[f"{result.code().name} {info.reason if info else ''}"] += 1
        else:
            assert isinstance(result, pb.SearchInteractionsResponse), result
            seen["OK"] += 1
    return seen


async def test_searches_of_one_tenant_are_bounded_and_others_still_search(mongo_client: Client):
    async with started_api(
        mongo_client, text_search=False, search_per_tenant=1, search_share=1.0
    ) as api:
        await store_slow_history(api)
        await record(api, tenant="tenant-b", user="user-b1", question="bonjour")
        tenant_a = [searching(api, "key-user-a1", "tenant-a", WORST) for _ in range(4)]
        tenant_b = searching(api, "key-user-b1", "tenant-b", "bonjour")
        started = time.monotonic()
        seen = await outcomes([*tenant_a, tenant_b])
        assert seen == Counter({"OK": 2, "RESOURCE_EXHAUSTED TOO_MANY_TENANT_SEARCHES": 3})
        assert time.monotonic() - started < 5.0
        # The slots are given back: the tenant searches again.
        await searching(api, "key-admin-a", "tenant-a", WORST)


async def test_searches_in_all_are_bounded(mongo_client: Client):
    async with started_api(
        mongo_client, text_search=False, search_per_tenant=4, search_total=2, search_share=1.0
    ) as api:
        await store_slow_history(api)
        seen = await outcomes([searching(api, "key-user-a1", "tenant-a", WORST) for _ in range(4)])
        assert seen == Counter({"OK": 2, "RESOURCE_EXHAUSTED TOO_MANY_SEARCHES": 2})
        # A refused search said why and that a retry helps.
        err = await expect_error(
            asyncio.gather(*[searching(api, "key-user-a1", "tenant-a", WORST) for _ in range(3)]),
            C.RESOURCE_EXHAUSTED,
            "TOO_MANY_SEARCHES",
        )
        assert "retry" in (err.details() or "")


async def test_scans_keep_to_their_share_and_refuse_when_it_is_used(mongo_client: Client):
    async with started_api(
        mongo_client, text_search=False, search_max_seconds=1.0, search_share=0.01
    ) as api:
        await store_slow_history(api)
        await record(api, tenant="tenant-b", user="user-b1", question="bonjour")
        # 1 % of the time: after its first documents the scan would wait past its budget.
        await expect_error(searching(api, "key-user-a1", "tenant-a", WORST), C.DEADLINE_EXCEEDED)
        started = time.monotonic()
        err = await expect_error(
            searching(api, "key-user-b1", "tenant-b", "bonjour"),
            C.RESOURCE_EXHAUSTED,
            "SEARCH_CAPACITY",
        )
        assert time.monotonic() - started < 0.5  # refused before any store work
        assert "retry" in (err.details() or "")
        page = await api.public.ListInteractions(  # List does not share the scans' time
            pb.ListInteractionsRequest(tenant_id="tenant-b"), metadata=bearer("key-user-b1")
        )
        assert [i.question for i in page.interactions] == ["bonjour"]
