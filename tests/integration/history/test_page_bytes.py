"""List and search pages are bounded by bytes as well as by count (hardening finding 4):
a page stops before HISTORY_MAX_PAGE_BYTES and says where to go on; a single interaction
larger than the budget still comes, alone on its page."""

from __future__ import annotations

from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, Client, bearer, started_api
from tests.integration.history.helpers import record_many
from tests.unit.history.factories import interaction

MIB = 1024 * 1024
BIG = 262_144  # the longest question and answer: one interaction is about 512 KiB


async def store_big(api: Api, count: int) -> list[str]:
    """``count`` big interactions of tenant-a, newest last; their ids newest first."""
    items = [
        interaction(question=f"big {n} " + "q" * (BIG - 8), answer="r" * BIG, seconds=n)
        for n in range(count)
    ]
    for start in range(0, count, 3):
        await record_many(api, *items[start : start + 3])
    return [i.interaction_id for i in reversed(items)]


async def all_pages(api: Api, request: pb.ListInteractionsRequest) -> list[list[str]]:
    pages, token = [], ""
    while True:
        request.page_token = token
        page = await api.public.ListInteractions(request, metadata=bearer("key-admin-a"))
        pages.append([i.interaction_id for i in page.interactions])
        token = page.next_page_token
        if not token:
            return pages


async def test_the_default_page_of_big_interactions_fits_in_a_grpc_message(api: Api):
    ids = await store_big(api, 8)  # about 4 MiB: more than gRPC sends in one message
    page = await api.public.ListInteractions(
        pb.ListInteractionsRequest(tenant_id="tenant-a"), metadata=bearer("key-admin-a")
    )
    assert page.ByteSize() <= 3 * MIB
    assert page.next_page_token and 1 < len(page.interactions) < 8
    rest = await api.public.ListInteractions(
        pb.ListInteractionsRequest(tenant_id="tenant-a", page_token=page.next_page_token),
        metadata=bearer("key-admin-a"),
    )
    got = [i.interaction_id for i in (*page.interactions, *rest.interactions)]
    assert got == ids and not rest.next_page_token


async def test_pages_stop_before_the_byte_budget_and_continue_in_order(mongo_client: Client):
    async with started_api(mongo_client, max_page_bytes=int(1.2 * MIB)) as api:
        ids = await store_big(api, 5)
        pages = await all_pages(api, pb.ListInteractionsRequest(tenant_id="tenant-a"))
        assert [len(p) for p in pages] == [2, 2, 1]  # two of ~512 KiB fit in 1.2 MiB
        assert [i for p in pages for i in p] == ids
        search = await api.public.SearchInteractions(
            pb.SearchInteractionsRequest(tenant_id="tenant-a", query="big"),
            metadata=bearer("key-admin-a"),
        )
        assert len(search.interactions) == 2 and search.next_page_token
        assert [i.interaction_id for i in search.interactions] == ids[:2]


async def test_an_interaction_over_the_budget_comes_alone(mongo_client: Client):
    async with started_api(mongo_client, max_page_bytes=100_000) as api:
        ids = await store_big(api, 3)
        await record_many(api, interaction(question="small", seconds=-1))
        pages = await all_pages(api, pb.ListInteractionsRequest(tenant_id="tenant-a"))
        assert pages[:3] == [[i] for i in ids]  # one each, never none, never refused
        assert len(pages) == 4 and len(pages[3]) == 1
