"""Identity resources: tenants, users, API keys, models and model configurations."""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from google.protobuf import field_mask_pb2, struct_pb2

from gatewayctl.client import CliError, Session
from gatewayctl.output import as_dict
from llmgw.identity.v1 import identity_pb2 as pb
from llmgw.identity.v1 import identity_pb2_grpc as rpc

Result = tuple[Any, list[str]]
ROLES = {
    "platform-admin": pb.ROLE_PLATFORM_ADMIN,
    "tenant-admin": pb.ROLE_TENANT_ADMIN,
    "user": pb.ROLE_USER,
}
ACCESS = {"cloud": pb.ACCESS_TYPE_CLOUD, "on-premise": pb.ACCESS_TYPE_ON_PREMISE}
TENANT_COLS = ["tenant_id", "name", "contact", "time_zone", "create_time"]
USER_COLS = ["user_id", "tenant_id", "name", "email", "create_time"]
KEY_COLS = ["key_id", "role", "tenant_id", "user_id", "display_name", "prefix", "revoke_time"]
MODEL_COLS = ["model_id", "name", "tenant_id", "provider", "access_type", "description"]
CONFIG_COLS = ["config_id", "tenant_id", "model_id", "token_limit", "fallback_models"]


def stub(s: Session) -> rpc.IdentityServiceStub:
    return rpc.IdentityServiceStub(s.channel("identity"))


def rid(args: argparse.Namespace) -> str:
    return getattr(args, "request_id", "") or str(uuid.uuid4())


def principal_of(s: Session) -> Any:
    """Who the caller's own key stands for (asked once per run)."""
    if s.principal is None:
        request = pb.AuthenticateRequest(api_key=s.api_key)
        s.principal = s.call(stub(s).Authenticate, request, with_key=False).principal
    return s.principal


def tenant_of(s: Session, args: argparse.Namespace) -> str:
    """--tenant, else the tenant of the caller's own key."""
    if getattr(args, "tenant", ""):
        return str(args.tenant)
    principal = principal_of(s)
    if not principal.tenant_id:
        raise CliError("--tenant is required for a platform admin key", 2)
    return str(principal.tenant_id)


def user_of(s: Session, args: argparse.Namespace) -> str:
    """--user, else the caller itself when its key is a user key (users see only their own)."""
    if getattr(args, "user", ""):
        return str(args.user)
    principal = principal_of(s)
    return str(principal.user_id) if principal.role == pb.ROLE_USER else ""


def pages(s: Session, method: Any, request: Any, field: str, args: argparse.Namespace) -> Result:
    """One page, or every page with --all; the next token goes to stderr for people."""
    rows: list[dict[str, Any]] = []
    request.page_size = args.page_size
    request.page_token = args.page_token
    while True:
        reply = s.call(method, request)
        rows += [as_dict(m) for m in getattr(reply, field)]
        if not (args.all and reply.next_page_token):
            break
        request.page_token = reply.next_page_token
    if reply.next_page_token and not args.json:
        import sys

        print(f"next page: --page-token {reply.next_page_token}", file=sys.stderr)
    return rows, []


def struct(text: str) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    try:
        out.update(json.loads(text))
    except (ValueError, TypeError, AttributeError) as exc:
        raise CliError(f"--params must be a JSON object: {exc}", 2) from None
    return out


# -- handlers -------------------------------------------------------------------------


def tenants(s: Session, a: argparse.Namespace) -> Result:
    st = stub(s)
    if a.action == "create":
        t = pb.Tenant(name=a.name, contact=a.contact, time_zone=a.time_zone)
        reply = s.call(st.CreateTenant, pb.CreateTenantRequest(tenant=t, request_id=rid(a)))
        return as_dict(reply.tenant), []
    if a.action == "list":
        return pages(s, st.ListTenants, pb.ListTenantsRequest(), "tenants", a)[0], TENANT_COLS
    if a.action == "get":
        return as_dict(s.call(st.GetTenant, pb.GetTenantRequest(tenant_id=a.id)).tenant), []
    if a.action == "update":
        t = pb.Tenant(
            tenant_id=a.id, name=a.name or "", contact=a.contact or "", time_zone=a.time_zone or ""
        )
        paths = [p for p in ("name", "contact", "time_zone") if getattr(a, p) is not None]
        mask = field_mask_pb2.FieldMask(paths=paths)
        reply = s.call(st.UpdateTenant, pb.UpdateTenantRequest(tenant=t, update_mask=mask))
        return as_dict(reply.tenant), []
    s.call(st.DeleteTenant, pb.DeleteTenantRequest(tenant_id=a.id, cascade=a.cascade))
    return {"deleted": a.id}, []


