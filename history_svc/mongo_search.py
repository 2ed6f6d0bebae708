"""Keyword search where the server has no text index (FerretDB v1): history scans the
scoped interactions newest first and matches the keyword itself.

Why not ``$regex``: FerretDB v1 runs it in Go over each whole document, at a cost of about
text bytes x keyword length. A hostile keyword ('a'*199+'b' over 256 KiB texts of 'a') took
1.2 s of FerretDB CPU per interaction, so two such searches slowed every tenant's calls.
Scanning costs FerretDB only the decoding (about 20 ms per such interaction, measured) and
the match is Python's linear substring search, run one document at a time between awaits,
and all scans of a replica share a bounded part of the time (ScanPacer).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from gateway_common.errors import DeadlineExceeded, ResourceExhausted
from history_svc.domain import Interaction
from history_svc.mongo_documents import Document, from_document

SCAN_BATCH = 8  # documents per round trip: at most ~4 MiB of text in memory at once


class ScanPacer:
    """Keeps the scans of one replica, all together, under ``share`` of the wall time.

    Each document's time (its fetch from the store and its match) is charged to one shared
    timeline at 1 / share of its length; a scan then waits for the timeline. So however many
    searches run, they take at most that share of the store and of this process, and leave
    the rest to List, Record and the other tenants."""

    def __init__(self, share: float = 0.25) -> None:
        if not 0 < share <= 1:
            raise ValueError("the scan share must be in (0, 1]")
        self.share = share
        self._free_at = 0.0

    def wait(self) -> float:
        """How long until the timeline is free (before a scan starts)."""
        return max(self._free_at - time.monotonic(), 0.0)

    def reserve(self, work: float) -> float:
        """Charge ``work`` seconds just done; how long to wait before the next document."""
        # The work (just done) takes work / share of the shared timeline, from when it began
        # or when the timeline was last free: concurrent scans queue their shares one after
        # another, so together they hold the timeline's rate, whatever their number.
        now = time.monotonic()
        self._free_at = max(self._free_at, now - work) + work / self.share
        return max(self._free_at - now, 0.0)


async def scan_for_keyword(
    collection: AsyncCollection[Document],
    query: Document,
    sort: list[tuple[str, int]],
    keyword: str,
    limit: int,
    max_seconds: float | None,
    escape_nul: bool,
    pacer: ScanPacer,
) -> list[Interaction]:
    """Up to ``limit`` documents of ``query`` (in ``sort`` order) whose question or answer
    holds ``keyword``, case-insensitively (``str.lower``); DeadlineExceeded once
    ``max_seconds`` (pauses included) would pass before the next document."""
    needle = keyword.lower()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    options: dict[str, Any] = {"sort": sort, "batch_size": SCAN_BATCH}
    if max_seconds is not None:
        options["max_time_ms"] = max(int(max_seconds * 1000), 1)
    # Wait for the replica's scan share first: a search that could not start in its budget
    # is refused before any work, so retrying it in a loop costs the store nothing.
    queued = pacer.wait()
    if deadline is not None and time.monotonic() + queued > deadline:
        raise ResourceExhausted(
            "searches are using their share of the store; retry shortly", "SEARCH_CAPACITY"
        )
    await asyncio.sleep(queued)
    found: list[Interaction] = []
    cursor = collection.find(query, **options)
    try:
        began = time.monotonic()
        async for doc in cursor:
            item = from_document(doc, escape_nul)
            if needle in item.question.lower() or needle in item.answer.lower():
                found.append(item)
                if len(found) >= limit:
                    break
            now = time.monotonic()
            wait = pacer.reserve(now - began)
            if deadline is not None and now + wait > deadline:
                raise DeadlineExceeded("the search ran out of time", "STORE_TIMEOUT")
            await asyncio.sleep(wait)  # 0 too: the loop stays responsive
            began = time.monotonic()
    finally:
        await cursor.close()
    return found
