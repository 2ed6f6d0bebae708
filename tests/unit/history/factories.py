"""Builders of test interactions."""

from __future__ import annotations

import datetime as dt
import uuid

from history_svc.domain import Interaction, Metadata, Status

BASE = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def interaction(
    tenant: str = "tenant-a",
    user: str = "user-a1",
    *,
    at: dt.datetime | None = None,
    seconds: float = 0,
    model: str = "model-1",
    question: str = "What is the capital of France?",
    answer: str = "Paris.",
    status: Status = Status.OK,
    prompt_tokens: int = 7,
    completion_tokens: int = 2,
    latency_ms: int = 120,
    interaction_id: str | None = None,
) -> Interaction:
    return Interaction(
        interaction_id=interaction_id or str(uuid.uuid4()),
        tenant_id=tenant,
        user_id=user,
        timestamp=(at or BASE) + dt.timedelta(seconds=seconds),
        subscription_id=f"sub-{tenant}",
        model_id=model,
        model_name=f"{model}-name",
        question=question,
        answer=answer,
        metadata=Metadata(
            tokens_used=prompt_tokens + completion_tokens,
            response_time_ms=latency_ms,
            prompt_parameters={"temperature": 0.7, "max_tokens": 1000.0},
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        ),
        status=status,
        error_reason="provider said 503" if status is Status.ERROR else "",
        request_id=f"req-{uuid.uuid4().hex[:8]}",
    )
