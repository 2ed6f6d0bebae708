"""The revocation feed on its own: what the cache serves, when, and what it refuses."""

from __future__ import annotations

import pytest

from gateway_common.cache import TtlCache
from gateway_common.errors import Unauthenticated
from gateway_common.principal import Principal, Role
from gateway_common.revocation import FeedTiming, Revocation, RevocationFeed

USER = Principal(Role.USER, "t1", "u1", "k1")
ADMIN = Principal(Role.TENANT_ADMIN, "t2", "", "k2")


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class Feed:
    def __init__(self) -> None:
        self.events: list[Revocation] = []
        self.down = False

    async def __call__(self, after: int, limit: int) -> list[Revocation]:
        if self.down:
            raise ConnectionError("identity down")
        return [e for e in self.events if e.sequence > after][:limit]

    def add(self, kind: str, target: str) -> None:
        self.events.append(Revocation(len(self.events) + 1, kind, target))


@pytest.fixture
def parts() -> tuple[RevocationFeed, Feed, Clock]:
    clock, source = Clock(), Feed()
    feed = RevocationFeed(source, TtlCache(60.0, 100, clock), FeedTiming(0.5, 1.5, 10.0), clock)
    return feed, source, clock


async def test_nothing_is_served_from_cache_before_the_first_poll(parts) -> None:
    feed, _, _ = parts
    feed.admit(b"a", USER)
    assert not feed.trusted() and feed.cache.get(b"a") is None
    await feed.poll()
    feed.admit(b"a", USER)
    assert feed.get(b"a") == USER
    await feed.close()


@pytest.mark.parametrize(("kind", "target"), [("key", "k1"), ("user", "u1"), ("tenant", "t1")])
async def test_an_event_evicts_what_it_names_only(parts, kind: str, target: str) -> None:
    feed, source, _ = parts
    await feed.poll()
    feed.admit(b"a", USER)
    feed.admit(b"b", ADMIN)
    source.add(kind, target)
    await feed.poll()
    assert feed.get(b"a") is None and feed.get(b"b") == ADMIN
    # An answer that was in flight (or came from a replica that has not polled yet).
    with pytest.raises(Unauthenticated):
        feed.admit(b"a", USER)
    await feed.close()


async def test_a_failing_feed_stops_trusting_the_cache_after_the_bound(parts) -> None:
    feed, source, clock = parts
    await feed.poll()
    feed.admit(b"a", USER)
    source.down = True
    clock.now += 1.4
    with pytest.raises(ConnectionError):
        await feed.poll()
    assert feed.get(b"a") == USER  # still within the bound
    clock.now += 0.2
    assert feed.get(b"a") is None  # past it: every call asks identity
    feed.admit(b"b", ADMIN)
    assert feed.cache.get(b"b") is None  # nor is anything cached meanwhile
    source.down = False
    await feed.poll()
    assert feed.trusted() and feed.get(b"a") is None  # cleared on resuming
    await feed.close()


async def test_the_deny_list_forgets_after_its_memory(parts) -> None:
    feed, source, clock = parts
    await feed.poll()
    source.add("key", "k1")
    await feed.poll()
    clock.now += 11
    await feed.poll()
    assert feed.admit(b"a", USER) == USER
    await feed.close()
