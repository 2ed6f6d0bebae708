"""The request fingerprint: content without request_id, canonical, per method."""

from __future__ import annotations

import pytest

from gateway_common.errors import InvalidArgument
from gateway_common.idempotency import RequestKey, fingerprint, request_key
from llmgw.identity.v1 import identity_pb2 as pb


def test_the_same_content_under_any_request_id_has_one_fingerprint() -> None:
    a = pb.CreateUserRequest(user=pb.User(tenant_id="t", name="ana"), request_id="r1")
    b = pb.CreateUserRequest(user=pb.User(name="ana", tenant_id="t"), request_id="r2")
    assert fingerprint(a) == fingerprint(b)
    assert request_key(a) == RequestKey("r1", fingerprint(b))
    b.user.email = "ana@x.io"
    assert fingerprint(a) != fingerprint(b)


def test_map_order_does_not_matter_and_methods_never_collide() -> None:
    one, two = pb.CreateModelConfigRequest(), pb.CreateModelConfigRequest()
    one.config.extra_parameters.update({"a": 1, "b": {"c": 2}})
    two.config.extra_parameters.update({"b": {"c": 2}, "a": 1})
    assert fingerprint(one) == fingerprint(two)
    assert fingerprint(pb.CreateTenantRequest()) != fingerprint(pb.CreateUserRequest())


def test_a_replay_with_other_content_is_refused_naming_request_id() -> None:
    key = RequestKey("r1", "f1")
    key.require_same("f1")
    key.require_same(None)  # recorded before fingerprints: replays as before
    with pytest.raises(InvalidArgument) as caught:
        key.require_same("f2")
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert caught.value.violations[0].field == "request_id"
