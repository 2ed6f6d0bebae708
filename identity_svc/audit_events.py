"""identity's audit events (gateway_common.audit): which fields of each resource an event
shows, and which are personal. A credential shows only as set/replaced; a key's secret, its
hash and its prefix never show."""

from __future__ import annotations

from typing import Any

from gateway_common import audit
from gateway_common.audit import Actor, AuditEvent, Change
from gateway_common.principal import Principal
from identity_svc import domain as d

SERVICE = "identity"
USER_PERSONAL = ("name", "email")  # cleared from the trail when the user is erased


def tenant_fields(t: d.Tenant) -> dict[str, Any]:
    return {"name": t.name, "contact": t.contact, "time_zone": t.time_zone}


def user_fields(u: d.User) -> dict[str, Any]:
    return {"name": u.name, "email": u.email}


def key_fields(k: d.ApiKey) -> dict[str, Any]:
    return {
        "role": k.role.value,
        "tenant_id": k.tenant_id,
        "user_id": k.user_id,
        "display_name": k.display_name,
        "expire_time": audit.plain(k.expire_time),
        "revoke_time": audit.plain(k.revoke_time),
    }


def model_fields(m: d.Model) -> dict[str, Any]:
    return {
        "name": m.name,
        "provider": m.provider,
        "access_type": m.access_type.value,
        "description": m.description,
        "tenant_id": m.tenant_id,
    }


def config_fields(c: d.ModelConfig) -> dict[str, Any]:
    """Never the credential: whether one is set."""
    return {
        "model_id": c.model_id,
        "credential": audit.CREDENTIAL_SET if c.credential else None,
        "token_limit": c.token_limit,
        "extra_parameters": dict(c.extra_parameters),
        "base_url": c.base_url,
        "allowed_extra_parameters": list(c.allowed_extra_parameters),
    }


def event(
    p: Principal,
    resource: str,
    resource_id: str,
    action: str,
    changes: tuple[Change, ...],
    *,
    tenant_id: str = "",
    user_id: str = "",
    request_id: str = "",
) -> AuditEvent:
    return AuditEvent(
        service=SERVICE,
        resource=resource,
        resource_id=resource_id,
        action=action,
        actor=Actor.of(p),
        tenant_id=tenant_id,
        user_id=user_id,
        changes=changes,
        request_id=request_id,
    )


def config_update(
    before: d.ModelConfig, after: d.ModelConfig, paths: set[str]
) -> tuple[str, tuple[Change, ...]]:
    """The action and changes of a configuration update: a new credential is
    ``credential_replaced`` (set -> replaced), never its value."""
    old, new = config_fields(before), config_fields(after)
    changes = [c for c in audit.diff(old, new) if c.field != "credential"]
    if "credential" in paths:
        changes.insert(0, Change("credential", old["credential"], audit.CREDENTIAL_REPLACED))
        action = "credential_replaced" if len(changes) == 1 else "updated"
    else:
        action = "updated"
    return action, tuple(changes)
