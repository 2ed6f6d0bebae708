"""1,000 interactions listed 37 at a time while new ones keep arriving."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from history_svc.mongo_documents import to_document
from llmgw.history.v1 import history_pb2 as pb
from tests.integration.history.conftest import Api, bearer
from tests.integration.history.helpers import record
from tests.unit.history.factories import BASE, interaction


async def test_1000_listed_37_at_a_time_while_inserting(api: Api):
    # Three per second, so ties on the timestamp are broken by interaction_id.
    seeded = [
        interaction(interaction_id=str(uuid.uuid4()), seconds=i // 3).normalized(1 << 20)
        for i in range(1000)
    ]
    await api.collection.insert_many([to_document(i) for i in seeded])
    expected = [
        i.interaction_id
        for i in sorted(seeded, key=lambda i: (i.timestamp, i.interaction_id), reverse=True)
    ]
    stop, some_new = asyncio.Event(), asyncio.Event()
    inserted = 0

    async def writer() -> None:
        nonlocal inserted
        while not stop.is_set():  # newer than the seed, as new traffic is
            await record(api, interaction(at=BASE + dt.timedelta(hours=1), seconds=inserted))
            inserted += 1
            if inserted >= 5:
                some_new.set()

    task = asyncio.create_task(writer())
    seen: list[str] = []
    token = ""
    pages = 0
    md = bearer("key-admin-a")
    try:
        while True:
            await asyncio.sleep(0)  # let the writer in between pages
            reply = await api.public.ListInteractions(
                pb.ListInteractionsRequest(tenant_id="tenant-a", page_size=37, page_token=token),
                metadata=md,
            )
            pages += 1
            assert len(reply.interactions) <= 37
            seen.extend(i.interaction_id for i in reply.interactions)
            token = reply.next_page_token
            if not token:
                break
            if pages == 1:
                await some_new.wait()  # new ones exist before the later pages are read
    finally:
        stop.set()
        await task
    assert inserted >= 5
    new_ones = len(seen) - 1000
    assert seen[new_ones:] == expected  # all 1,000 exactly once, in order, no duplicates
    assert len(set(seen)) == len(seen)
    assert pages == -(-len(seen) // 37)
