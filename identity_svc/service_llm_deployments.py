"""A configuration's provider deployments (implantacao_llm): where its calls may go.

Credentials are encrypted here, before any repository sees them, bound to the
configuration's (tenant, model) like configuracao_llm's were; they are decrypted only for
ResolveModel and never appear in a log line or an error message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway_common import audit
from gateway_common.egress import EgressPolicy
from gateway_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens
from gateway_common.principal import Principal
from identity_svc import audit_events as ae
from identity_svc import domain as d
from identity_svc.crypto import KeyRing, credential_context
from identity_svc.ports import UnitOfWork, UowFactory
from identity_svc.service import UseCases, _found, page_limit
from identity_svc.service_llm_models import DEPLOYMENTS_MAX

log = logging.getLogger("identity.deployments")

# Mask paths (the proto's names) -> the domain's fields.
DEPLOYMENT_PATHS = {
    "base_url": "base_url",
    "credential": "credential",
    "upstream_model": "upstream_model",
    "priority": "priority",
    "weight": "weight",
    "attempt_timeout": "attempt_timeout_ms",
}
PRIORITY_MAX = 1000
WEIGHT_MAX = 1000
ATTEMPT_TIMEOUT_MAX_MS = 600_000


def _bounded(value: int, name: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArgument.field(name, f"must be {low}..{high}")
    return value


def _base_url(value: str, egress: EgressPolicy) -> str:
    url = d.url_field(value, "deployment.base_url")
    # What the platform's egress policy refuses without DNS (llm checks again after DNS).
    why = egress.refusal_for_url(url) if url else None
    if why is not None:
        raise InvalidArgument(
            f"deployment.base_url: names {why}, which the platform does not allow",
            "EGRESS_NOT_ALLOWED",
            violations=[FieldViolation("deployment.base_url", f"names {why}")],
        )
    return url


def _field(path: str, draft: d.Deployment, credential: str, egress: EgressPolicy) -> Any:
    if path == "base_url":
        return _base_url(draft.base_url, egress)
    if path == "credential":
        return d.credential_field(credential)
    if path == "upstream_model":
        return d.optional_text(draft.upstream_model, "deployment.upstream_model", d.NAME_MAX)
    if path == "priority":
        return _bounded(draft.priority, "deployment.priority", 0, PRIORITY_MAX)
    if path == "weight":
        return _bounded(draft.weight, "deployment.weight", 1, WEIGHT_MAX)
    timeout = draft.attempt_timeout_ms
    if timeout is None:
        return None
    return _bounded(timeout, "deployment.attempt_timeout", 1, ATTEMPT_TIMEOUT_MAX_MS)


class DeploymentUseCases(UseCases):
    def __init__(
        self,
        uow: UowFactory,
        keyring: KeyRing,
        on_change: Callable[[], None] = lambda: None,
        pages: PageTokens | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        super().__init__(uow, pages)
        self.keyring = keyring
        self.egress = egress or EgressPolicy()  # the platform's GATEWAY_EGRESS_ALLOW
        self._on_change = on_change  # forget cached resolutions

    async def create(
        self, p: Principal, draft: d.Deployment, credential: str, request: RequestKey
    ) -> d.Deployment:
        tenant_id = d.uuid_field(draft.tenant_id, "deployment.tenant_id")
        config_id = d.uuid_field(draft.config_id, "deployment.config_id")
        fields = {
            field: _field(path, draft, credential, self.egress)
            for path, field in DEPLOYMENT_PATHS.items()
        }
        p.require_tenant_admin(tenant_id)

        async def create(uow: UnitOfWork, new_id: str) -> d.Deployment:
            config = _found(await uow.configs.get(tenant_id, config_id), "model config")
            if await uow.deployments.count(tenant_id, config_id) >= DEPLOYMENTS_MAX:
                raise FailedPrecondition(
                    f"a configuration has at most {DEPLOYMENTS_MAX} deployments",
                    "TOO_MANY_DEPLOYMENTS",
                )
            context = credential_context(tenant_id, config.model_id)
            sealed = self.keyring.encrypt(fields["credential"], context)
            row = d.Deployment(new_id, tenant_id, config_id, **(fields | {"credential": sealed}))
            added = await uow.deployments.add(row)
            changes = audit.created(ae.deployment_fields(added))
            await uow.audit.record(
                ae.event(p, "model_deployment", new_id, "created", changes, tenant_id=tenant_id,
                         request_id=request.request_id)
            )  # fmt: skip
            return added

        async def load(uow: UnitOfWork, deployment_id: str) -> d.Deployment | None:
            return await uow.deployments.get(tenant_id, deployment_id)

        result = (await self.once(p, "model_deployment", request, create, load))[0]
        # Ids only: the credential is never part of a log line.
        log.info("deployment added", extra={"tenant_id": tenant_id, "config_id": config_id})
        self._on_change()
        return result

    async def list_page(
        self, p: Principal, tenant_id: str, config_id: str, page_size: int, token: str
    ) -> d.Page:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        config_id = d.uuid_field(config_id, "config_id")
        p.require_tenant_admin(tenant_id)
        limit, scope = page_limit(page_size), {"list": "deployments", "c": config_id}
        after = self.after(token, scope)
        async with self.uow() as uow:
            _found(await uow.configs.get(tenant_id, config_id), "model config")
            items = await uow.deployments.list(tenant_id, config_id, after, limit + 1)
        return self.page(items, limit, "deployment_id", scope)

    async def update(
        self, p: Principal, draft: d.Deployment, credential: str, paths: list[str]
    ) -> d.Deployment:
        tenant_id = d.uuid_field(draft.tenant_id, "deployment.tenant_id")
        deployment_id = d.uuid_field(draft.deployment_id, "deployment.deployment_id")
        mask = d.mask_paths(paths, frozenset(DEPLOYMENT_PATHS))
        changes = {
            DEPLOYMENT_PATHS[path]: _field(path, draft, credential, self.egress) for path in mask
        }
        p.require_tenant_admin(tenant_id)
        async with self.uow() as uow:
            current = _found(await uow.deployments.get(tenant_id, deployment_id), "deployment")
            if "credential" in changes:
                config = _found(await uow.configs.get(tenant_id, current.config_id), "model config")
                context = credential_context(tenant_id, config.model_id)
                changes["credential"] = self.keyring.encrypt(changes["credential"], context)
            row = await uow.deployments.update(tenant_id, deployment_id, changes)
            updated = _found(row, "deployment")
            action, diff = ae.deployment_update(current, updated, set(changes))
            await uow.audit.record(
                ae.event(p, "model_deployment", deployment_id, action, diff, tenant_id=tenant_id)
            )
            await uow.commit()
        self._on_change()
        return updated

    async def delete(self, p: Principal, tenant_id: str, deployment_id: str) -> None:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        deployment_id = d.uuid_field(deployment_id, "deployment_id")
        p.require_tenant_admin(tenant_id)
        async with self.uow() as uow:
            current = await uow.deployments.get(tenant_id, deployment_id)
            if current is None or not await uow.deployments.delete(tenant_id, deployment_id):
                raise NotFound("deployment not found", "DEPLOYMENT_NOT_FOUND")
            gone = audit.deleted(ae.deployment_fields(current))
            await uow.audit.record(
                ae.event(p, "model_deployment", deployment_id, "deleted", gone, tenant_id=tenant_id)
            )
            await uow.commit()
        self._on_change()