def users(s: Session, a: argparse.Namespace) -> Result:
    st = stub(s)
    tenant = tenant_of(s, a)
    if a.action == "create":
        u = pb.User(tenant_id=tenant, name=a.name, email=a.email)
        return as_dict(
            s.call(st.CreateUser, pb.CreateUserRequest(user=u, request_id=rid(a))).user
        ), []
    if a.action == "list":
        return pages(s, st.ListUsers, pb.ListUsersRequest(tenant_id=tenant), "users", a)[
            0
        ], USER_COLS
    if a.action == "get":
        return as_dict(
            s.call(st.GetUser, pb.GetUserRequest(tenant_id=tenant, user_id=a.id)).user
        ), []
    s.call(st.DeleteUser, pb.DeleteUserRequest(tenant_id=tenant, user_id=a.id))
    return {"deleted": a.id}, []


def keys(s: Session, a: argparse.Namespace) -> Result:
    req: Any
    st = stub(s)
    if a.action == "create":
        req = pb.CreateApiKeyRequest(
            tenant_id=a.tenant,
            user_id=a.user,
            role=ROLES[a.role],
            display_name=a.name,
            request_id=rid(a),
        )
        reply = s.call(st.CreateApiKey, req)
        return {**as_dict(reply.api_key), "secret": reply.secret}, []
    if a.action == "list":
        req = pb.ListApiKeysRequest(
            tenant_id=a.tenant, user_id=a.user, include_revoked=a.include_revoked
        )
        return pages(s, st.ListApiKeys, req, "api_keys", a)[0], KEY_COLS
    reply = s.call(st.RevokeApiKey, pb.RevokeApiKeyRequest(key_id=a.id))
    return as_dict(reply.api_key), []


def models(s: Session, a: argparse.Namespace) -> Result:
    st = stub(s)
    if a.action == "create":
        m = pb.Model(
            tenant_id=a.tenant,
            name=a.name,
            description=a.description,
            provider=a.provider,
            access_type=ACCESS[a.access],
        )
        return as_dict(
            s.call(st.CreateModel, pb.CreateModelRequest(model=m, request_id=rid(a))).model
        ), []
    if a.action == "list":
        return pages(s, st.ListModels, pb.ListModelsRequest(tenant_id=a.tenant), "models", a)[
            0
        ], MODEL_COLS
    if a.action == "get":
        return as_dict(s.call(st.GetModel, pb.GetModelRequest(model_id=a.id)).model), []
    s.call(st.DeleteModel, pb.DeleteModelRequest(model_id=a.id))
    return {"deleted": a.id}, []


def configs(s: Session, a: argparse.Namespace) -> Result:
    req: Any
    st = stub(s)
    tenant = tenant_of(s, a)
    if a.action == "create":
        c = pb.ModelConfig(
            tenant_id=tenant,
            model_id=a.model_id,
            extra_parameters=struct(a.params),
            allowed_extra_parameters=a.allow_extra,
            fallback_models=a.fallback,
            fallback_on_context_length=a.fallback_on_context_length,
        )
        if a.token_limit is not None:
            c.token_limit = a.token_limit
        req = pb.CreateModelConfigRequest(config=c, request_id=rid(a))
        return as_dict(s.call(st.CreateModelConfig, req).config), []
    if a.action == "list":
        req = pb.ListModelConfigsRequest(tenant_id=tenant)
        return pages(s, st.ListModelConfigs, req, "configs", a)[0], CONFIG_COLS
    if a.action == "get":
        req = pb.GetModelConfigRequest(tenant_id=tenant, config_id=a.id)
        return as_dict(s.call(st.GetModelConfig, req).config), []
    if a.action == "set-fallbacks":
        c = pb.ModelConfig(
            tenant_id=tenant,
            config_id=a.id,
            fallback_models=a.fallback,
            fallback_on_context_length=a.fallback_on_context_length,
        )
        paths = ["fallback_models", "fallback_on_context_length"]
        req = pb.UpdateModelConfigRequest(
            config=c, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return as_dict(s.call(st.UpdateModelConfig, req).config), []
    s.call(st.DeleteModelConfig, pb.DeleteModelConfigRequest(tenant_id=tenant, config_id=a.id))
    return {"deleted": a.id}, []
