"""The storage seams the use cases depend on. SQL adapters live in repository.py; unit
tests subclass these with in-memory fakes. Keys for keyset pages are (sort value, id)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway_common.audit import AuditLog
from gateway_common.revocation import Revocation
from gateway_common.unit_of_work import UnitOfWork as SharedUnitOfWork
from identity_svc.domain import (
    ApiKey,
    Deployment,
    Model,
    ModelConfig,
    StoredKey,
    Tenant,
    User,
)

TimeKey = tuple[datetime, str]
NameKey = tuple[str, str]


RecordedRequest = tuple[str, str | None]  # resource id, fingerprint (None: recorded before 0003)


class DuplicateRequest(Exception):
    """Another transaction recorded the same request_id first: read its result."""


class TenantRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, tenant: Tenant) -> Tenant: ...
    @abc.abstractmethod
    async def get(self, tenant_id: str) -> Tenant | None: ...
    @abc.abstractmethod
    async def list(self, after: TimeKey | None, limit: int) -> list[Tenant]: ...
    @abc.abstractmethod
    async def update(self, tenant_id: str, changes: dict[str, Any]) -> Tenant | None: ...
    @abc.abstractmethod
    async def delete(self, tenant_id: str) -> bool: ...
    @abc.abstractmethod
    async def has_users(self, tenant_id: str) -> bool: ...


class UserRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, user: User) -> User: ...
    @abc.abstractmethod
    async def get(self, tenant_id: str, user_id: str) -> User | None: ...
    @abc.abstractmethod
    async def list(self, tenant_id: str, after: TimeKey | None, limit: int) -> list[User]: ...
    @abc.abstractmethod
    async def update(
        self, tenant_id: str, user_id: str, changes: dict[str, Any]
    ) -> User | None: ...
    @abc.abstractmethod
    async def delete(self, tenant_id: str, user_id: str) -> bool: ...


class ApiKeyRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, key: ApiKey, secret_hash: bytes) -> ApiKey: ...
    @abc.abstractmethod
    async def get(self, key_id: str) -> ApiKey | None: ...
    @abc.abstractmethod
    async def by_prefix(self, prefix: str) -> StoredKey | None: ...
    @abc.abstractmethod
    async def list(
        self,
        tenant_id: str,
        user_id: str,
        include_revoked: bool,
        after: TimeKey | None,
        limit: int,
    ) -> list[ApiKey]: ...
    @abc.abstractmethod
    async def revoke(self, key_id: str) -> ApiKey | None: ...


class ModelRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, model: Model) -> Model: ...
    @abc.abstractmethod
    async def get(self, model_id: str) -> Model | None: ...
    @abc.abstractmethod
    async def by_name(self, tenant_id: str, name: str) -> Model | None:
        """The model of that name in the scope (``tenant_id`` empty = global)."""

    @abc.abstractmethod
    async def list(
        self, tenant_id: str, enabled_only: bool, after: NameKey | None, limit: int
    ) -> list[Model]:
        """Global models plus ``tenant_id``'s (global only when empty), by name.
        ``enabled_only``: tenant models and global ones the tenant has a config for."""

    @abc.abstractmethod
    async def update(self, model_id: str, changes: dict[str, Any]) -> Model | None: ...
    @abc.abstractmethod
    async def delete(self, model_id: str) -> bool: ...


class ModelConfigRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, config: ModelConfig) -> ModelConfig: ...
    @abc.abstractmethod
    async def get(self, tenant_id: str, config_id: str) -> ModelConfig | None: ...
    @abc.abstractmethod
    async def for_model(self, tenant_id: str, model_id: str) -> ModelConfig | None: ...
    @abc.abstractmethod
    async def list(
        self, tenant_id: str, after: TimeKey | None, limit: int
    ) -> list[ModelConfig]: ...
    @abc.abstractmethod
    async def update(
        self, tenant_id: str, config_id: str, changes: dict[str, Any]
    ) -> ModelConfig | None: ...
    @abc.abstractmethod
    async def delete(self, tenant_id: str, config_id: str) -> bool: ...


class DeploymentRepository(abc.ABC):
    """A configuration's deployments (implantacao_llm), always scoped by tenant."""

    @abc.abstractmethod
    async def add(self, deployment: Deployment) -> Deployment: ...
    @abc.abstractmethod
    async def get(self, tenant_id: str, deployment_id: str) -> Deployment | None: ...
    @abc.abstractmethod
    async def in_order(self, tenant_id: str, config_id: str, limit: int) -> list[Deployment]:
        """By (priority, create_time, id): the order ResolveModel answers."""

    @abc.abstractmethod
    async def count(self, tenant_id: str, config_id: str) -> int: ...
    @abc.abstractmethod
    async def list(
        self, tenant_id: str, config_id: str, after: TimeKey | None, limit: int
    ) -> list[Deployment]:
        """By (create_time, id)."""

    @abc.abstractmethod
    async def update(
        self, tenant_id: str, deployment_id: str, changes: dict[str, Any]
    ) -> Deployment | None: ...
    @abc.abstractmethod
    async def delete(self, tenant_id: str, deployment_id: str) -> bool: ...


class RequestLog(abc.ABC):
    """(scope, kind, request_id) -> (resource id, request fingerprint), for idempotent
    creation (gateway_common.idempotency)."""

    @abc.abstractmethod
    async def find(self, scope: str, kind: str, request_id: str) -> RecordedRequest | None: ...
    @abc.abstractmethod
    async def add(
        self, scope: str, kind: str, request_id: str, resource_id: str, fingerprint: str
    ) -> None:
        """Raises DuplicateRequest when the request_id is already recorded."""


class RevocationLog(abc.ABC):
    """The revocation feed: one event per key revoked, user or tenant deleted, written in
    the change's transaction (gateway_common.revocation)."""

    @abc.abstractmethod
    async def record(self, kind: str, target_id: str) -> Revocation: ...
    @abc.abstractmethod
    async def after(self, sequence: int, limit: int) -> list[Revocation]:
        """Events with a greater sequence, oldest first."""

    @abc.abstractmethod
    async def prune(self, before: datetime) -> int:
        """Forget events recorded before ``before``; how many went."""


class UnitOfWork(SharedUnitOfWork):
    """One transaction: ``async with uow: ...; await uow.commit()``; rollback otherwise."""

    tenants: TenantRepository
    users: UserRepository
    keys: ApiKeyRepository
    models: ModelRepository
    configs: ModelConfigRepository
    deployments: DeploymentRepository
    requests: RequestLog
    revocations: RevocationLog
    audit: AuditLog  # the audit outbox: one event per admin mutation, in its transaction


UowFactory = Callable[[], UnitOfWork]
