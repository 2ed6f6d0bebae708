"""LLM models (global or a tenant's), tenants' model configurations, and ResolveModel.

Provider credentials are encrypted here, before any repository sees them, and decrypted
only for ResolveModel. They never appear in a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gateway_common import audit
from gateway_common.cache import TtlCache
from gateway_common.errors import InvalidArgument, NotFound, PermissionDenied
from gateway_common.idempotency import RequestKey
from gateway_common.pagination import PageTokens
from gateway_common.principal import Principal, Role
from identity_svc import audit_events as ae
from identity_svc import domain as d
from identity_svc.crypto import KeyRing, credential_context
from identity_svc.ports import UnitOfWork, UowFactory
from identity_svc.service import UseCases, _found, page_limit

log = logging.getLogger("identity.models")

MODEL_PATHS = frozenset(
    {
        "name",
        "description",
        "provider",
        "access_type",
        "input_price_nanos_per_million",
        "output_price_nanos_per_million",
    }
)
MAX_PRICE_NANOS = 10**18  # a billion currency units per million tokens
CONFIG_PATHS = frozenset(
    {
        "token_limit",
        "extra_parameters",
        "allowed_extra_parameters",
        "fallback_models",
        "fallback_on_context_length",
    }
)
ALLOWED_EXTRAS_MAX = 64
DEPLOYMENTS_MAX = 16  # per configuration: ResolveModel returns them all
_PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _access_type(value: d.AccessType | None, name: str) -> d.AccessType:
    if value is None:
        raise InvalidArgument.field(name, "required: cloud or on-premise")
    return value


def _extra(value: dict[str, Any], name: str) -> dict[str, Any]:
    if len(json.dumps(value).encode()) > d.EXTRA_PARAMETERS_MAX_BYTES:
        raise InvalidArgument.field(name, f"at most {d.EXTRA_PARAMETERS_MAX_BYTES} bytes of JSON")
    return value


def allowed_extras(value: tuple[str, ...], name: str) -> tuple[str, ...]:
    if len(value) > ALLOWED_EXTRAS_MAX:
        raise InvalidArgument.field(name, f"at most {ALLOWED_EXTRAS_MAX} names")
    for item in value:
        if not _PARAMETER_NAME.match(item):
            raise InvalidArgument.field(name, "names are lowercase letters, digits and _")
    return tuple(sorted(set(value)))


def _model_field(path: str, model: d.Model, prefix: str = "model.") -> Any:
    if path == "name":
        return d.name_field(model.name, prefix + "name")
    if path == "provider":
        return d.name_field(model.provider, prefix + "provider", d.PROVIDER_MAX)
    if path == "description":
        return d.optional_text(model.description, prefix + "description", d.DESCRIPTION_MAX)
    if path.endswith("_price_nanos_per_million"):
        price = getattr(model, path)
        if price is not None and not 0 <= price <= MAX_PRICE_NANOS:
            raise InvalidArgument.field(prefix + path, f"0..{MAX_PRICE_NANOS}")
        return price
    return _access_type(model.access_type, prefix + "access_type")


def _authorize_manage(p: Principal, tenant_id: str) -> None:
    """Global models: platform admins; a tenant's: its admins (and platform admins)."""
    if tenant_id:
        p.require_tenant_admin(tenant_id)
    else:
        p.require_platform_admin()


