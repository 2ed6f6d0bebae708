from __future__ import annotations

import datetime as dt

import pytest

from gateway_common.errors import InvalidArgument, NotFound, PermissionDenied
from history_svc.domain import Filter, GroupBy, Interaction, Outcome, Status
from history_svc.service import HistoryService
from tests.unit.history.factories import BASE, interaction
from tests.unit.history.fakes import (
    ADMIN_A,
    ADMIN_B,
    PLATFORM,
    USER_A1,
    USER_A2,
    USER_B1,
    MemoryRepository,
    with_rollups,
)


async def record(svc: HistoryService, *items: Interaction) -> list[Outcome]:
    return [r.outcome for r in await svc.record_batch(list(items))]


@pytest.fixture
async def service():
    svc = with_rollups(MemoryRepository())
    await record(svc, *(interaction("tenant-a", "user-a1", seconds=i) for i in range(30)))
    for i in range(5):
        await record(svc, interaction("tenant-a", "user-a2", seconds=i, model="model-2"))
        await record(svc, interaction("tenant-b", "user-b1", seconds=i))
    return svc


async def test_user_is_forced_to_own_interactions(service):
    page = await service.list(USER_A1, Filter("tenant-a"), 200, "")
    assert {i.user_id for i in page.items} == {"user-a1"} and len(page.items) == 30


@pytest.mark.parametrize(
    ("caller", "where", "reason"),
    [
        (USER_A1, Filter("tenant-a", user_id="user-a2"), "USER_ACCESS_DENIED"),
        (USER_A1, Filter("tenant-b"), "TENANT_ACCESS_DENIED"),
        (ADMIN_A, Filter("tenant-b"), "TENANT_ACCESS_DENIED"),
        (USER_B1, Filter("tenant-a", user_id="user-a1"), "TENANT_ACCESS_DENIED"),
    ],
)
async def test_list_denied(service, caller, where, reason):
    with pytest.raises(PermissionDenied) as err:
        await service.list(caller, where, 0, "")
    assert err.value.reason == reason


async def test_admins_see_their_tenant(service):
    for caller in (ADMIN_A, PLATFORM):
        page = await service.list(caller, Filter("tenant-a"), 200, "")
        assert len(page.items) == 35 and {i.tenant_id for i in page.items} == {"tenant-a"}


async def test_page_size_default_and_clamp(service):
    assert len((await service.list(ADMIN_A, Filter("tenant-a"), 0, "")).items) == 20
    svc = with_rollups(MemoryRepository())
    await record(svc, *(interaction(seconds=i) for i in range(205)))
    assert len((await svc.list(ADMIN_A, Filter("tenant-a"), 5000, "")).items) == 200
    with pytest.raises(InvalidArgument):
        await svc.list(ADMIN_A, Filter("tenant-a"), -1, "")


async def test_pages_chain_and_tokens_are_bound_to_filters(service):
    first = await service.list(USER_A1, Filter("tenant-a"), 12, "")
    second = await service.list(USER_A1, Filter("tenant-a"), 12, first.next_page_token)
    third = await service.list(
        USER_A1, Filter("tenant-a", user_id="user-a1"), 12, second.next_page_token
    )
    ids = [i.interaction_id for p in (first, second, third) for i in p.items]
    assert len(ids) == len(set(ids)) == 30 and third.next_page_token == ""
    times = [i.timestamp for p in (first, second, third) for i in p.items]
    assert times == sorted(times, reverse=True)
    for other in (Filter("tenant-a", model_id="model-1"), Filter("tenant-a", text="x")):
        with pytest.raises(InvalidArgument):
            await service.list(ADMIN_A, other, 12, first.next_page_token)
    with pytest.raises(InvalidArgument):
        await service.list(USER_A1, Filter("tenant-a"), 12, "garbage!")


async def test_get_scoping(service):
    mine = (await service.list(USER_A1, Filter("tenant-a"), 1, "")).items[0]
    assert await service.get(USER_A1, "tenant-a", mine.interaction_id) == mine
    assert await service.get(ADMIN_A, "tenant-a", mine.interaction_id) == mine
    with pytest.raises(NotFound):  # a peer's interaction does not exist for a user
        await service.get(USER_A2, "tenant-a", mine.interaction_id)
    with pytest.raises(PermissionDenied):  # tenant checked before existence
        await service.get(ADMIN_B, "tenant-a", mine.interaction_id)
    with pytest.raises(NotFound):  # asked under its own tenant: not there
        await service.get(ADMIN_B, "tenant-b", mine.interaction_id)
    with pytest.raises(InvalidArgument):
        await service.get(ADMIN_A, "tenant-a", "nope")


@pytest.mark.parametrize("query", ["", "   ", "x" * 201])
async def test_search_query_length(service, query):
    with pytest.raises(InvalidArgument):
        await service.search(ADMIN_A, Filter("tenant-a", text=query), 0, "")


async def test_stats_validation_and_totals(service):
    start, end = BASE - dt.timedelta(days=1), BASE + dt.timedelta(days=1)
    stats = await service.stats(ADMIN_A, Filter("tenant-a", start=start, end=end), GroupBy.USER)
    assert [b.key for b in stats.buckets] == ["user-a1", "user-a2"]
    assert stats.total.interactions == 35 and stats.total.tokens == 35 * 9
    own = await service.stats(USER_A1, Filter("tenant-a", start=start, end=end), GroupBy.MODEL)
    assert [(b.key, b.interactions) for b in own.buckets] == [("model-1", 30)]
    bad = [
        Filter("tenant-a"),
        Filter("tenant-a", start=start),
        Filter("tenant-a", start=end, end=start),
        Filter("tenant-a", start=start, end=start + dt.timedelta(days=367)),
    ]
    for where in bad:
        with pytest.raises(InvalidArgument):
            await service.stats(ADMIN_A, where, GroupBy.DAY)
    ok = Filter("tenant-a", start=start, end=start + dt.timedelta(days=366))
    assert (await service.stats(ADMIN_A, ok, GroupBy.DAY)).total.interactions == 35


async def test_stats_counts_errors():
    svc = with_rollups(MemoryRepository())
    await record(svc, interaction(status=Status.ERROR, latency_ms=100), interaction(latency_ms=300))
    where = Filter("tenant-a", start=BASE, end=BASE + dt.timedelta(hours=1))
    total = (await svc.stats(ADMIN_A, where, GroupBy.DAY)).total
    assert (total.errors, total.average_latency_ms) == (1, 200.0)


async def test_delete_user_needs_tenant_admin(service):
    for caller in (USER_A1, ADMIN_B):
        with pytest.raises(PermissionDenied):
            await service.delete_user(caller, "tenant-a", "user-a2")
    assert await service.delete_user(ADMIN_A, "tenant-a", "user-a2", "erase-1") == 5
    assert await service.delete_user(ADMIN_A, "tenant-a", "user-a2", "erase-1") == 0
    with pytest.raises(InvalidArgument):
        await service.delete_user(PLATFORM, "tenant-a", "")
