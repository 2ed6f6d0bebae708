"""Seeding the bench stack over the public gRPC APIs (concurrently), plus the 100,000
stored interactions written straight into the fresh history database.

Every step records its failure instead of raising, so the scenarios that do not need
the failed step still run; ``Seed.missing(...)`` says why a scenario cannot.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from bench.stack import MONGO_URL, ROOT, Stack
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as igrpc
from llmgw.quota.v1 import quota_pb2 as qpb
from llmgw.quota.v1 import quota_pb2_grpc as qgrpc

MODEL = "bench-model"
ROUTED_MODEL = "bench-model-routed"  # two deployments: the fake, and one failing half its calls
PLAN_LIMIT = 1_000_000_000  # the contract's maximum: never reached by a run
T = TypeVar("T")


@dataclass
class Seed:
    admin_key: str = ""
    tenant_id: str = ""
    tenant_admin_key: str = ""
    plan_id: str = ""
    spread_users: list[str] = field(default_factory=list)  # subscribed
    hot_user: str = ""
    chat_user: str = ""
    chat_key: str = ""
    model_id: str = ""
    model_ready: bool = False
    routed_ready: bool = False
    interactions: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # step -> why it failed
    seconds: dict[str, float] = field(default_factory=dict)

    def missing(self, *needs: str) -> str:
        """'' when every named field is set, else which are not and why."""
        absent = [n for n in needs if not getattr(self, n)]
        if not absent:
            return ""
        reasons = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        return f"seed missing {', '.join(absent)}" + (f" ({reasons})" if reasons else "")

    def report(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant_id or "-",
            "spread users subscribed": len(self.spread_users),
            "interactions stored": self.interactions,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "errors": self.errors or "none",
        }


def _why(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


def create_admin_key(stack: Stack) -> str:
    """``python -m identity_svc.create_admin_key`` against the fresh identity database."""
    done = subprocess.run(
        [sys.executable, "-m", "identity_svc.create_admin_key", "--name", "bench admin"],
        env=stack.service_env("identity"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError((done.stderr or done.stdout).strip()[-400:])
    found = re.search(r"api_key:\s*(\S+)", done.stdout)
    if not found:
        raise RuntimeError(f"no 'api_key:' line in output: {done.stdout[-200:]!r}")
    return found.group(1)


def _md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def _bounded(items: list[T], fn: Callable[[T], Awaitable[str]], limit: int) -> list[str]:
    sem = asyncio.Semaphore(limit)

    async def one(item: T) -> str:
        async with sem:
            return await fn(item)

    return await asyncio.gather(*(one(i) for i in items))


class Seeder:
    def __init__(self, stack: Stack, users: int, interactions: int, concurrency: int = 48):
        self.stack = stack
        self.users = users
        self.want_interactions = interactions
        self.concurrency = concurrency
        self.seed = Seed()

    async def _step(self, name: str, coro: Awaitable[T]) -> T | None:
        start = time.monotonic()
        try:
            return await coro
        except Exception as exc:  # noqa: BLE001 - a failed step is reported, not fatal
            self.seed.errors[name] = _why(exc)
            return None
        finally:
            self.seed.seconds[name] = time.monotonic() - start

    async def run(self) -> Seed:
        s = self.seed
        start = time.monotonic()
        try:
            s.admin_key = await asyncio.to_thread(create_admin_key, self.stack)
        except Exception as exc:  # noqa: BLE001
            s.errors["admin key"] = _why(exc)
            return s
        finally:
            s.seconds["admin key"] = time.monotonic() - start
        async with (
            grpc.aio.insecure_channel(self.stack.target("identity")) as ich,
            grpc.aio.insecure_channel(self.stack.target("quota")) as qch,
        ):
            self.identity = igrpc.IdentityServiceStub(ich)
            self.quota = qgrpc.QuotaServiceStub(qch)
            await self._step("tenant", self._tenant())
            if not s.tenant_id:
                return s
            await self._step("model", self._model())
            await self._step("routed model", self._routed_model())
            users = await self._step("users", self._users())
            if users:
                await self._step("plan", self._plan())
                if s.plan_id:
                    await self._step("subscriptions", self._subscribe(users))
            await self._step("keys", self._keys())
        return s

    async def _tenant(self) -> None:
        md = _md(self.seed.admin_key)
        tenant = ipb.Tenant(name=f"bench {self.stack.tag}", time_zone="UTC")
        reply = await self.identity.CreateTenant(
            ipb.CreateTenantRequest(tenant=tenant, request_id=str(uuid.uuid4())), metadata=md
        )
        self.seed.tenant_id = reply.tenant.tenant_id
        key = await self.identity.CreateApiKey(
            ipb.CreateApiKeyRequest(
                tenant_id=self.seed.tenant_id,
                role=ipb.ROLE_TENANT_ADMIN,
                display_name="bench tenant admin",
                request_id=str(uuid.uuid4()),
            ),
            metadata=md,
        )
        self.seed.tenant_admin_key = key.secret

    async def _model(self) -> None:
        md, tenant = _md(self.seed.admin_key), self.seed.tenant_id
        model = ipb.Model(
            tenant_id=tenant, name=MODEL, provider="openai", access_type=ipb.ACCESS_TYPE_CLOUD
        )
        reply = await self.identity.CreateModel(
            ipb.CreateModelRequest(model=model, request_id=str(uuid.uuid4())), metadata=md
        )
        self.seed.model_id = reply.model.model_id
        config = ipb.ModelConfig(tenant_id=tenant, model_id=self.seed.model_id)
        created = await self.identity.CreateModelConfig(
            ipb.CreateModelConfigRequest(config=config, request_id=str(uuid.uuid4())),
            metadata=md,
        )
        row = ipb.ModelDeployment(
            tenant_id=tenant,
            config_id=created.config.config_id,
            base_url=f"http://127.0.0.1:{self.stack.ports['fake']}/v1",
        )
        await self.identity.CreateModelDeployment(
            ipb.CreateModelDeploymentRequest(
                deployment=row, credential="fake-provider-key", request_id=str(uuid.uuid4())
            ),
            metadata=md,
        )
        self.seed.model_ready = True

    async def _routed_model(self) -> None:
        """ROUTED_MODEL over two deployments of equal priority and weight: the healthy fake
        and fake_flaky (every other call a 503)."""
        md, tenant = _md(self.seed.admin_key), self.seed.tenant_id
        model = ipb.Model(
            tenant_id=tenant,
            name=ROUTED_MODEL,
            provider="openai",
            access_type=ipb.ACCESS_TYPE_CLOUD,
        )
        reply = await self.identity.CreateModel(
            ipb.CreateModelRequest(model=model, request_id=str(uuid.uuid4())), metadata=md
        )
        config = ipb.ModelConfig(tenant_id=tenant, model_id=reply.model.model_id)
        created = await self.identity.CreateModelConfig(
            ipb.CreateModelConfigRequest(config=config, request_id=str(uuid.uuid4())),
            metadata=md,
        )
        for fake in ("fake", "fake_flaky"):
            row = ipb.ModelDeployment(
                tenant_id=tenant,
                config_id=created.config.config_id,
                base_url=f"http://127.0.0.1:{self.stack.ports[fake]}/v1",
            )
            await self.identity.CreateModelDeployment(
                ipb.CreateModelDeploymentRequest(
                    deployment=row, credential="fake-provider-key", request_id=str(uuid.uuid4())
                ),
                metadata=md,
            )
        self.seed.routed_ready = True

    async def _users(self) -> list[str]:
        md, tenant = _md(self.seed.admin_key), self.seed.tenant_id

        async def create(i: int) -> str:
            user = ipb.User(tenant_id=tenant, name=f"bench user {i}", email=f"u{i}@bench.test")
            reply = await self.identity.CreateUser(
                ipb.CreateUserRequest(user=user, request_id=str(uuid.uuid4())), metadata=md
            )
            return str(reply.user.user_id)

        # spread users, then the hot user and the chat user
        ids = await _bounded(list(range(self.users + 2)), create, self.concurrency)
        return ids

    async def _plan(self) -> None:
        plan = qpb.Plan(
            tenant_id=self.seed.tenant_id, name="bench unlimited", monthly_request_limit=PLAN_LIMIT
        )
        reply = await self.quota.CreatePlan(
            qpb.CreatePlanRequest(plan=plan, request_id=str(uuid.uuid4())),
            metadata=_md(self.seed.admin_key),
        )
        self.seed.plan_id = reply.plan.plan_id

    async def _subscribe(self, users: list[str]) -> None:
        md, tenant, plan = _md(self.seed.admin_key), self.seed.tenant_id, self.seed.plan_id

        async def subscribe(user_id: str) -> str:
            await self.quota.CreateSubscription(
                qpb.CreateSubscriptionRequest(
                    tenant_id=tenant, user_id=user_id, plan_id=plan, request_id=str(uuid.uuid4())
                ),
                metadata=md,
            )
            return user_id

        done = await _bounded(users, subscribe, self.concurrency)
        self.seed.spread_users = done[: self.users]
        self.seed.hot_user, self.seed.chat_user = done[self.users], done[self.users + 1]

    async def _keys(self) -> None:
        if not self.seed.chat_user:
            return
        reply = await self.identity.CreateApiKey(
            ipb.CreateApiKeyRequest(
                tenant_id=self.seed.tenant_id,
                user_id=self.seed.chat_user,
                role=ipb.ROLE_USER,
                display_name="bench chat user",
                request_id=str(uuid.uuid4()),
            ),
            metadata=_md(self.seed.admin_key),
        )
        self.seed.chat_key = reply.secret


async def store_interactions(stack: Stack, seed: Seed, count: int, batch: int = 2000) -> None:
    """``count`` interactions of the seed's tenant, spread over its users and the last 30
    days, inserted with insert_many in the document shape history_svc itself writes
    (history_svc.mongo_documents.to_document, the spec's ``interacoes`` shape)."""
    from pymongo import AsyncMongoClient

    from history_svc.domain import Interaction, Metadata
    from history_svc.mongo_documents import to_document

    tenant = seed.tenant_id or str(uuid.uuid4())
    users = seed.spread_users[:1000] or [str(uuid.uuid4()) for _ in range(100)]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    try:
        collection = client[stack.mongo_db]["interacoes"]
        sem = asyncio.Semaphore(3)

        async def insert(start: int) -> None:
            docs = []
            for i in range(start, min(start + batch, count)):
                item = Interaction(
                    interaction_id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    user_id=users[i % len(users)],
                    timestamp=now - dt.timedelta(seconds=26 * i),
                    model_id=seed.model_id,
                    model_name=MODEL,
                    question=f"bench question {i}",
                    answer=f"Echo: bench question {i}",
                    metadata=Metadata(
                        tokens_used=7, response_time_ms=3, prompt_tokens=3, completion_tokens=4
                    ),
                    request_id=str(uuid.uuid4()),
                )
                docs.append(to_document(item))
            async with sem:
                await collection.insert_many(docs, ordered=False)

        await asyncio.gather(*(insert(i) for i in range(0, count, batch)))
        seed.interactions = await collection.count_documents({"distribuidor_id": tenant})
    finally:
        await client.close()
