"""Use cases against in-memory fakes: authorization, validation, idempotency, caching."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from gateway_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from gateway_common.idempotency import RequestKey
from gateway_common.principal import Principal, Role
from identity_svc import domain as d
from identity_svc.bootstrap import use_cases
from identity_svc.config import IdentitySettings
from identity_svc.crypto import KeyRing
from tests.unit.identity.fakes import FakeUnitOfWork, Store

ADMIN = Principal(Role.PLATFORM_ADMIN, key_id="k0")
NO_ID = RequestKey("", "")


@pytest.fixture
def store():
    return Store()


@pytest.fixture
def uc(store):
    settings = IdentitySettings(auth_cache_ttl_seconds=60, resolve_cache_ttl_seconds=60)
    return use_cases(settings, lambda: FakeUnitOfWork(store), KeyRing([("t", os.urandom(32))]))


async def _tenant_admin(uc, name="acme"):
    tenant = await uc.tenants.create(ADMIN, name, "", "Europe/Lisbon", NO_ID)
    draft = d.ApiKey("", Role.TENANT_ADMIN, "", tenant_id=tenant.tenant_id)
    _, secret = await uc.keys.create(ADMIN, draft, NO_ID)
    return tenant, await uc.keys.authenticate(secret)


async def test_authenticate_caches_verified_keys_only(uc, store):
    tenant, principal = await _tenant_admin(uc)
    assert principal.time_zone == "Europe/Lisbon" and principal.tenant_id == tenant.tenant_id
    _, secret = await uc.keys.create(
        ADMIN, d.ApiKey("", Role.TENANT_ADMIN, "", tenant_id=tenant.tenant_id), NO_ID
    )
    await uc.keys.feed.poll()  # the cache serves only while the revocation feed is fresh
    before = store.prefix_lookups
    for _ in range(5):
        await uc.keys.authenticate(secret)
    assert store.prefix_lookups == before + 1
    wrong = secret[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await uc.keys.authenticate(wrong)
    assert store.prefix_lookups == before + 3  # failures are not cached
    with pytest.raises(InvalidArgument):
        await uc.keys.authenticate("")


async def test_revoke_drops_the_local_cache_entry_at_once(uc):
    tenant, principal = await _tenant_admin(uc)
    draft = d.ApiKey("", Role.TENANT_ADMIN, "", tenant_id=tenant.tenant_id)
    key, secret = await uc.keys.create(principal, draft, NO_ID)
    await uc.keys.authenticate(secret)
    await uc.keys.revoke(principal, key.key_id)
    with pytest.raises(Unauthenticated) as caught:
        await uc.keys.authenticate(secret)
    assert caught.value.reason == "API_KEY_REVOKED"


async def test_expired_key(uc, store):
    tenant, principal = await _tenant_admin(uc)
    uc.keys.clock = lambda: datetime.now(UTC)
    soon = datetime.now(UTC) + timedelta(seconds=30)
    draft = d.ApiKey("", Role.TENANT_ADMIN, "", tenant_id=tenant.tenant_id, expire_time=soon)
    _, secret = await uc.keys.create(principal, draft, NO_ID)
    uc.keys.clock = lambda: soon + timedelta(seconds=1)
    with pytest.raises(Unauthenticated) as caught:
        await uc.keys.authenticate(secret)
    assert caught.value.reason == "API_KEY_EXPIRED"
    past = d.ApiKey("", Role.TENANT_ADMIN, "", tenant_id=tenant.tenant_id, expire_time=soon)
    with pytest.raises(InvalidArgument):
        await uc.keys.create(principal, past, NO_ID)


async def test_key_issuing_rules(uc):
    tenant, ta = await _tenant_admin(uc)
    other, _ = await _tenant_admin(uc, "other")
    with pytest.raises(PermissionDenied):
        await uc.keys.create(ta, d.ApiKey("", Role.PLATFORM_ADMIN, ""), NO_ID)
    with pytest.raises(PermissionDenied):
        await uc.keys.create(
            ta, d.ApiKey("", Role.TENANT_ADMIN, "", tenant_id=other.tenant_id), NO_ID
        )
    with pytest.raises(InvalidArgument):
        await uc.keys.create(ta, d.ApiKey("", Role.USER, "", tenant_id=tenant.tenant_id), NO_ID)
    missing = "00000000-0000-4000-8000-000000000000"
    ghost = d.ApiKey("", Role.USER, "", tenant_id=tenant.tenant_id, user_id=missing)
    with pytest.raises(NotFound):
        await uc.keys.create(ta, ghost, NO_ID)


async def test_idempotent_creation_is_scoped_to_the_callers_tenant(uc):
    tenant, ta = await _tenant_admin(uc)
    first = await uc.users.create(ta, tenant.tenant_id, "ana", "ana@x.io", RequestKey("r1", "ana"))
    again = await uc.users.create(ta, tenant.tenant_id, "ana", "ana@x.io", RequestKey("r1", "ana"))
    assert again == first
    with pytest.raises(AlreadyExists):
        await uc.users.create(ta, tenant.tenant_id, "ana", "ANA@x.io", RequestKey("r2", "ANA"))
    other, tb = await _tenant_admin(uc, "other")
    theirs = await uc.users.create(tb, other.tenant_id, "ana", "ana@x.io", RequestKey("r1", "ana"))
    assert theirs.user_id != first.user_id


async def test_tenant_checks_come_before_existence(uc):
    _, ta = await _tenant_admin(uc)
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(PermissionDenied):
        await uc.users.get(ta, missing, missing)
    with pytest.raises(PermissionDenied):
        await uc.tenants.get(ta, missing)
    with pytest.raises(PermissionDenied):
        await uc.configs.get(ta, missing, missing)


async def test_delete_tenant_needs_cascade_when_it_has_users(uc):
    tenant, ta = await _tenant_admin(uc)
    await uc.users.create(ta, tenant.tenant_id, "u", "", NO_ID)
    with pytest.raises(PermissionDenied):
        await uc.tenants.delete(ta, tenant.tenant_id, True)
    with pytest.raises(FailedPrecondition):
        await uc.tenants.delete(ADMIN, tenant.tenant_id, False)
    await uc.tenants.delete(ADMIN, tenant.tenant_id, True)
    with pytest.raises(NotFound):
        await uc.tenants.get(ADMIN, tenant.tenant_id)


async def test_pages_cover_everything_once(uc):
    for i in range(7):
        await uc.tenants.create(ADMIN, f"t{i}", "", "", NO_ID)
    seen, token = [], ""
    while True:
        page = await uc.tenants.list_page(ADMIN, 3, token)
        seen += [t.name for t in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"t{i}" for i in range(7)]
    with pytest.raises(InvalidArgument):
        await uc.users.list_page(ADMIN, "00000000-0000-4000-8000-000000000000", 3, "garbage")


async def test_models_configs_and_resolve(uc, store):
    tenant, ta = await _tenant_admin(uc)
    glob = d.Model("", "gpt", "OpenAI", d.AccessType.CLOUD)
    with pytest.raises(PermissionDenied):
        await uc.models.create(ta, glob, NO_ID)
    g = await uc.models.create(ADMIN, glob, NO_ID)
    mine = await uc.models.create(
        ta, d.Model("", "gpt", "Local", d.AccessType.ON_PREMISE, tenant_id=tenant.tenant_id), NO_ID
    )
    with pytest.raises(PermissionDenied) as caught:
        await uc.resolve.resolve(tenant.tenant_id, "gpt")
    assert caught.value.reason == "MODEL_NOT_ENABLED"
    with pytest.raises(NotFound):
        await uc.resolve.resolve(tenant.tenant_id, "nope")
    cfg = d.ModelConfig("", tenant.tenant_id, g.model_id, token_limit=10)
    await uc.configs.create(ta, cfg, NO_ID)
    own = await uc.configs.create(ta, d.ModelConfig("", tenant.tenant_id, mine.model_id), NO_ID)
    resolved = await uc.resolve.resolve(tenant.tenant_id, "gpt")
    assert resolved.model.model_id == mine.model_id and resolved.deployments == ()
    uc.resolve.cache.clear()
    draft = d.Deployment("", tenant.tenant_id, own.config_id, base_url="http://p.test/v1")
    await uc.deployments.create(ta, draft, "sk-own", NO_ID)
    stored = next(iter(store.deployments.values()))
    assert stored.credential.startswith("v1:t:") and "sk-own" not in stored.credential
    resolved = await uc.resolve.resolve(tenant.tenant_id, "gpt")
    assert [x.credential for x in resolved.deployments] == ["sk-own"]
    with pytest.raises(InvalidArgument):
        bad = d.Deployment("", tenant.tenant_id, own.config_id, base_url="file:///etc")
        await uc.deployments.create(ta, bad, "", NO_ID)
    with pytest.raises(InvalidArgument):
        missing = "00000000-0000-4000-8000-000000000000"
        await uc.configs.update(ta, d.ModelConfig(missing, tenant.tenant_id, ""), ["secret"])


async def test_deployments_in_order_fallbacks_and_limits(uc, store):
    tenant, ta = await _tenant_admin(uc)
    model = d.Model("", "m", "Local", d.AccessType.ON_PREMISE, tenant_id=tenant.tenant_id)
    m = await uc.models.create(ta, model, NO_ID)
    draft = d.ModelConfig("", tenant.tenant_id, m.model_id, fallback_models=("b", "a"))
    config = await uc.configs.create(ta, draft, NO_ID)
    assert config.fallback_models == ("b", "a")  # order kept: it is the order tried
    with pytest.raises(InvalidArgument):
        twice = d.ModelConfig(config.config_id, tenant.tenant_id, "", fallback_models=("a", "a"))
        await uc.configs.update(ta, twice, ["fallback_models"])
    made = []
    for priority, weight in ((5, 1), (0, 3), (0, 1)):
        row = d.Deployment("", tenant.tenant_id, config.config_id, priority=priority, weight=weight)
        made.append(await uc.deployments.create(ta, row, f"sk-{priority}-{weight}", NO_ID))
    resolved = await uc.resolve.resolve(tenant.tenant_id, "m")
    assert [x.credential for x in resolved.deployments] == ["sk-0-3", "sk-0-1", "sk-5-1"]
    for bad in (
        d.Deployment("", tenant.tenant_id, config.config_id, weight=0),
        d.Deployment("", tenant.tenant_id, config.config_id, priority=-1),
        d.Deployment("", tenant.tenant_id, config.config_id, attempt_timeout_ms=0),
    ):
        with pytest.raises(InvalidArgument):
            await uc.deployments.create(ta, bad, "", NO_ID)
    moved = d.Deployment(made[0].deployment_id, tenant.tenant_id, "", priority=0, weight=9)
    updated = await uc.deployments.update(ta, moved, "", ["priority", "weight"])
    assert (updated.priority, updated.weight) == (0, 9)
    resolved = await uc.resolve.resolve(tenant.tenant_id, "m")  # the change cleared the cache
    assert resolved.deployments[0].credential == "sk-5-1"
    page = await uc.deployments.list_page(ta, tenant.tenant_id, config.config_id, 2, "")
    assert len(page.items) == 2 and page.next_page_token
    await uc.deployments.delete(ta, tenant.tenant_id, made[1].deployment_id)
    with pytest.raises(NotFound):
        await uc.deployments.delete(ta, tenant.tenant_id, made[1].deployment_id)
    other, _ = await _tenant_admin(uc, "other")
    with pytest.raises(PermissionDenied):
        await uc.deployments.list_page(ta, other.tenant_id, config.config_id, 2, "")
