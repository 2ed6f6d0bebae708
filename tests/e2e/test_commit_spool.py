"""Nothing lost, nothing doubled: a Chat whose quota Commit fails (quota went away while
the provider was answering) still returns its answer; the Commit waits in llm's durable
spool and is charged exactly once when quota is back."""

from __future__ import annotations

import asyncio
import re
import urllib.request

from llm_svc.domain import interaction_id_for
from tests.e2e.conftest import Suite
from tests.e2e.world import make_tenant


async def eventually(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


def spool_depth_metric(suite: Suite) -> float:
    url = f"http://127.0.0.1:{suite.metrics_ports['llm']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    found = re.search(r"^llm_commit_spool_depth (\S+)$", text, re.MULTILINE)
    assert found, "llm_commit_spool_depth not exported"
    return float(found.group(1))


def quota_running(suite: Suite) -> bool:
    proc = suite.procs["quota"].proc
    return proc is not None and proc.poll() is None


async def test_commit_failed_while_quota_down_is_charged_once_when_it_returns(
    suite: Suite,
) -> None:
    t = await make_tenant(suite)
    commits = suite.spool_dir / "commits"
    calls = (await asyncio.to_thread(suite.provider_stats))["calls"]
    # Reserve happens before the provider call (quota is up); the provider then takes
    # 3 s, and quota is stopped meanwhile, so the Commit after the answer fails.
    chat = asyncio.create_task(t.chat("[[delay:3000]] served while quota sleeps"))
    try:

        async def provider_called() -> bool:
            return int((await asyncio.to_thread(suite.provider_stats))["calls"]) > calls

        await eventually(provider_called, timeout=10)
        await asyncio.to_thread(suite.stop, "quota")
        assert not chat.done(), "the answer came before quota was down: nothing tested"
        reply = await chat
        assert reply.content == "Echo: served while quota sleeps"

        [entry] = list(commits.glob("*.commit"))
        rid = entry.read_text()
        assert interaction_id_for(rid) == reply.interaction_id  # this Chat's reservation
        await asyncio.sleep(1.0)  # a few replay rounds while quota is still down
        assert entry.exists()
        assert spool_depth_metric(suite) == 1
    finally:
        if not chat.done():
            chat.cancel()
        if not quota_running(suite):
            await suite.restart("quota")

    async def drained() -> bool:
        return not list(commits.glob("*.commit"))

    await eventually(drained)
    assert await t.used() == 1
    assert spool_depth_metric(suite) == 0
    await asyncio.sleep(1.0)  # more replay rounds: still counted once
    assert await t.used() == 1
    assert [i.interaction_id for i in await t.interactions()] == [reply.interaction_id]
