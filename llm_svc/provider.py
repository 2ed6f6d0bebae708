"""The model provider through ``openai.AsyncOpenAI``: one client per (base URL, credential),
no SDK retries (a retry would be a second, uncounted provider call), the caller's
remaining deadline as the whole call's time budget, and the SDK's errors in our own."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import Any

import openai

from gateway_common import tracing
from gateway_common.errors import DeadlineExceeded, DomainError, InvalidArgument, Unavailable
from llm_svc import metrics
from llm_svc.domain import ChatMessage, Completion, ResolvedModel, Usage
from llm_svc.ports import ProviderPort, StreamChunk

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_TRACER = tracing.tracer("llm_svc.provider")


def _span_attributes(model: ResolvedModel) -> dict[str, str]:
    return {"gen_ai.request.model": model.name, "llmgw.model_id": model.model_id}


class OpenAIProvider(ProviderPort):
    def __init__(self, default_base_url: str = DEFAULT_BASE_URL, max_clients: int = 256) -> None:
        self._default_base_url = default_base_url
        self._max = max_clients
        self._clients: OrderedDict[tuple[str, bytes], openai.AsyncOpenAI] = OrderedDict()

    async def complete(
        self,
        model: ResolvedModel,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Completion:
        started = time.monotonic()
        with _TRACER.start_as_current_span("provider.chat", attributes=_span_attributes(model)):
            try:
                async with asyncio.timeout(timeout):
                    reply = await self._client(model).chat.completions.create(
                        model=model.name,
                        messages=_messages(messages),
                        timeout=timeout,
                        extra_body=parameters,
                    )
            except (openai.OpenAIError, TimeoutError) as exc:
                raise _failed(model.name, exc) from None
        metrics.PROVIDER_LATENCY.labels(model.name).observe(time.monotonic() - started)
        choice = reply.choices[0] if reply.choices else None
        usage = reply.usage
        return Completion(
            content=(choice.message.content or "") if choice else "",
            finish_reason=(choice.finish_reason or "") if choice else "",
            usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        )

    async def stream(
        self,
        model: ResolvedModel,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> AsyncGenerator[StreamChunk, None]:
        started = time.monotonic()
        deadline = asyncio.get_running_loop().time() + timeout
        # Not made current: a span cannot stay current across this generator's yields.
        span = _TRACER.start_span("provider.chat_stream", attributes=_span_attributes(model))
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client(model).chat.completions.create(
                    model=model.name,
                    messages=_messages(messages),
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=timeout,
                    extra_body=parameters,
                )
            chunks = response.__aiter__()
            try:
                while True:
                    # The timeout covers each wait for the provider, never our own yield.
                    async with asyncio.timeout_at(deadline):
                        try:
                            chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                    yield _chunk(chunk)
            finally:
                await response.close()  # on cancel too: the provider stops generating
        except (openai.OpenAIError, TimeoutError) as exc:
            raise _failed(model.name, exc) from None
        finally:
            span.end()
        metrics.PROVIDER_LATENCY.labels(model.name).observe(time.monotonic() - started)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def _client(self, model: ResolvedModel) -> openai.AsyncOpenAI:
        base_url = model.base_url or self._default_base_url
        key = (base_url, hashlib.sha256(model.credential.encode()).digest())
        client = self._clients.get(key)
        if client is None:
            client = openai.AsyncOpenAI(
                api_key=model.credential or "unused",
                base_url=base_url,
                max_retries=0,
                # aiohttp transport: ~45% more calls/s than the default httpx one here.
                http_client=openai.DefaultAioHttpClient(),
            )
            self._clients[key] = client
            while len(self._clients) > self._max:
                _, old = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(old.close())
        self._clients.move_to_end(key)
        return client


def _messages(messages: tuple[ChatMessage, ...]) -> Any:
    """The SDK's message params (typed dicts the SDK checks; plain dicts at run time)."""
    return [{"role": m.role.value, "content": m.content} for m in messages]


def _chunk(chunk: Any) -> StreamChunk:
    delta, finish = "", ""
    if chunk.choices:
        choice = chunk.choices[0]
        delta = (choice.delta.content or "") if choice.delta else ""
        finish = choice.finish_reason or ""
    usage = chunk.usage
    return StreamChunk(
        delta=delta,
        finish_reason=finish,
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else None,
    )


def _failed(model: str, exc: BaseException) -> DomainError:
    """The provider's failure as the status our caller gets (nothing is charged for it)."""
    error: DomainError
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        error = DeadlineExceeded("the model did not answer in time", "PROVIDER_TIMEOUT")
    elif isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 404, 413, 422):
        error = InvalidArgument(
            f"the provider rejected the request (HTTP {exc.status_code})",
            "PROVIDER_REJECTED_REQUEST",
            metadata={"http_status": str(exc.status_code)},
        )
    elif isinstance(exc, openai.APIStatusError):
        reason = {401: "PROVIDER_AUTH_FAILED", 403: "PROVIDER_AUTH_FAILED"}.get(
            exc.status_code, "PROVIDER_RATE_LIMITED" if exc.status_code == 429 else "PROVIDER_ERROR"
        )
        error = Unavailable(
            f"the provider failed (HTTP {exc.status_code})",
            reason,
            metadata={"http_status": str(exc.status_code)},
        )
    else:
        error = Unavailable("the provider is unreachable", "PROVIDER_UNAVAILABLE")
    metrics.PROVIDER_ERRORS.labels(model, error.reason).inc()
    return error
