"""A tenant's configuration of a model (configuracao_llm): the per-model settings. Its
provider deployments (URL, credential) are service_llm_deployments.py's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gateway_common import audit
from gateway_common.errors import InvalidArgument, NotFound, PermissionDenied
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens
from gateway_common.principal import Principal
from identity_svc import audit_events as ae
from identity_svc import domain as d
from identity_svc.ports import UnitOfWork, UowFactory
from identity_svc.service import UseCases, _found, page_limit
from identity_svc.service_llm_models import CONFIG_PATHS, _extra, allowed_extras

FALLBACKS_MAX = 8


def _fallbacks(value: tuple[str, ...], name: str) -> tuple[str, ...]:
    """Model names, in order, unique; resolved at call time (a missing one is skipped)."""
    if len(value) > FALLBACKS_MAX:
        raise InvalidArgument.field(name, f"at most {FALLBACKS_MAX} models")
    names = tuple(d.name_field(v, name) for v in value)
    if len(set(names)) != len(names):
        raise InvalidArgument.field(name, "names a model twice")
    return names


def _config_field(path: str, draft: d.ModelConfig) -> Any:
    if path == "token_limit":
        return d.token_limit_field(draft.token_limit, "config.token_limit")
    if path == "extra_parameters":
        return _extra(draft.extra_parameters, "config.extra_parameters")
    if path == "allowed_extra_parameters":
        return allowed_extras(draft.allowed_extra_parameters, "config.allowed_extra_parameters")
    if path == "fallback_models":
        return _fallbacks(draft.fallback_models, "config.fallback_models")
    return draft.fallback_on_context_length


log = logging.getLogger("identity.configs")


class ModelConfigUseCases(UseCases):
    def __init__(
        self,
        uow: UowFactory,
        on_change: Callable[[], None] = lambda: None,
        pages: PageTokens | None = None,
    ) -> None:
        super().__init__(uow, pages)
        self._on_change = on_change

    async def create(
        self, p: Principal, draft: d.ModelConfig, request: RequestKey
    ) -> d.ModelConfig:
        tenant_id = d.uuid_field(draft.tenant_id, "config.tenant_id")
        model_id = d.uuid_field(draft.model_id, "config.model_id")
        fields = {path: _config_field(path, draft) for path in CONFIG_PATHS}
        p.require_tenant_admin(tenant_id)
        config = d.ModelConfig(config_id="", tenant_id=tenant_id, model_id=model_id, **fields)

        async def create(uow: UnitOfWork, new_id: str) -> d.ModelConfig:
            model = await uow.models.get(model_id)
            if model is None:
                raise NotFound("model not found", "MODEL_NOT_FOUND")
            if model.tenant_id and model.tenant_id != tenant_id:
                raise PermissionDenied("the model belongs to another tenant", "MODEL_ACCESS_DENIED")
            added = await uow.configs.add(replace(config, config_id=new_id))
            changes = audit.created(ae.config_fields(added))
            await uow.audit.record(
                ae.event(p, "model_config", new_id, "created", changes, tenant_id=tenant_id,
                         request_id=request.request_id)
            )  # fmt: skip
            return added

        async def load(uow: UnitOfWork, config_id: str) -> d.ModelConfig | None:
            return await uow.configs.get(tenant_id, config_id)

        result = (await self.once(p, "model_config", request, create, load))[0]
        log.info("model config set", extra={"tenant_id": tenant_id, "model_id": model_id})
        self._on_change()
        return result

    async def get(self, p: Principal, tenant_id: str, config_id: str) -> d.ModelConfig:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        config_id = d.uuid_field(config_id, "config_id")
        p.require_tenant_admin(tenant_id)
        async with self.uow() as uow:
            return _found(await uow.configs.get(tenant_id, config_id), "model config")

    async def list_page(self, p: Principal, tenant_id: str, page_size: int, token: str) -> d.Page:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        p.require_tenant_admin(tenant_id)
        limit, scope = page_limit(page_size), {"list": "configs", "t": tenant_id}
        after = self.after(token, scope)
        async with self.uow() as uow:
            items = await uow.configs.list(tenant_id, after, limit + 1)
        return self.page(items, limit, "config_id", scope)

    async def update(self, p: Principal, draft: d.ModelConfig, paths: list[str]) -> d.ModelConfig:
        tenant_id = d.uuid_field(draft.tenant_id, "config.tenant_id")
        config_id = d.uuid_field(draft.config_id, "config.config_id")
        mask = d.mask_paths(paths, CONFIG_PATHS)
        changes = {path: _config_field(path, draft) for path in mask}
        p.require_tenant_admin(tenant_id)
        async with self.uow() as uow:
            current = _found(await uow.configs.get(tenant_id, config_id), "model config")
            config = _found(await uow.configs.update(tenant_id, config_id, changes), "model config")
            diff = audit.diff(ae.config_fields(current), ae.config_fields(config))
            await uow.audit.record(
                ae.event(p, "model_config", config_id, "updated", diff, tenant_id=tenant_id)
            )
            await uow.commit()
        self._on_change()
        return config

    async def delete(self, p: Principal, tenant_id: str, config_id: str) -> None:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        config_id = d.uuid_field(config_id, "config_id")
        p.require_tenant_admin(tenant_id)
        async with self.uow() as uow:
            current = await uow.configs.get(tenant_id, config_id)
            if current is None or not await uow.configs.delete(tenant_id, config_id):
                raise NotFound("model config not found", "MODEL_CONFIG_NOT_FOUND")
            gone = audit.deleted(ae.config_fields(current))
            await uow.audit.record(
                ae.event(p, "model_config", config_id, "deleted", gone, tenant_id=tenant_id)
            )
            await uow.commit()
        self._on_change()
