"""The scans of one replica, together, take at most their share of the time."""

from __future__ import annotations

import asyncio
import time

import pytest

from history_svc.mongo_search import ScanPacer


async def test_concurrent_scans_share_one_idle_timeline():
    pacer = ScanPacer(share=0.25)
    work = 0.02

    async def scan() -> None:
        for _ in range(5):
            await asyncio.sleep(work)  # a document's fetch and match
            await asyncio.sleep(pacer.reserve(work))

    started = time.monotonic()
    await asyncio.gather(scan(), scan())
    elapsed = time.monotonic() - started
    # 10 documents of 0.02 s at 25 %: at least 0.2 s of work / 0.25 = 0.8 s less the overlap
    # of the first two documents (the two scans fetched them at once).
    assert elapsed >= (10 * work) / 0.25 - 2 * work


def test_a_share_outside_0_1_is_refused():
    for share in (0, -1, 1.5):
        with pytest.raises(ValueError):
            ScanPacer(share)
