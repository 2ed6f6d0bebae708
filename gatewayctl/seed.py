"""bootstrap-admin (the first platform-admin key) and demo-seed (what `make run` needs)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from gatewayctl.admin import Result
from gatewayctl.client import CliError, Session, target_from_env
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.quota.v1 import quota_pb2 as qpb
from llmgw.quota.v1 import quota_pb2_grpc as qrpc

NS = uuid.UUID("3f1d2c4b-5a6e-4f70-8192-a3b4c5d6e7f8")
DEFAULT_PROVIDER_PORT = "18080"


def provider_url() -> str:
    """``FAKE_PROVIDER_URL``, else the fake provider on ``FAKE_PROVIDER_PORT`` (default 18080)."""
    port = os.environ.get("FAKE_PROVIDER_PORT", DEFAULT_PROVIDER_PORT)
    return os.environ.get("FAKE_PROVIDER_URL") or f"http://127.0.0.1:{port}/v1"


def create_admin_key(name: str) -> dict[str, str]:
    """Runs identity's own tool (it applies migrations and prints the secret once)."""
    proc = subprocess.run(
        [sys.executable, "-m", "identity_svc.create_admin_key", "--name", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CliError(f"create_admin_key failed: {proc.stderr.strip()[-500:]}", 1)
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("key_id", "api_key"):
            out[key.strip()] = value.strip()
    if "api_key" not in out:
        raise CliError("create_admin_key printed no api_key", 1)
    return out


def bootstrap_admin(s: Session, a: argparse.Namespace) -> Result:
    return create_admin_key(a.name), []


def _rid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


def _valid(s: Session, key: str) -> ipb.Principal | None:
    stub = irpc.IdentityServiceStub(s.channel("identity"))
    try:
        reply = s.call(stub.Authenticate, ipb.AuthenticateRequest(api_key=key), with_key=False)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED:
            return None
        raise
    principal: ipb.Principal = reply.principal
    return principal


def _state_path() -> Path:
    return Path(os.environ.get("LOCAL_DIR", ".local")) / "demo.json"


def demo_seed(s: Session, a: argparse.Namespace) -> Result:
    """Idempotent: creations use request ids derived from fixed names, so a rerun replays
    them; the secrets it cannot get back are kept in .local/demo.json."""
    path = _state_path()
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    admin = s.api_key or state.get("admin_key", "")
    principal = _valid(s, admin) if admin else None
    if principal is None or principal.role != ipb.ROLE_PLATFORM_ADMIN:
        admin = create_admin_key("demo-seed admin")["api_key"]
    s.api_key = state["admin_key"] = admin
    ids = _seed(s, provider_url())
    state.update(ids)
    key = state.get("user_key", "")
    if not key or _valid(s, key) is None:
        identity = irpc.IdentityServiceStub(s.channel("identity"))
        req = ipb.CreateApiKeyRequest(
            tenant_id=ids["tenant_id"],
            user_id=ids["user_id"],
            role=ipb.ROLE_USER,
            display_name="demo user key",
            request_id=str(uuid.uuid4()),
        )
        key = s.call(identity.CreateApiKey, req).secret
    state["user_key"] = key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)
    # The target spelled out, so the command works from any shell, whatever its variables.
    target = s.targets.get("llm") or target_from_env("llm")
    command = f'GATEWAY_LLM_TARGET={target} .venv/bin/python -m gatewayctl chat --key {key} "hello"'
    if a.json:
        return {**ids, "user_key": key, "command": command}, []
    print(f"demo tenant {ids['tenant_id']}, user {ids['user_id']}, model demo-model")
    print("chat through the whole suite with:")
    print(f"  {command}")
    return None, []


def _seed(s: Session, provider_url: str) -> dict[str, str]:
    idn = irpc.IdentityServiceStub(s.channel("identity"))
    quo = qrpc.QuotaServiceStub(s.channel("quota"))
    tenant = s.call(
        idn.CreateTenant,
        ipb.CreateTenantRequest(
            tenant=ipb.Tenant(name="Demo Tenant", contact="demo@example.com"),
            request_id=_rid("tenant"),
        ),
    ).tenant.tenant_id
    user = s.call(
        idn.CreateUser,
        ipb.CreateUserRequest(
            user=ipb.User(tenant_id=tenant, name="Demo User", email="demo.user@example.com"),
            request_id=_rid(f"user|{tenant}"),
        ),
    ).user.user_id
    model = s.call(
        idn.CreateModel,
        ipb.CreateModelRequest(
            model=ipb.Model(
                tenant_id=tenant,
                name="demo-model",
                provider="fake",
                description="the local fake provider (echo)",
                access_type=ipb.ACCESS_TYPE_ON_PREMISE,
            ),
            request_id=_rid(f"model|{tenant}"),
        ),
    ).model.model_id
    params = struct_pb2.Struct()
    params.update({"temperature": 0.7})
    config = ipb.ModelConfig(
        tenant_id=tenant, model_id=model, token_limit=512, extra_parameters=params
    )
    created = _tolerate_exists(
        lambda: s.call(
            idn.CreateModelConfig,
            ipb.CreateModelConfigRequest(config=config, request_id=_rid(f"config|{model}")),
        )
    )
    if created is not None:  # a new configuration: its one deployment, the fake provider
        row = ipb.ModelDeployment(
            tenant_id=tenant, config_id=created.config.config_id, base_url=provider_url
        )
        s.call(
            idn.CreateModelDeployment,
            ipb.CreateModelDeploymentRequest(
                deployment=row,
                credential="fake-provider-key",
                request_id=_rid(f"deployment|{model}"),
            ),
        )
    plan = s.call(
        quo.CreatePlan,
        qpb.CreatePlanRequest(
            plan=qpb.Plan(
                tenant_id=tenant,
                name="Demo plan",
                monthly_request_limit=1000,
                description="1000 requests a month",
            ),
            request_id=_rid(f"plan|{tenant}"),
        ),
    ).plan.plan_id
    _tolerate_exists(
        lambda: s.call(
            quo.CreateSubscription,
            qpb.CreateSubscriptionRequest(
                tenant_id=tenant, user_id=user, plan_id=plan, request_id=_rid(f"sub|{user}")
            ),
        )
    )
    return {"tenant_id": tenant, "user_id": user, "model_id": model, "plan_id": plan}


def _tolerate_exists(create: Any) -> Any:
    """What ``create`` returned; None when the thing already existed."""
    try:
        return create()
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        return None
