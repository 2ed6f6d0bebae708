"""A small bounded LRU with per-entry deadlines, for the hot paths (no locks: one event loop)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] <= self._clock():
            del self._data[key]
            return None
        return hit[1]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        if self.ttl <= 0 or self.max_entries <= 0:
            return
        lifetime = self.ttl if ttl is None else min(ttl, self.ttl)
        self._data[key] = (self._clock() + lifetime, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def drop_if(self, predicate: Callable[[V], bool]) -> None:
        """O(n): for rare events (a revocation), not for the hot path."""
        for key in [k for k, (_, v) in self._data.items() if predicate(v)]:
            del self._data[key]

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
