from __future__ import annotations

import json

import pytest

from gateway_common.auth import bearer_token, require_internal
from gateway_common.channels import retry_service_config
from gateway_common.errors import PermissionDenied, Unauthenticated
from gateway_common.principal import Principal, Role


def test_bearer_token_parsing():
    assert bearer_token([("authorization", "Bearer abc.def")]) == "abc.def"
    assert bearer_token([("authorization", "bearer   xyz ")]) == "xyz"
    for md in ([], [("authorization", "Basic abc")], [("authorization", "Bearer ")]):
        with pytest.raises(Unauthenticated):
            bearer_token(md)


def test_internal_token_is_required_and_compared():
    require_internal([("x-internal-token", "s3cret")], "s3cret")
    for md in ([], [("x-internal-token", "wrong")]):
        with pytest.raises(Unauthenticated):
            require_internal(md, "s3cret")
    with pytest.raises(Unauthenticated):  # an unset server token never matches
        require_internal([("x-internal-token", "")], "")


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


def test_development_internal_token_is_refused_off_loopback():
    from gateway_common.settings import ServiceSettings

    ServiceSettings(host="127.0.0.1").check_production_safety()  # local runs: fine
    ServiceSettings(host="0.0.0.0", GATEWAY_INTERNAL_TOKEN="s3cret-value").check_production_safety()
    with pytest.raises(SystemExit) as exc:
        ServiceSettings(host="0.0.0.0").check_production_safety()
    assert "GATEWAY_INTERNAL_TOKEN" in str(exc.value)
