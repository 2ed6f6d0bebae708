"""Protobuf <-> domain. Unknown enum values are refused here (INVALID_ARGUMENT)."""

from __future__ import annotations

from gateway_common.errors import FieldViolation, InvalidArgument
from gateway_common.identity_client import REVOCATION_KINDS
from gateway_common.principal import Principal, Role
from gateway_common.protoconv import dict_to_struct, from_timestamp, struct_to_dict
from gateway_common.protoconv import optional_timestamp as ts
from gateway_common.revocation import Revocation
from identity_svc import domain as d
from llmgw.identity.v1 import identity_pb2 as pb

ROLES = {
    pb.ROLE_PLATFORM_ADMIN: Role.PLATFORM_ADMIN,
    pb.ROLE_TENANT_ADMIN: Role.TENANT_ADMIN,
    pb.ROLE_USER: Role.USER,
}
ROLE_TO_PB = {v: k for k, v in ROLES.items()}
ACCESS_TYPES = {
    pb.ACCESS_TYPE_CLOUD: d.AccessType.CLOUD,
    pb.ACCESS_TYPE_ON_PREMISE: d.AccessType.ON_PREMISE,
}
ACCESS_TO_PB = {v: k for k, v in ACCESS_TYPES.items()}


def role(value: int) -> Role:
    found: Role | None = ROLES.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidArgument.field("role", "must be a known role other than ROLE_UNSPECIFIED")
    return found


def access_type(value: int, name: str = "model.access_type") -> d.AccessType | None:
    if value == pb.ACCESS_TYPE_UNSPECIFIED:
        return None
    found: d.AccessType | None = ACCESS_TYPES.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidArgument.field(name, "unknown access type")
    return found


def principal_pb(p: Principal) -> pb.Principal:
    return pb.Principal(
        tenant_id=p.tenant_id,
        user_id=p.user_id,
        role=ROLE_TO_PB[p.role],
        key_id=p.key_id,
        tenant_time_zone=p.time_zone,
    )


def tenant_pb(t: d.Tenant) -> pb.Tenant:
    return pb.Tenant(
        tenant_id=t.tenant_id,
        name=t.name,
        contact=t.contact,
        time_zone=t.time_zone,
        create_time=ts(t.create_time),
        update_time=ts(t.update_time),
    )


def user_pb(u: d.User) -> pb.User:
    return pb.User(
        user_id=u.user_id,
        tenant_id=u.tenant_id,
        name=u.name,
        email=u.email,
        create_time=ts(u.create_time),
        update_time=ts(u.update_time),
    )


def key_pb(k: d.ApiKey) -> pb.ApiKey:
    return pb.ApiKey(
        key_id=k.key_id,
        tenant_id=k.tenant_id,
        user_id=k.user_id,
        role=ROLE_TO_PB[k.role],
        display_name=k.display_name,
        prefix=k.prefix,
        create_time=ts(k.create_time),
        expire_time=ts(k.expire_time),
        revoke_time=ts(k.revoke_time),
    )


def key_draft(r: pb.CreateApiKeyRequest) -> d.ApiKey:
    return d.ApiKey(
        key_id="",
        role=role(r.role),
        prefix="",
        tenant_id=r.tenant_id,
        user_id=r.user_id,
        display_name=r.display_name,
        expire_time=from_timestamp(r, "expire_time"),
    )


def model_pb(m: d.Model, currency: str = "") -> pb.Model:
    return pb.Model(
        model_id=m.model_id,
        tenant_id=m.tenant_id,
        name=m.name,
        description=m.description,
        provider=m.provider,
        access_type=ACCESS_TO_PB[m.access_type],
        create_time=ts(m.create_time),
        update_time=ts(m.update_time),
        input_price_nanos_per_million=m.input_price_nanos_per_million,
        output_price_nanos_per_million=m.output_price_nanos_per_million,
        currency=currency,
    )


def model_draft(m: pb.Model) -> d.Model:
    return d.Model(
        model_id=m.model_id,
        tenant_id=m.tenant_id,
        name=m.name,
        description=m.description,
        provider=m.provider,
        access_type=access_type(m.access_type),  # type: ignore[arg-type]
        input_price_nanos_per_million=m.input_price_nanos_per_million
        if m.HasField("input_price_nanos_per_million")
        else None,
        output_price_nanos_per_million=m.output_price_nanos_per_million
        if m.HasField("output_price_nanos_per_million")
        else None,
    )


