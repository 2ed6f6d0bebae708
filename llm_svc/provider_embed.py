"""Embeddings through the same ``openai.AsyncOpenAI`` clients as chat (one per base URL
and credential, no SDK retries, the caller's remaining time as the budget), the SDK's
errors translated the same way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai

from gateway_common import tracing
from llm_svc import metrics
from llm_svc.domain import Embeddings, Target, Usage
from llm_svc.ports import EmbedderPort
from llm_svc.provider import OpenAIProvider, _failed

_TRACER = tracing.tracer("llm_svc.provider")


class OpenAIEmbedder(EmbedderPort):
    def __init__(self, provider: OpenAIProvider) -> None:
        self._provider = provider

    async def embed(
        self,
        target: Target,
        inputs: tuple[str, ...],
        parameters: dict[str, Any],
        timeout: float,
    ) -> Embeddings:
        started, model = time.monotonic(), target.model
        attributes = {
            "gen_ai.request.model": model.name,
            "llmgw.model_id": model.model_id,
            "llmgw.deployment_id": target.deployment.deployment_id,
        }
        with _TRACER.start_as_current_span("provider.embeddings", attributes=attributes):
            try:
                async with asyncio.timeout(timeout):
                    reply = await self._provider.client_for(target).embeddings.create(
                        model=target.upstream_model,
                        input=list(inputs),
                        encoding_format="float",
                        timeout=timeout,
                        extra_body=parameters,
                    )
            except (openai.OpenAIError, TimeoutError) as exc:
                raise _failed(model.name, exc) from None
        metrics.PROVIDER_LATENCY.labels(model.name).observe(time.monotonic() - started)
        ordered = sorted(reply.data, key=lambda d: d.index)
        vectors = tuple(tuple(float(x) for x in d.embedding) for d in ordered)
        u = reply.usage
        return Embeddings(vectors, Usage(prompt_tokens=u.prompt_tokens or 0) if u else Usage())
