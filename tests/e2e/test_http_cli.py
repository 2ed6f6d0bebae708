"""``gatewayctl chat --http``: the CLI through the HTTP door with the openai SDK, streamed
and whole, charged and recorded like any call; HTTP errors are the CLI's exit codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.conftest import Suite
from tests.e2e.test_llm_e2e import gatewayctl
from tests.e2e.world import make_tenant


async def test_gatewayctl_chat_over_http(suite: Suite, tmp_path: Path) -> None:
    t = await make_tenant(suite)
    base = ("chat", "--key", t.user_key, "--model", t.model, "--http", suite.http_url)
    streamed = await asyncio.to_thread(gatewayctl, suite, *base, "hello", "cli", local=tmp_path)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.strip() == "Echo: hello cli"
    assert "2+3 tokens" in streamed.stderr
    whole = await asyncio.to_thread(
        gatewayctl, suite, *base, "--no-stream", "again", local=tmp_path
    )
    assert whole.returncode == 0 and whole.stdout.strip() == "Echo: again"
    assert await t.used() == 2
    assert len(await t.interactions(want=2)) == 2
    bad = ("chat", "--key", "nope", "--model", t.model, "--http", suite.http_url, "hi")
    refused = await asyncio.to_thread(gatewayctl, suite, *bad, local=tmp_path)
    assert refused.returncode == 7, refused.stderr  # UNAUTHENTICATED's exit code
    assert "invalid API key" in refused.stderr
