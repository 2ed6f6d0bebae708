"""The scenarios of ``make bench``: which file, which process, which seeded data."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.seed import ROUTED_MODEL, Seed
from bench.stack import Stack


@dataclass
class Ctx:
    stack: Stack
    seed: Seed
    # Successful calls that count a request, by usage subject: spread / hot / chat.
    expected: dict[str, int] = field(default_factory=lambda: {"spread": 0, "hot": 0, "chat": 0})
    fallback_ids: dict[str, str] = field(default_factory=dict)

    def some_id(self, name: str) -> str:
        """A stable random id when seeding did not provide one (internal RPCs need none)."""
        return self.fallback_ids.setdefault(name, str(uuid.uuid4()))


Env = Callable[[Ctx], dict[str, str]]
OVERLOAD_CONCURRENCY = 256  # several times what Chat serves at once on 2 cores


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    service: str  # the process that must be up
    file: str  # in bench/scenarios/
    needs: tuple[str, ...] = ()  # Seed fields
    env: Env = lambda ctx: {}
    spread: bool = False  # data: one message per spread user (round robin)
    commit: str = ""  # a Reserve scenario: the Commit file run on the same ids
    counts_as: str = ""  # the usage subject its successful calls are charged to
    tool: str = "ghz"
    concurrencies: tuple[int, ...] = ()  # instead of BENCH_CONCURRENCY
    allowed_errors: tuple[str, ...] = ()  # codes that are the point (overload: UNAVAILABLE)
    optional: bool = False  # not answering = skipped, not a failure (a door still being built)


def _internal(ctx: Ctx) -> dict[str, str]:
    # quota's counting RPCs answer llm only: the load presents llm's credential
    return {
        "BENCH_SERVICE_TOKEN": ctx.stack.service_tokens["llm"],
        "BENCH_TENANT_ID": ctx.seed.tenant_id,
    }


def _record(ctx: Ctx) -> dict[str, str]:
    seed = ctx.seed
    return {
        "BENCH_SERVICE_TOKEN": ctx.stack.service_tokens["quota"],  # history's one caller
        "BENCH_TENANT_ID": seed.tenant_id or ctx.some_id("tenant"),
        "BENCH_USER_ID": seed.chat_user or ctx.some_id("user"),
        "BENCH_MODEL_ID": seed.model_id or ctx.some_id("model"),
    }


# history_list runs last: a store that cannot sort 100,000 documents fast (FerretDB) is
# left busy by it, and would otherwise slow the scenarios after it.
SPECS: list[Spec] = [
    Spec("echo", "Echo baseline (grpc.aio)", "echo", "echo.json"),
    Spec(
        "authenticate",
        "identity Authenticate",
        "identity",
        "authenticate.json",
        needs=("chat_key",),
        env=lambda ctx: {"BENCH_API_KEY": ctx.seed.chat_key},
    ),
    Spec(
        "quota_spread",
        "quota Reserve+Settle, 10,000 users",
        "quota",
        "quota_reserve.json",
        needs=("tenant_id", "spread_users"),
        env=_internal,
        spread=True,
        commit="quota_settle.json",
        counts_as="spread",
    ),
    Spec(
        "quota_hot",
        "quota Reserve+Settle, one hot user",
        "quota",
        "quota_reserve.json",
        needs=("tenant_id", "hot_user"),
        env=lambda ctx: {**_internal(ctx), "BENCH_USER_ID": ctx.seed.hot_user},
        commit="quota_settle.json",
        counts_as="hot",
    ),
    Spec(
        "history_record",
        "history RecordInteractions, a batch of 1",
        "history",
        "history_record.json",
        env=_record,
    ),
    Spec(
        "history_record_batch",
        "history RecordInteractions, a batch of 50",
        "history",
        "history_record_batch.json",
        env=_record,
    ),
    Spec(
        "chat",
        "llm Chat end to end",
        "llm",
        "chat.json",
        needs=("chat_key", "model_ready"),
        env=lambda ctx: {"BENCH_API_KEY": ctx.seed.chat_key},
        counts_as="chat",
    ),
    Spec(
        "chat_routed",
        "llm Chat over two deployments, one failing half its calls",
        "llm",
        "chat.json",
        needs=("chat_key", "routed_ready"),
        env=lambda ctx: {"BENCH_API_KEY": ctx.seed.chat_key, "BENCH_MODEL": ROUTED_MODEL},
        counts_as="chat",
    ),
    Spec(
        "chat_stream",
        "llm ChatStream end to end",
        "llm",
        "chat_stream.json",
        needs=("chat_key", "model_ready"),
        env=lambda ctx: {"BENCH_API_KEY": ctx.seed.chat_key},
        counts_as="chat",
    ),
    Spec(
        "chat_overload",
        "llm Chat far above capacity (load shedding)",
        "llm",
        "chat.json",
        needs=("chat_key", "model_ready"),
        env=lambda ctx: {"BENCH_API_KEY": ctx.seed.chat_key},
        counts_as="chat",
        concurrencies=(OVERLOAD_CONCURRENCY,),
        allowed_errors=("UNAVAILABLE",),
    ),
    # The HTTP scenarios: hey, the same body and concurrencies for every target.
    Spec(
        "http_chat",
        "llm HTTP door POST /v1/chat/completions (hey)",
        "llm_http",
        "http_chat.json",
        needs=("chat_key", "model_ready"),
        env=lambda ctx: {"BENCH_API_KEY": ctx.seed.chat_key},
        counts_as="chat",
        tool="hey",
        optional=True,
    ),
    Spec(
        "litellm",
        "LiteLLM proxy chat (HTTP, hey)",
        "litellm",
        "litellm_chat.json",
        env=lambda ctx: {"BENCH_LITELLM_KEY": ctx.stack.litellm_key},
        tool="hey",
    ),
    Spec(
        "portkey",
        "Portkey gateway chat (HTTP, hey)",
        "portkey",
        "portkey_chat.json",
        env=lambda ctx: {"BENCH_PROVIDER_URL": f"http://{ctx.stack.target('fake')}/v1"},
        tool="hey",
    ),
    Spec(
        "history_list",
        "history ListInteractions (one user's page of 20, 100,000 stored)",
        "history",
        "history_list.json",
        needs=("tenant_admin_key", "interactions"),
        env=lambda ctx: {
            "BENCH_API_KEY": ctx.seed.tenant_admin_key,
            "BENCH_TENANT_ID": ctx.seed.tenant_id,
            "BENCH_USER_ID": ctx.seed.spread_users[0] if ctx.seed.spread_users else "",
        },
    ),
]
