"""identity's ports: one suite, run against the in-memory fakes the unit tests use and
against the PostgreSQL adapters, so a fake cannot drift from production (the refusal reasons
included: the unit tests rely on the fakes giving the same ones)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway_common import db
from gateway_common.errors import AlreadyExists, DomainError, NotFound
from gateway_common.principal import Role
from identity_svc import migrate, ports
from identity_svc.domain import AccessType, ApiKey, Deployment, Model, ModelConfig, Tenant, User
from identity_svc.unit_of_work import sql_uow_factory
from tests.support import fresh_pg_database, sqlalchemy_url
from tests.unit.identity.fakes import FakeUnitOfWork, Store

pytestmark = pytest.mark.integration

Factory = Callable[[], ports.UnitOfWork]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_pg_database("identity_contract") as dsn:
        url = sqlalchemy_url(dsn)
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["fake", "postgres"])
async def uow(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Factory]:
    if request.param == "fake":
        store = Store()
        yield lambda: FakeUnitOfWork(store)
        return
    engine = db.make_engine(database_url, pool_size=2)
    try:
        yield sql_uow_factory(engine)
    finally:
        await engine.dispose()


def new_id() -> str:
    return str(uuid.uuid4())


async def refusal(factory: Factory, write: Callable[[ports.UnitOfWork], object]) -> DomainError:
    with pytest.raises(DomainError) as caught:
        async with factory() as uow:
            await write(uow)  # type: ignore[misc]
            await uow.commit()
    return caught.value


async def a_tenant(factory: Factory) -> Tenant:
    async with factory() as uow:
        tenant = await uow.tenants.add(Tenant(new_id(), f"tenant {uuid.uuid4().hex[:8]}"))
        await uow.commit()
    return tenant


async def test_nothing_is_written_unless_the_block_commits(uow: Factory):
    tid = new_id()
    async with uow() as work:
        await work.tenants.add(Tenant(tid, f"uncommitted {tid[:8]}"))
    async with uow() as work:
        assert await work.tenants.get(tid) is None
    with pytest.raises(RuntimeError):
        async with uow() as work:
            await work.tenants.add(Tenant(tid, f"failed {tid[:8]}"))
            raise RuntimeError("the use case failed")
    async with uow() as work:
        assert await work.tenants.get(tid) is None
        await work.tenants.add(Tenant(tid, f"committed {tid[:8]}"))
        await work.commit()
    async with uow() as work:
        stored = await work.tenants.get(tid)
    assert stored is not None and stored.create_time is not None


async def test_tenant_names_are_unique_ignoring_case(uow: Factory):
    tenant = await a_tenant(uow)
    err = await refusal(uow, lambda w: w.tenants.add(Tenant(new_id(), tenant.name.upper())))
    assert (type(err), err.reason) == (AlreadyExists, "TENANT_EXISTS")


async def test_a_user_needs_an_existing_tenant_and_a_free_email(uow: Factory):
    err = await refusal(uow, lambda w: w.users.add(User(new_id(), new_id(), "orphan")))
    assert (type(err), err.reason) == (NotFound, "TENANT_NOT_FOUND")
    tenant = await a_tenant(uow)
    async with uow() as work:
        await work.users.add(User(new_id(), tenant.tenant_id, "ana", "ana@example.com"))
        await work.commit()
    err = await refusal(
        uow, lambda w: w.users.add(User(new_id(), tenant.tenant_id, "bis", "ANA@example.com"))
    )
    assert (type(err), err.reason) == (AlreadyExists, "EMAIL_EXISTS")
    other = await a_tenant(uow)
    async with uow() as work:  # the same e-mail in another tenant is fine
        await work.users.add(User(new_id(), other.tenant_id, "ana", "ana@example.com"))
        await work.commit()


async def test_users_are_scoped_by_tenant_and_listed_in_keyset_order(uow: Factory):
    tenant, other = await a_tenant(uow), await a_tenant(uow)
    async with uow() as work:
        made = [await work.users.add(User(new_id(), tenant.tenant_id, f"u{i}")) for i in range(3)]
        await work.commit()
    async with uow() as work:
        assert await work.users.get(other.tenant_id, made[0].user_id) is None
        first = await work.users.list(tenant.tenant_id, None, 2)
        last = first[-1]
        rest = await work.users.list(tenant.tenant_id, (last.create_time, last.user_id), 2)  # type: ignore[arg-type]
        everyone = await work.users.list(tenant.tenant_id, None, 10)
        assert [u.user_id for u in first + rest] == [u.user_id for u in everyone]
        assert {u.user_id for u in everyone} == {u.user_id for u in made}
        assert await work.users.delete(other.tenant_id, made[0].user_id) is False
        assert await work.users.delete(tenant.tenant_id, made[0].user_id) is True
        assert await work.users.update(tenant.tenant_id, made[0].user_id, {"name": "x"}) is None
        await work.commit()


async def test_a_request_id_is_recorded_once_per_scope_and_kind(uow: Factory):
    rid, resource, fingerprint = new_id(), new_id(), "f" * 64
    async with uow() as work:
        await work.requests.add("scope-a", "tenant", rid, resource, fingerprint)
        await work.commit()
    with pytest.raises(ports.DuplicateRequest):
        async with uow() as work:
            await work.requests.add("scope-a", "tenant", rid, new_id(), fingerprint)
    async with uow() as work:
        assert await work.requests.find("scope-a", "tenant", rid) == (resource, fingerprint)
        assert await work.requests.find("scope-b", "tenant", rid) is None
        assert await work.requests.find("scope-a", "user", rid) is None
        await work.requests.add("scope-b", "tenant", rid, new_id(), "0" * 64)
        await work.commit()


async def test_revocations_are_read_in_sequence_after_a_cursor(uow: Factory):
    async with uow() as work:
        start = await work.revocations.after(0, 10_000)
        cursor = start[-1].sequence if start else 0
        key, user = new_id(), new_id()
        first = await work.revocations.record("key", key)
        second = await work.revocations.record("user", user)
        await work.commit()
    assert cursor < first.sequence < second.sequence
    async with uow() as work:
        assert await work.revocations.after(cursor, 10) == [first, second]
        assert await work.revocations.after(first.sequence, 10) == [second]
        assert await work.revocations.after(cursor, 1) == [first]
    async with uow() as work:  # rolled back: never visible
        await work.revocations.record("tenant", new_id())
    async with uow() as work:
        assert await work.revocations.after(second.sequence, 10) == []
        assert await work.revocations.prune(datetime.now(UTC) - timedelta(hours=1)) == 0
        assert await work.revocations.prune(datetime.now(UTC) + timedelta(seconds=5)) >= 2
        assert await work.revocations.after(cursor, 10) == []
        await work.commit()


async def test_keys_revoke_once_and_leave_the_default_listing(uow: Factory):
    tenant = await a_tenant(uow)
    async with uow() as work:
        user = await work.users.add(User(new_id(), tenant.tenant_id, "keyholder"))
        key = ApiKey(new_id(), Role.USER, uuid.uuid4().hex[:10], tenant.tenant_id, user.user_id)
        await work.keys.add(key, b"digest")
        await work.commit()
    async with uow() as work:
        assert await work.keys.revoke(new_id()) is None
        revoked = await work.keys.revoke(key.key_id)
        assert revoked is not None and revoked.revoke_time is not None
        listed = await work.keys.list(tenant.tenant_id, "", False, None, 10)
        assert listed == []
        everything = await work.keys.list(tenant.tenant_id, "", True, None, 10)
        assert [k.key_id for k in everything] == [key.key_id]
        found = await work.keys.by_prefix(key.prefix)
        assert found is not None and found.key.key_id == key.key_id
        await work.commit()


async def test_model_names_are_unique_per_scope(uow: Factory):
    tenant = await a_tenant(uow)
    name = f"model-{uuid.uuid4().hex[:8]}"

    def model(tenant_id: str) -> Model:
        return Model(new_id(), name, "openai", AccessType.CLOUD, tenant_id)

    async with uow() as work:
        await work.models.add(model(tenant.tenant_id))
        await work.models.add(model(""))  # the same name globally is another scope
        await work.commit()
    err = await refusal(uow, lambda w: w.models.add(model(tenant.tenant_id)))
    assert (type(err), err.reason) == (AlreadyExists, "MODEL_EXISTS")
    err = await refusal(uow, lambda w: w.models.add(model(new_id())))
    assert (type(err), err.reason) == (NotFound, "TENANT_NOT_FOUND")


async def test_deployments_in_order_scoped_by_tenant_and_gone_with_their_configuration(
    uow: Factory,
):
    tenant, other = await a_tenant(uow), await a_tenant(uow)
    model = Model(new_id(), f"m-{uuid.uuid4().hex[:8]}", "openai", AccessType.CLOUD)
    config = ModelConfig(new_id(), tenant.tenant_id, model.model_id, fallback_models=("b", "a"))
    async with uow() as work:
        await work.models.add(model)
        stored = await work.configs.add(config)
        rows = [
            await work.deployments.add(
                Deployment(new_id(), tenant.tenant_id, config.config_id, priority=p, weight=w)
            )
            for p, w in ((5, 1), (0, 3), (0, 1))
        ]
        await work.commit()
    assert stored.fallback_models == ("b", "a") and not stored.fallback_on_context_length
    async with uow() as work:
        ordered = await work.deployments.in_order(tenant.tenant_id, config.config_id, 16)
        listed = await work.deployments.list(tenant.tenant_id, config.config_id, None, 2)
        assert await work.deployments.count(tenant.tenant_id, config.config_id) == 3
        assert await work.deployments.get(other.tenant_id, rows[0].deployment_id) is None
        assert await work.deployments.in_order(other.tenant_id, config.config_id, 16) == []
        changed = await work.deployments.update(
            tenant.tenant_id, rows[0].deployment_id, {"weight": 7, "attempt_timeout_ms": None}
        )
    assert [d.priority for d in ordered] == [0, 0, 5]  # ties: any order (weights decide later)
    assert sorted((d.priority, d.weight) for d in ordered) == [(0, 1), (0, 3), (5, 1)]
    by_age = sorted(rows, key=lambda r: (r.create_time, r.deployment_id))  # one now() in PG
    assert [d.deployment_id for d in listed] == [r.deployment_id for r in by_age[:2]]
    assert changed is not None and changed.weight == 7  # not committed
    async with uow() as work:
        assert (await work.deployments.get(tenant.tenant_id, rows[0].deployment_id)).weight == 1
        assert await work.configs.delete(tenant.tenant_id, config.config_id)
        await work.commit()
    async with uow() as work:
        assert await work.deployments.count(tenant.tenant_id, config.config_id) == 0