class ModelUseCases(UseCases):
    def __init__(
        self,
        uow: UowFactory,
        on_change: Callable[[], None] = lambda: None,
        pages: PageTokens | None = None,
    ) -> None:
        super().__init__(uow, pages)
        self._on_change = on_change  # e.g. forget cached resolutions

    async def create(self, p: Principal, draft: d.Model, request: RequestKey) -> d.Model:
        tenant_id = d.uuid_field(draft.tenant_id, "model.tenant_id", required=False)
        fields = {path: _model_field(path, draft) for path in MODEL_PATHS}
        model = d.Model(model_id="", tenant_id=tenant_id, **fields)
        _authorize_manage(p, tenant_id)

        async def create(uow: UnitOfWork, new_id: str) -> d.Model:
            added = await uow.models.add(replace(model, model_id=new_id))
            changes = audit.created(ae.model_fields(added))
            await uow.audit.record(
                ae.event(p, "model", new_id, "created", changes, tenant_id=tenant_id,
                         request_id=request.request_id)
            )  # fmt: skip
            return added

        async def load(uow: UnitOfWork, model_id: str) -> d.Model | None:
            return await uow.models.get(model_id)

        return (await self.once(p, "model", request, create, load))[0]

    async def get(self, p: Principal, model_id: str) -> d.Model:
        model_id = d.uuid_field(model_id, "model_id")
        async with self.uow() as uow:
            model = _found(await uow.models.get(model_id), "model")
        if model.tenant_id:
            p.require_tenant_member(model.tenant_id, p.user_id)
        return model

    async def list_page(self, p: Principal, tenant_id: str, page_size: int, token: str) -> d.Page:
        tenant_id = d.uuid_field(tenant_id, "tenant_id", required=False)
        if tenant_id:
            p.require_tenant_member(tenant_id, p.user_id)
        else:
            p.require_platform_admin()
        enabled_only = p.role is Role.USER
        limit = page_limit(page_size)
        scope = {"list": "models", "t": tenant_id, "e": enabled_only}
        after = self.pages.decode_strings(token, scope, 2)
        key = (after[0], after[1]) if after is not None else None
        async with self.uow() as uow:
            items = await uow.models.list(tenant_id, enabled_only, key, limit + 1)
        if len(items) <= limit:
            return d.Page(items)
        last = items[limit - 1]
        return d.Page(items[:limit], self.pages.encode([last.name, last.model_id], scope))

    async def update(self, p: Principal, values: d.Model, paths: list[str]) -> d.Model:
        model_id = d.uuid_field(values.model_id, "model.model_id")
        mask = d.mask_paths(paths, MODEL_PATHS)
        changes = {path: _model_field(path, values) for path in mask}
        async with self.uow() as uow:
            current = _found(await uow.models.get(model_id), "model")
            _authorize_manage(p, current.tenant_id)
            model = _found(await uow.models.update(model_id, changes), "model")
            diff = audit.diff(ae.model_fields(current), ae.model_fields(model))
            await uow.audit.record(
                ae.event(p, "model", model_id, "updated", diff, tenant_id=current.tenant_id)
            )
            await uow.commit()
        self._on_change()
        return model

    async def delete(self, p: Principal, model_id: str) -> None:
        model_id = d.uuid_field(model_id, "model_id")
        async with self.uow() as uow:
            current = _found(await uow.models.get(model_id), "model")
            _authorize_manage(p, current.tenant_id)
            # Its configurations go with it; gone meanwhile (a concurrent delete): NOT_FOUND.
            _found(await uow.models.delete(model_id) or None, "model")
            gone = audit.deleted(ae.model_fields(current))
            await uow.audit.record(
                ae.event(p, "model", model_id, "deleted", gone, tenant_id=current.tenant_id)
            )
            await uow.commit()
        self._on_change()


class ResolveCache(TtlCache[tuple[str, str], d.ResolvedModel]):
    """(tenant, model name) -> resolution, for Chat's hot path."""


class ResolveUseCase(UseCases):
    def __init__(self, uow: UowFactory, keyring: KeyRing, cache: ResolveCache) -> None:
        super().__init__(uow)
        self.keyring = keyring
        self.cache = cache

    async def resolve(self, tenant_id: str, model_name: str) -> d.ResolvedModel:
        tenant_id = d.uuid_field(tenant_id, "tenant_id")
        name = d.name_field(model_name, "model_name")
        hit = self.cache.get((tenant_id, name))
        if hit is not None:
            return hit
        async with self.uow() as uow:
            model = await uow.models.by_name(tenant_id, name) or await uow.models.by_name("", name)
            if model is None:
                raise NotFound("no such model", "MODEL_NOT_FOUND")
            config = await uow.configs.for_model(tenant_id, model.model_id)
            if config is None:
                raise PermissionDenied(
                    "the model is not enabled for this tenant", "MODEL_NOT_ENABLED"
                )
            rows = await uow.deployments.in_order(tenant_id, config.config_id, DEPLOYMENTS_MAX)
        context = credential_context(tenant_id, model.model_id)
        deployments = tuple(
            d.ResolvedDeployment(row, self.keyring.decrypt(row.credential, context)) for row in rows
        )
        resolved = d.ResolvedModel(model, config, deployments)
        log.debug("model resolved", extra={"tenant_id": tenant_id, "model_id": model.model_id})
        self.cache.put((tenant_id, name), resolved)
        return resolved
