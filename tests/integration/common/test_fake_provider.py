"""The fake provider speaks OpenAI's protocol to the real `openai` client."""

from __future__ import annotations

import time

import openai
import pytest
from aiohttp import web

from devtools.fake_provider import FakeProvider
from tests.support import free_port


@pytest.fixture
async def provider():
    fake = FakeProvider()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0
    )
    try:
        yield fake, client
    finally:
        await client.close()
        await runner.cleanup()


async def test_deterministic_answer_with_usage(provider):
    fake, client = provider
    reply = await client.chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "olá mundo"},
        ],
    )
    assert reply.choices[0].message.content == "Echo: olá mundo"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 3)
    assert fake.calls == 1 and fake.last_authorization == "Bearer sk-test"


async def test_streaming_sends_chunks_then_usage(provider):
    _, client = provider
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == "Echo: one two three"
    assert len(pieces) == 4 and usage.completion_tokens == 4


async def test_injected_failure_and_latency(provider):
    _, client = provider
    with pytest.raises(openai.APIStatusError) as exc:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x [[fail:503]]"}]
        )
    assert exc.value.status_code == 503
    started = time.perf_counter()
    await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "y [[delay:200]]"}]
    )
    assert time.perf_counter() - started >= 0.2


async def test_max_tokens_truncates_with_length_finish(provider):
    _, client = provider
    reply = await client.chat.completions.create(
        model="m", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]
    )
    assert reply.choices[0].message.content == "Echo: a"
    assert reply.choices[0].finish_reason == "length"