def config_pb(c: d.ModelConfig) -> pb.ModelConfig:
    return pb.ModelConfig(
        config_id=c.config_id,
        tenant_id=c.tenant_id,
        model_id=c.model_id,
        token_limit=c.token_limit,
        extra_parameters=dict_to_struct(c.extra_parameters),
        allowed_extra_parameters=c.allowed_extra_parameters,
        fallback_models=c.fallback_models,
        fallback_on_context_length=c.fallback_on_context_length,
        create_time=ts(c.create_time),
        update_time=ts(c.update_time),
    )


def moved_to_deployments(credential: str, base_url: str) -> None:
    """The deprecated configuration fields are refused, not ignored: a client that still
    sets them learns where they went."""
    if credential or base_url:
        name = "credential" if credential else "config.base_url"
        raise InvalidArgument(
            f"{name}: provider URLs and credentials are set per deployment (CreateModelDeployment)",
            "MOVED_TO_DEPLOYMENTS",
            violations=[FieldViolation(name, "set it on a deployment")],
        )


def config_draft(c: pb.ModelConfig) -> d.ModelConfig:
    return d.ModelConfig(
        config_id=c.config_id,
        tenant_id=c.tenant_id,
        model_id=c.model_id,
        token_limit=c.token_limit if c.HasField("token_limit") else None,
        extra_parameters=struct_to_dict(c.extra_parameters, "config.extra_parameters"),
        allowed_extra_parameters=tuple(c.allowed_extra_parameters),
        fallback_models=tuple(c.fallback_models),
        fallback_on_context_length=c.fallback_on_context_length,
    )


def deployment_pb(x: d.Deployment) -> pb.ModelDeployment:
    """Never carries the credential: only whether one is stored."""
    return pb.ModelDeployment(
        deployment_id=x.deployment_id,
        tenant_id=x.tenant_id,
        config_id=x.config_id,
        base_url=x.base_url,
        has_credential=x.has_credential,
        upstream_model=x.upstream_model,
        priority=x.priority,
        weight=x.weight,
        attempt_timeout_ms=x.attempt_timeout_ms,
        create_time=ts(x.create_time),
        update_time=ts(x.update_time),
    )


def deployment_draft(x: pb.ModelDeployment, creating: bool) -> d.Deployment:
    """An unset weight is 1 on creation (and refused on update, where it is named)."""
    weight = x.weight if x.HasField("weight") else (1 if creating else 0)
    return d.Deployment(
        deployment_id=x.deployment_id,
        tenant_id=x.tenant_id,
        config_id=x.config_id,
        base_url=x.base_url,
        upstream_model=x.upstream_model,
        priority=x.priority,
        weight=weight,
        attempt_timeout_ms=x.attempt_timeout_ms if x.HasField("attempt_timeout_ms") else None,
    )


def resolved_pb(r: d.ResolvedModel) -> pb.ResolveModelResponse:
    first = r.deployments[0] if r.deployments else None
    return pb.ResolveModelResponse(
        # For llm replicas older than deployments, while a rolling upgrade runs.
        base_url=first.deployment.base_url if first else "",
        credential=first.credential if first else "",
        model=model_pb(r.model),
        config_id=r.config.config_id,
        token_limit=r.config.token_limit,
        extra_parameters=dict_to_struct(r.config.extra_parameters),
        allowed_extra_parameters=r.config.allowed_extra_parameters,
        deployments=[_resolved_deployment(x, r.model.name) for x in r.deployments],
        fallback_models=r.config.fallback_models,
        fallback_on_context_length=r.config.fallback_on_context_length,
    )


def _resolved_deployment(x: d.ResolvedDeployment, model_name: str) -> pb.ResolvedDeployment:
    row = x.deployment
    return pb.ResolvedDeployment(
        deployment_id=row.deployment_id,
        base_url=row.base_url,
        credential=x.credential,
        upstream_model=row.upstream_model or model_name,
        priority=row.priority,
        weight=row.weight,
        attempt_timeout_ms=row.attempt_timeout_ms or 0,
    )


def revocation_pb(event: Revocation) -> pb.Revocation:
    kind = next(k for k, name in REVOCATION_KINDS.items() if name == event.kind)
    return pb.Revocation(sequence=event.sequence, kind=kind, target_id=event.target_id)
