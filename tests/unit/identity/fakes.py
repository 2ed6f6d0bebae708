"""In-memory fakes of identity's repositories (subclasses of the real abstractions)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_common.audit import AuditEvent, AuditLog
from gateway_common.errors import AlreadyExists, NotFound
from gateway_common.revocation import Revocation
from identity_svc import ports
from identity_svc.domain import ApiKey, Deployment, Model, ModelConfig, StoredKey, Tenant, User

_tick = itertools.count()


def _now() -> datetime:
    # Strictly increasing, so keyset order is stable.
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(microseconds=next(_tick))


def _stamped(item: Any) -> Any:
    now = _now()
    if hasattr(item, "update_time"):
        return replace(item, create_time=now, update_time=now)
    return replace(item, create_time=now)


def _after(items: list[Any], after: Any, key: Any, limit: int) -> list[Any]:
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [i for i in ordered if key(i) > tuple(after)]
    return ordered[:limit]


class Store:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.users: dict[str, User] = {}
        self.keys: dict[str, tuple[ApiKey, bytes]] = {}
        self.models: dict[str, Model] = {}
        self.configs: dict[str, ModelConfig] = {}
        self.deployments: dict[str, Deployment] = {}
        self.requests: dict[tuple[str, str, str], tuple[str, str | None]] = {}
        self.revocations: dict[int, tuple[Revocation, datetime]] = {}
        self.prefix_lookups = 0
        self.audit: dict[str, AuditEvent] = {}  # event id -> event, kept on commit


class FakeTenants(ports.TenantRepository):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def add(self, tenant: Tenant) -> Tenant:
        if any(t.name.lower() == tenant.name.lower() for t in self.s.tenants.values()):
            raise AlreadyExists("tenant exists", "TENANT_EXISTS")
        self.s.tenants[tenant.tenant_id] = _stamped(tenant)
        return self.s.tenants[tenant.tenant_id]

    async def get(self, tenant_id: str) -> Tenant | None:
        return self.s.tenants.get(tenant_id)

    async def list(self, after: ports.TimeKey | None, limit: int) -> list[Tenant]:
        key = lambda t: (t.create_time, t.tenant_id)  # noqa: E731
        return _after(list(self.s.tenants.values()), after, key, limit)

    async def update(self, tenant_id: str, changes: dict[str, Any]) -> Tenant | None:
        if tenant_id not in self.s.tenants:
            return None
        self.s.tenants[tenant_id] = replace(self.s.tenants[tenant_id], **changes)
        return self.s.tenants[tenant_id]

    async def delete(self, tenant_id: str) -> bool:
        for user in [u for u in self.s.users.values() if u.tenant_id == tenant_id]:
            del self.s.users[user.user_id]
        return self.s.tenants.pop(tenant_id, None) is not None

    async def has_users(self, tenant_id: str) -> bool:
        return any(u.tenant_id == tenant_id for u in self.s.users.values())


class FakeUsers(ports.UserRepository):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def add(self, user: User) -> User:
        if user.tenant_id not in self.s.tenants:
            raise NotFound("tenant not found", "TENANT_NOT_FOUND")
        same = [u for u in self.s.users.values() if u.tenant_id == user.tenant_id]
        if user.email and any(u.email.lower() == user.email.lower() for u in same):
            raise AlreadyExists("e-mail exists", "EMAIL_EXISTS")
        self.s.users[user.user_id] = _stamped(user)
        return self.s.users[user.user_id]

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        user = self.s.users.get(user_id)
        return user if user and user.tenant_id == tenant_id else None

    async def list(self, tenant_id: str, after: ports.TimeKey | None, limit: int) -> list[User]:
        mine = [u for u in self.s.users.values() if u.tenant_id == tenant_id]
        return _after(mine, after, lambda u: (u.create_time, u.user_id), limit)

    async def update(self, tenant_id: str, user_id: str, changes: dict[str, Any]) -> User | None:
        if await self.get(tenant_id, user_id) is None:
            return None
        self.s.users[user_id] = replace(self.s.users[user_id], **changes)
        return self.s.users[user_id]

    async def delete(self, tenant_id: str, user_id: str) -> bool:
        if await self.get(tenant_id, user_id) is None:
            return False
        del self.s.users[user_id]
        return True


class FakeKeys(ports.ApiKeyRepository):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def add(self, key: ApiKey, secret_hash: bytes) -> ApiKey:
        self.s.keys[key.key_id] = (_stamped(key), secret_hash)
        return self.s.keys[key.key_id][0]

    async def get(self, key_id: str) -> ApiKey | None:
        found = self.s.keys.get(key_id)
        return found[0] if found else None

    async def by_prefix(self, prefix: str) -> StoredKey | None:
        self.s.prefix_lookups += 1
        for key, digest in self.s.keys.values():
            if key.prefix == prefix:
                tenant = self.s.tenants.get(key.tenant_id)
                return StoredKey(key, digest, tenant.time_zone if tenant else "UTC")
        return None

    async def list(self, tenant_id, user_id, include_revoked, after, limit) -> list[ApiKey]:  # type: ignore[no-untyped-def]
        keys = [
            k
            for k, _ in self.s.keys.values()
            if k.tenant_id == tenant_id
            and (not user_id or k.user_id == user_id)
            and (include_revoked or k.revoke_time is None)
        ]
        return _after(keys, after, lambda k: (k.create_time, k.key_id), limit)

    async def revoke(self, key_id: str) -> ApiKey | None:
        if key_id not in self.s.keys:
            return None
        key, digest = self.s.keys[key_id]
        key = replace(key, revoke_time=key.revoke_time or _now())
        self.s.keys[key_id] = (key, digest)
        return key


class FakeModels(ports.ModelRepository):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def add(self, model: Model) -> Model:
        if model.tenant_id and model.tenant_id not in self.s.tenants:
            raise NotFound("tenant not found", "TENANT_NOT_FOUND")
        if await self.by_name(model.tenant_id, model.name):
            raise AlreadyExists("model exists", "MODEL_EXISTS")
        self.s.models[model.model_id] = _stamped(model)
        return self.s.models[model.model_id]

    async def get(self, model_id: str) -> Model | None:
        return self.s.models.get(model_id)

    async def by_name(self, tenant_id: str, name: str) -> Model | None:
        return next(
            (m for m in self.s.models.values() if m.tenant_id == tenant_id and m.name == name),
            None,
        )

    async def list(self, tenant_id, enabled_only, after, limit) -> list[Model]:  # type: ignore[no-untyped-def]
        configured = {c.model_id for c in self.s.configs.values() if c.tenant_id == tenant_id}
        models = [
            m
            for m in self.s.models.values()
            if (tenant_id and m.tenant_id == tenant_id)
            or (not m.tenant_id and (not enabled_only or m.model_id in configured))
        ]
        return _after(models, after, lambda m: (m.name, m.model_id), limit)

    async def update(self, model_id: str, changes: dict[str, Any]) -> Model | None:
        if model_id not in self.s.models:
            return None
        self.s.models[model_id] = replace(self.s.models[model_id], **changes)
        return self.s.models[model_id]

    async def delete(self, model_id: str) -> bool:
        return self.s.models.pop(model_id, None) is not None


class FakeConfigs(ports.ModelConfigRepository):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def add(self, config: ModelConfig) -> ModelConfig:
        self.s.configs[config.config_id] = _stamped(config)
        return self.s.configs[config.config_id]

    async def get(self, tenant_id: str, config_id: str) -> ModelConfig | None:
        config = self.s.configs.get(config_id)
        return config if config and config.tenant_id == tenant_id else None

    async def for_model(self, tenant_id: str, model_id: str) -> ModelConfig | None:
        return next(
            (
                c
                for c in self.s.configs.values()
                if c.tenant_id == tenant_id and c.model_id == model_id
            ),
            None,
        )

    async def list(self, tenant_id, after, limit) -> list[ModelConfig]:  # type: ignore[no-untyped-def]
        mine = [c for c in self.s.configs.values() if c.tenant_id == tenant_id]
        return _after(mine, after, lambda c: (c.create_time, c.config_id), limit)

    async def update(self, tenant_id, config_id, changes) -> ModelConfig | None:  # type: ignore[no-untyped-def]
        if await self.get(tenant_id, config_id) is None:
            return None
        self.s.configs[config_id] = replace(self.s.configs[config_id], **changes)
        return self.s.configs[config_id]

    async def delete(self, tenant_id: str, config_id: str) -> bool:
        if await self.get(tenant_id, config_id) is None:
            return False
        del self.s.configs[config_id]
        for gone in [k for k, v in self.s.deployments.items() if v.config_id == config_id]:
            del self.s.deployments[gone]  # ON DELETE CASCADE
        return True


class FakeDeployments(ports.DeploymentRepository):
    def __init__(self, s: Store) -> None:
        self.s = s

    def _of(self, tenant_id: str, config_id: str) -> list[Deployment]:
        return [
            x
            for x in self.s.deployments.values()
            if x.tenant_id == tenant_id and x.config_id == config_id
        ]

    async def add(self, deployment: Deployment) -> Deployment:
        self.s.deployments[deployment.deployment_id] = _stamped(deployment)
        return self.s.deployments[deployment.deployment_id]

    async def get(self, tenant_id: str, deployment_id: str) -> Deployment | None:
        found = self.s.deployments.get(deployment_id)
        return found if found and found.tenant_id == tenant_id else None

    async def in_order(self, tenant_id: str, config_id: str, limit: int) -> list[Deployment]:
        rows = self._of(tenant_id, config_id)
        return sorted(rows, key=lambda x: (x.priority, x.create_time, x.deployment_id))[:limit]

    async def count(self, tenant_id: str, config_id: str) -> int:
        return len(self._of(tenant_id, config_id))

    async def list(self, tenant_id, config_id, after, limit) -> list[Deployment]:  # type: ignore[no-untyped-def]
        rows = self._of(tenant_id, config_id)
        return _after(rows, after, lambda x: (x.create_time, x.deployment_id), limit)

    async def update(self, tenant_id, deployment_id, changes) -> Deployment | None:  # type: ignore[no-untyped-def]
        if await self.get(tenant_id, deployment_id) is None:
            return None
        self.s.deployments[deployment_id] = replace(self.s.deployments[deployment_id], **changes)
        return self.s.deployments[deployment_id]

    async def delete(self, tenant_id: str, deployment_id: str) -> bool:
        if await self.get(tenant_id, deployment_id) is None:
            return False
        del self.s.deployments[deployment_id]
        return True


class FakeRequests(ports.RequestLog):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def find(self, scope: str, kind: str, request_id: str) -> ports.RecordedRequest | None:
        return self.s.requests.get((scope, kind, request_id))

    async def add(
        self, scope: str, kind: str, request_id: str, resource_id: str, fingerprint: str
    ) -> None:
        if (scope, kind, request_id) in self.s.requests:
            raise ports.DuplicateRequest()
        self.s.requests[(scope, kind, request_id)] = (resource_id, fingerprint)


class FakeRevocations(ports.RevocationLog):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def record(self, kind: str, target_id: str) -> Revocation:
        event = Revocation(max(self.s.revocations, default=0) + 1, kind, target_id)
        self.s.revocations[event.sequence] = (event, datetime.now(UTC))
        return event

    async def after(self, sequence: int, limit: int) -> list[Revocation]:
        return [e for n, (e, _) in sorted(self.s.revocations.items()) if n > sequence][:limit]

    async def prune(self, before: datetime) -> int:
        old = [n for n, (_, at) in self.s.revocations.items() if at < before]
        for n in old:
            del self.s.revocations[n]
        return len(old)


class FakeAuditLog(AuditLog):
    def __init__(self, s: Store) -> None:
        self.s = s

    async def record(self, event: AuditEvent) -> None:
        self.s.audit[event.event_id] = event


_TABLES = (
    "tenants",
    "users",
    "keys",
    "models",
    "configs",
    "deployments",
    "requests",
    "revocations",
    "audit",
)


class FakeUnitOfWork(ports.UnitOfWork):
    """The suite's rule, in memory: what the block wrote is kept only on ``commit``; leaving
    the block otherwise restores the store as it was (values are immutable: shallow copies)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits = 0
        self._saved: dict[str, dict[Any, Any]] | None = None
        self.tenants = FakeTenants(store)
        self.users = FakeUsers(store)
        self.keys = FakeKeys(store)
        self.models = FakeModels(store)
        self.configs = FakeConfigs(store)
        self.deployments = FakeDeployments(store)
        self.requests = FakeRequests(store)
        self.revocations = FakeRevocations(store)
        self.audit = FakeAuditLog(store)

    def _snapshot(self) -> dict[str, dict[Any, Any]]:
        return {name: dict(getattr(self.store, name)) for name in _TABLES}

    async def __aenter__(self) -> FakeUnitOfWork:
        self._saved = self._snapshot()
        return self

    async def commit(self) -> None:
        self.commits += 1
        self._saved = self._snapshot()

    async def rollback(self) -> None:
        if self._saved is not None:
            for name, rows in self._saved.items():
                setattr(self.store, name, dict(rows))
