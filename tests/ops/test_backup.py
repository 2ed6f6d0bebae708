"""Backup and restore of quota's database (docs/operations.md): a ``pg_dump`` taken while
quota holds counts, open reservations and outbox entries, restored with ``pg_restore`` into
a fresh database, gives a quota server the same counts and the same rows."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path

import psycopg
from google.protobuf.timestamp_pb2 import Timestamp

from gateway_common.principal import Principal, Role
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from quota_svc import migrate
from quota_svc.bootstrap import build
from quota_svc.config import QuotaSettings
from tests.integration.quota.conftest import (
    BASE_TIME,
    FakeAuthenticator,
    FakeMembers,
    MovableClock,
    Quota,
    bearer,
    commit,
    new_plan,
    release,
    reserve,
    subscribe,
)
from tests.ops.pgtools import pg_bin
from tests.support import fresh_pg_database, running_server, service_env, sqlalchemy_url

TABLES = ("plano_de_uso", "assinatura_plano", "historico_plano", "reserva_requisicao", "outbox")


@asynccontextmanager
async def quota_on(dsn: str, auth: FakeAuthenticator, members: FakeMembers) -> AsyncIterator[Quota]:
    settings = QuotaSettings(
        database_url=sqlalchemy_url(dsn),
        **service_env("quota"),
        db_pool_size=2,
        settle_interval_seconds=0,
        relay_enabled=False,
    )
    clock = MovableClock(BASE_TIME)
    async with running_server(
        settings, build(settings, authenticator=auth, members=members, clock=clock)
    ) as (
        _,
        channel,
    ):
        yield Quota(
            quota_pb2_grpc.QuotaServiceStub(channel),
            quota_pb2_grpc.QuotaInternalServiceStub(channel),
            auth,
            clock,
            settings,
            members,
        )


async def usage(q: Quota, tenant_id: str, user_id: str) -> int:
    when = Timestamp()
    when.FromDatetime(BASE_TIME.astimezone(UTC))
    reply = await q.public.GetUsage(
        quota_pb2.GetUsageRequest(tenant_id=tenant_id, user_id=user_id, time=when),
        metadata=bearer(q.platform_key),
    )
    return int(reply.used)


def row_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


async def test_pg_dump_restored_into_a_fresh_database_has_the_same_counts(tmp_path: Path) -> None:
    auth = FakeAuthenticator()
    auth.keys["platform"] = Principal(Role.PLATFORM_ADMIN, key_id="platform")
    members = FakeMembers()
    dump = tmp_path / "quota.dump"
    with fresh_pg_database("backup") as source:
        migrate.upgrade(source)
        async with quota_on(source, auth, members) as q:
            tenant = q.new_tenant()
            plan = await new_plan(q, q.platform_key, tenant.tenant_id, limit=50)
            users = [str(uuid.uuid4()) for _ in range(3)]
            for n, user in enumerate(users):
                await subscribe(q, tenant, plan, user)
                for _ in range(n + 2):  # committed
                    rid = uuid.uuid4().hex
                    await reserve(q, tenant, user, rid)
                    await commit(q, tenant, user, rid)
                await reserve(q, tenant, user, uuid.uuid4().hex)  # open at backup time
                rid = uuid.uuid4().hex
                await reserve(q, tenant, user, rid)
                await release(q, tenant, user, rid, reason="provider failed")
            before = {u: await usage(q, tenant.tenant_id, u) for u in users}
        rows = row_counts(source)
        subprocess.run(  # noqa: ASYNC221 - a one-off tool run
            [pg_bin("pg_dump"), "--format=custom", f"--file={dump}", source], check=True
        )
    assert before == {users[0]: 3, users[1]: 4, users[2]: 5}
    with fresh_pg_database("restored") as target:
        subprocess.run(  # noqa: ASYNC221
            [
                pg_bin("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                f"--dbname={target}",
                str(dump),
            ],
            check=True,
        )
        assert row_counts(target) == rows
        migrate.upgrade(target)  # the restored schema is at head: nothing to apply
        async with quota_on(target, auth, members) as q:
            assert {u: await usage(q, tenant.tenant_id, u) for u in users} == before
            rid = uuid.uuid4().hex  # and it keeps counting from there
            await reserve(q, tenant, users[0], rid)
            await commit(q, tenant, users[0], rid)
            assert await usage(q, tenant.tenant_id, users[0]) == before[users[0]] + 1
