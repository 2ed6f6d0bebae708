"""identity's audit events (gateway_common.audit): which fields of each resource an event
shows, and which are personal. A credential shows only as set/replaced; a key's secret, its
hash and its prefix never show."""

from __future__ import annotations

from typing import Any

from gateway_common import audit
from gateway_common.audit import Change
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
    return {
        "model_id": c.model_id,
        "token_limit": c.token_limit,
        "extra_parameters": dict(c.extra_parameters),
        "allowed_extra_parameters": list(c.allowed_extra_parameters),
        "fallback_models": list(c.fallback_models),
        "fallback_on_context_length": c.fallback_on_context_length,
    }


def deployment_fields(x: d.Deployment) -> dict[str, Any]:
    """Never the credential: whether one is set."""
    return {
        "config_id": x.config_id,
        "base_url": x.base_url,
        "credential": audit.CREDENTIAL_SET if x.credential else None,
        "upstream_model": x.upstream_model,
        "priority": x.priority,
        "weight": x.weight,
        "attempt_timeout_ms": x.attempt_timeout_ms,
    }


event = audit.Events(SERVICE)


def deployment_update(
    before: d.Deployment, after: d.Deployment, fields: set[str]
) -> tuple[str, tuple[Change, ...]]:
    """The action and changes of a deployment update: a new credential is
    ``credential_replaced`` (set -> replaced), never its value."""
    old, new = deployment_fields(before), deployment_fields(after)
    changes = [c for c in audit.diff(old, new) if c.field != "credential"]
    if "credential" in fields:
        changes.insert(0, Change("credential", old["credential"], audit.CREDENTIAL_REPLACED))
        action = "credential_replaced" if len(changes) == 1 else "updated"
    else:
        action = "updated"
    return action, tuple(changes)
