"""A configuration's provider deployments: add, list, update, remove."""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf import field_mask_pb2

from gatewayctl.admin import Result, pages, rid, stub, tenant_of
from gatewayctl.client import Session
from gatewayctl.output import as_dict
from llmgw.identity.v1 import identity_pb2 as pb

DEPLOYMENT_COLS = [
    "deployment_id",
    "config_id",
    "base_url",
    "upstream_model",
    "priority",
    "weight",
    "attempt_timeout_ms",
    "has_credential",
]
# Option -> mask path; an option given on update is a field changed.
_FIELDS = {
    "base_url": "base_url",
    "credential": "credential",
    "upstream_model": "upstream_model",
    "priority": "priority",
    "weight": "weight",
    "attempt_timeout_ms": "attempt_timeout",
}


def _row(tenant: str, a: argparse.Namespace) -> pb.ModelDeployment:
    row = pb.ModelDeployment(tenant_id=tenant)
    for name in ("base_url", "upstream_model", "priority", "weight", "attempt_timeout_ms"):
        value = getattr(a, name, None)
        if value is not None:
            setattr(row, name, value)
    return row


def deployments(s: Session, a: argparse.Namespace) -> Result:
    req: Any
    st, tenant = stub(s), tenant_of(s, a)
    if a.action == "add":
        row = _row(tenant, a)
        row.config_id = a.config_id
        req = pb.CreateModelDeploymentRequest(
            deployment=row, credential=a.credential or "", request_id=rid(a)
        )
        return as_dict(s.call(st.CreateModelDeployment, req).deployment), []
    if a.action == "list":
        req = pb.ListModelDeploymentsRequest(tenant_id=tenant, config_id=a.config_id)
        return pages(s, st.ListModelDeployments, req, "deployments", a)[0], DEPLOYMENT_COLS
    if a.action == "update":
        row = _row(tenant, a)
        row.deployment_id = a.id
        paths = [path for opt, path in _FIELDS.items() if getattr(a, opt) is not None]
        req = pb.UpdateModelDeploymentRequest(
            deployment=row,
            credential=a.credential or "",
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )
        return as_dict(s.call(st.UpdateModelDeployment, req).deployment), []
    req = pb.DeleteModelDeploymentRequest(tenant_id=tenant, deployment_id=a.id)
    s.call(st.DeleteModelDeployment, req)
    return {"deleted": a.id}, []


def add_commands(leaf: Any, group: Any, listing: Any, creating: Any) -> None:
    g = group("deployments", "a configuration's provider deployments")

    def fields(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tenant", default="")
        p.add_argument("--base-url", default=None, help="OpenAI-compatible; empty: the default")
        p.add_argument("--credential", default=None, help="the provider's API key")
        p.add_argument("--upstream-model", default=None, help="the provider's name of the model")
        p.add_argument("--priority", type=int, default=None, help="0..1000, lowest tried first")
        p.add_argument("--weight", type=int, default=None, help="1..1000 among equal priorities")
        p.add_argument("--attempt-timeout-ms", type=int, default=None, help="per attempt")

    p = leaf(g, "add", deployments, "add a deployment to a configuration")
    p.add_argument("--config-id", required=True)
    fields(p)
    creating(p)
    p = leaf(g, "list", deployments, "list a configuration's deployments")
    p.add_argument("--config-id", required=True)
    p.add_argument("--tenant", default="")
    listing(p)
    p = leaf(g, "update", deployments, "change the fields given")
    p.add_argument("id")
    fields(p)
    p = leaf(g, "remove", deployments, "remove a deployment")
    p.add_argument("id")
    p.add_argument("--tenant", default="")
