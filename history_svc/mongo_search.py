"""Keyword search where the server has no text index (FerretDB v1): history scans the
scoped interactions newest first and matches the keyword itself.

Why not ``$regex``: FerretDB v1 runs it in Go over each whole document, at a cost of about
text bytes x keyword length. A hostile keyword ('a'*199+'b' over 256 KiB texts of 'a') took
1.2 s of FerretDB CPU per interaction, so two such searches slowed every tenant's calls.
Scanning costs FerretDB only the decoding (about 20 ms per such interaction, measured) and
the match is Python's linear substring search, run one document at a time between awaits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from gateway_common.errors import DeadlineExceeded
from history_svc.domain import Interaction
from history_svc.mongo_documents import Document, from_document

SCAN_BATCH = 8  # documents per round trip: at most ~4 MiB of text in memory at once
# After each document a search waits this many times as long as that document took (its fetch
# from the store and its match): a scan uses at most 1 / (1 + SCAN_PACE) of the time of the
# store and of this process, and leaves the rest to the other calls.
SCAN_PACE = 1.0


async def scan_for_keyword(
    collection: AsyncCollection[Document],
    query: Document,
    sort: list[tuple[str, int]],
    keyword: str,
    limit: int,
    max_seconds: float | None,
    escape_nul: bool,
    pace: float = SCAN_PACE,
) -> list[Interaction]:
    """Up to ``limit`` documents of ``query`` (in ``sort`` order) whose question or answer
    holds ``keyword``, case-insensitively (``str.lower``); DeadlineExceeded after
    ``max_seconds`` of scanning, pauses included."""
    needle = keyword.lower()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    options: dict[str, Any] = {"sort": sort, "batch_size": SCAN_BATCH}
    if max_seconds is not None:
        options["max_time_ms"] = max(int(max_seconds * 1000), 1)
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
            if deadline is not None and now > deadline:
                raise DeadlineExceeded("the search ran out of time", "STORE_TIMEOUT")
            await asyncio.sleep((now - began) * pace)  # 0 too: the loop stays responsive
            began = time.monotonic()
    finally:
        await cursor.close()
    return found
