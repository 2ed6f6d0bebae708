from __future__ import annotations

import json

import pytest

from gateway_common.auth import bearer_token
from gateway_common.channels import retry_service_config
from gateway_common.errors import PermissionDenied, Unauthenticated
from gateway_common.principal import Principal, Role


def test_bearer_token_parsing():
    assert bearer_token([("authorization", "Bearer abc.def")]) == "abc.def"
    assert bearer_token([("authorization", "bearer   xyz ")]) == "xyz"
    for md in ([], [("authorization", "Basic abc")], [("authorization", "Bearer ")]):
        with pytest.raises(Unauthenticated):
            bearer_token(md)


def test_tenant_rules():
    admin_a = Principal(Role.TENANT_ADMIN, tenant_id="A")
    user_a = Principal(Role.USER, tenant_id="A", user_id="u1")
    platform = Principal(Role.PLATFORM_ADMIN)
    admin_a.require_tenant_admin("A")
    platform.require_tenant_admin("B")
    user_a.require_tenant_member("A", "u1")
    with pytest.raises(PermissionDenied):
        admin_a.require_tenant_admin("B")
    with pytest.raises(PermissionDenied):
        user_a.require_tenant_admin("A")
    with pytest.raises(PermissionDenied):
        user_a.require_tenant_member("A", "u2")
    with pytest.raises(PermissionDenied):
        admin_a.require_platform_admin()


def test_retry_policy_only_on_unavailable_for_named_methods():
    config = json.loads(retry_service_config([("svc.v1.S", "Get")]))
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "svc.v1.S", "method": "Get"}]
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert json.loads(retry_service_config([])) == {"methodConfig": []}
