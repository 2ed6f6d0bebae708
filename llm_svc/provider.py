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
from gateway_common.egress import EgressPolicy, EgressRefused
from gateway_common.errors import (
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from llm_svc import egress, metrics
from llm_svc.domain import (
    ChatMessage,
    Choice,
    ChoiceDelta,
    Completion,
    Deployment,
    StreamChunk,
    Target,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llm_svc.ports import ProviderPort
from llm_svc.request_checks import wire_messages

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_TRACER = tracing.tracer("llm_svc.provider")


def _span_attributes(target: Target) -> dict[str, str]:
    # Per-deployment detail goes to traces (and history), never to metric labels.
    return {
        "gen_ai.request.model": target.model.name,
        "llmgw.model_id": target.model.model_id,
        "llmgw.deployment_id": target.deployment.deployment_id,
    }


class OpenAIProvider(ProviderPort):
    def __init__(
        self,
        default_base_url: str = DEFAULT_BASE_URL,
        max_clients: int = 256,
        egress_policy: EgressPolicy | None = None,
    ) -> None:
        self._default_base_url = default_base_url
        self._egress = egress_policy or EgressPolicy()  # public addresses only
        self._max = max_clients
        self._clients: OrderedDict[tuple[str, bytes], openai.AsyncOpenAI] = OrderedDict()

    async def complete(
        self,
        target: Target,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Completion:
        started, model = time.monotonic(), target.model
        with _TRACER.start_as_current_span("provider.chat", attributes=_span_attributes(target)):
            try:
                async with asyncio.timeout(timeout):
                    reply = await self._client(target).chat.completions.create(
                        model=target.upstream_model,
                        messages=_messages(messages),
                        timeout=timeout,
                        extra_body=parameters,
                    )
            except (openai.OpenAIError, TimeoutError, EgressRefused) as exc:
                raise _failed(model.name, exc) from None
        metrics.PROVIDER_LATENCY.labels(model.name).observe(time.monotonic() - started)
        choices = tuple(sorted((_choice(c) for c in reply.choices), key=lambda c: c.index))
        return Completion.of(choices, _usage(reply.usage))

    async def stream(
        self,
        target: Target,
        messages: tuple[ChatMessage, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> AsyncGenerator[StreamChunk, None]:
        started, model = time.monotonic(), target.model
        deadline = asyncio.get_running_loop().time() + timeout
        # Not made current: a span cannot stay current across this generator's yields.
        span = _TRACER.start_span("provider.chat_stream", attributes=_span_attributes(target))
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client(target).chat.completions.create(
                    model=target.upstream_model,
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
        except (openai.OpenAIError, TimeoutError, EgressRefused) as exc:
            raise _failed(model.name, exc) from None
        finally:
            span.end()
        metrics.PROVIDER_LATENCY.labels(model.name).observe(time.monotonic() - started)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def client_for(self, target: Target) -> openai.AsyncOpenAI:
        """The deployment's SDK client (shared with the embeddings adapter)."""
        return self._client(target)

    def base_url(self, deployment: Deployment) -> str:
        return deployment.base_url or self._default_base_url

    def _client(self, target: Target) -> openai.AsyncOpenAI:
        base_url, credential = self.base_url(target.deployment), target.deployment.credential
        egress.check_url(self._egress, base_url)  # an IP literal never reaches the resolver
        key = (base_url, hashlib.sha256(credential.encode()).digest())
        client = self._clients.get(key)
        if client is None:
            client = openai.AsyncOpenAI(
                api_key=credential or "unused",
                base_url=base_url,
                max_retries=0,
                # aiohttp transport: ~45% more calls/s than the default httpx one here;
                # its connector checks each resolved address against the egress policy.
                http_client=egress.http_client(self._egress),
            )
            self._clients[key] = client
            while len(self._clients) > self._max:
                _, old = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(old.close())
        self._clients.move_to_end(key)
        return client


def _messages(messages: tuple[ChatMessage, ...]) -> Any:
    """The SDK's message params (typed dicts the SDK checks; plain dicts at run time)."""
    return wire_messages(messages)


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage()
    prompt, completion = u.prompt_tokens_details, u.completion_tokens_details
    return Usage(
        u.prompt_tokens or 0,
        u.completion_tokens or 0,
        cached_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def _tool_calls(calls: Any) -> tuple[ToolCall, ...]:
    out = []
    for c in calls or ():
        fn = getattr(c, "function", None)  # custom (non-function) tools are not offered
        if fn is not None:
            out.append(ToolCall(c.id or "", fn.name or "", fn.arguments or ""))
    return tuple(out)


def _choice(c: Any) -> Choice:
    m = c.message
    logprobs = c.logprobs.model_dump(mode="json") if c.logprobs is not None else None
    return Choice(
        index=c.index or 0,
        content=m.content or "",
        refusal=m.refusal or "",
        tool_calls=_tool_calls(m.tool_calls),
        finish_reason=c.finish_reason or "",
        logprobs=logprobs,
    )


def _chunk(chunk: Any) -> StreamChunk:
    deltas = []
    for c in chunk.choices or ():
        d = c.delta
        calls = tuple(
            ToolCallDelta(
                index=t.index or 0,
                id=t.id or "",
                name=(t.function.name or "") if t.function else "",
                arguments=(t.function.arguments or "") if t.function else "",
            )
            for t in ((d.tool_calls if d else None) or ())
        )
        deltas.append(
            ChoiceDelta(
                index=c.index or 0,
                content=(d.content or "") if d else "",
                refusal=(d.refusal or "") if d else "",
                tool_calls=calls,
                finish_reason=c.finish_reason or "",
            )
        )
    return StreamChunk(tuple(deltas), _usage(chunk.usage) if chunk.usage else None)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _refused_or_reset(exc: BaseException) -> bool:
    """True when the failure is a connection refused, reset or aborted rather than a
    timeout: the SDK's aiohttp transport reports both as a timeout (ConnectTimeout);
    the OS error underneath tells them apart."""
    errors = [c for c in _causes(exc) if isinstance(c, OSError)]
    return bool(errors) and not isinstance(errors[-1], TimeoutError)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """The provider's Retry-After in seconds (the delta-seconds form only), if sane."""
    value = exc.response.headers.get("retry-after", "") if exc.response is not None else ""
    try:
        wait = float(value)
    except ValueError:
        return None
    return wait if 0 <= wait < 3600 else None


def _context_length(exc: openai.APIStatusError) -> bool:
    """OpenAI's (and vLLM's) code for a prompt over the model's context."""
    code = getattr(exc, "code", None) or ""
    return code == "context_length_exceeded" or "context length" in str(exc.message).lower()


def _failed(model: str, exc: BaseException) -> DomainError:
    """The provider's failure as the status our caller gets (nothing is charged for it)."""
    error: DomainError
    refused = next((c for c in _causes(exc) if isinstance(c, EgressRefused)), None)
    if refused is not None:
        # The tenant's base URL points where the platform does not allow: not retryable.
        error = FailedPrecondition(
            f"the model's provider address is not allowed by the platform: {refused}",
            "PROVIDER_DESTINATION_NOT_ALLOWED",
        )
    elif _refused_or_reset(exc):
        error = Unavailable("the provider is unreachable", "PROVIDER_UNAVAILABLE")
    elif isinstance(exc, TimeoutError | openai.APITimeoutError):
        error = DeadlineExceeded("the model did not answer in time", "PROVIDER_TIMEOUT")
    elif isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 404, 413, 422):
        too_long = _context_length(exc)
        error = InvalidArgument(
            "the prompt is longer than the model's context"
            if too_long
            else f"the provider rejected the request (HTTP {exc.status_code})",
            "PROVIDER_CONTEXT_LENGTH_EXCEEDED" if too_long else "PROVIDER_REJECTED_REQUEST",
            metadata={"http_status": str(exc.status_code)},
        )
    elif isinstance(exc, openai.APIStatusError):
        reason = {401: "PROVIDER_AUTH_FAILED", 403: "PROVIDER_AUTH_FAILED"}.get(
            exc.status_code, "PROVIDER_RATE_LIMITED" if exc.status_code == 429 else "PROVIDER_ERROR"
        )
        metadata = {"http_status": str(exc.status_code)}
        wait = _retry_after(exc)
        if wait is not None:
            metadata["retry_after"] = f"{wait:g}"
        error = Unavailable(
            f"the provider failed (HTTP {exc.status_code})", reason, metadata=metadata
        )
    else:
        error = Unavailable("the provider is unreachable", "PROVIDER_UNAVAILABLE")
    metrics.PROVIDER_ERRORS.labels(model, error.reason).inc()
    return error
