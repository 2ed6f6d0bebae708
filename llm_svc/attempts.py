"""What a chat call's attempts need beside the router: the route taken so far (for the
record, even when the caller leaves mid-way), the fallback models' own parameters, and a
stream opened up to its first delta (the last point where it may still be retried)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gateway_common.errors import DeadlineExceeded, DomainError
from llm_svc.chat_schema import cap_tokens, provider_parameters
from llm_svc.domain import Attempt, ChatRequest, ResolvedModel, StreamChunk, Target
from llm_svc.ports import IdentityPort
from llm_svc.routing import FallbackFn
from llm_svc.token_bound import asked_cap

Chunks = AsyncGenerator[StreamChunk, None]


@dataclass
class Route:
    """The attempts of one call so far and the target that answered (mutable: the router
    appends as it goes, so a cancelled call still records what was tried)."""

    parameters: dict[str, Any]  # the requested model's, as admitted
    attempts: list[Attempt] = field(default_factory=list)
    target: Target | None = None
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)  # fallbacks' own

    def parameters_for(self, model: ResolvedModel) -> dict[str, Any]:
        return self.by_model.get(model.name, self.parameters)

    def failed_after_start(self, reason: str) -> None:
        """The answering attempt failed part-way (a stream after its first delta)."""
        if self.attempts and self.attempts[-1].status == "OK":
            self.attempts[-1] = replace(self.attempts[-1], status=reason, http_status=0)


def fallback_loader(
    identity: IdentityPort,
    tenant_id: str,
    request: ChatRequest,
    route: Route,
    remaining: Callable[[], float],
) -> FallbackFn:
    """Resolves a fallback model by name; None (skipped) when it is not the tenant's, has
    no deployment, cannot be resolved now or refuses this request's parameters."""

    async def load(name: str) -> ResolvedModel | None:
        try:
            model = await identity.resolve_model(tenant_id, name, remaining())
            parameters = provider_parameters(request, model)
        except DomainError:
            return None
        if not model.deployments:
            return None
        # Quota held the requested model's bound: a fallback is sent no larger a cap.
        cap_tokens(parameters, asked_cap(route.parameters))
        route.by_model[model.name] = parameters
        return model

    return load


async def open_stream(chunks: Chunks, first_delta_within: float) -> list[StreamChunk]:
    """The stream's chunks up to and including the first that carries a delta (all of
    them when it ends first), read within ``first_delta_within`` seconds; the generator
    is closed on any failure, so the provider stops."""
    head: list[StreamChunk] = []
    try:
        async with asyncio.timeout(first_delta_within):
            async for chunk in chunks:
                head.append(chunk)
                if any(d.carries for d in chunk.choices):
                    break
    except TimeoutError:
        await _close(chunks)
        raise DeadlineExceeded("the model did not answer in time", "PROVIDER_TIMEOUT") from None
    except BaseException:
        await _close(chunks)
        raise
    return head


async def replay(head: list[StreamChunk], chunks: Chunks) -> Chunks:
    """The chunks already read, then the rest of the stream."""
    for chunk in head:
        yield chunk
    async for chunk in chunks:
        yield chunk


async def _close(chunks: Chunks) -> None:
    with contextlib.suppress(Exception):
        await chunks.aclose()
