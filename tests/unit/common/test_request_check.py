"""The one check every request passes before a handler runs (gateway_common.request_check)."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from gateway_common.errors import InvalidArgument
from gateway_common.request_check import check_request
from llmgw.history.v1 import history_pb2
from llmgw.identity.v1 import identity_pb2
from llmgw.llm.v1 import llm_pb2


def refused(request) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as exc:
        check_request(request)
    return exc.value


def test_nul_in_an_identifier_or_name_names_the_field():
    err = refused(identity_pb2.CreateTenantRequest(tenant=identity_pb2.Tenant(name="a\x00b")))
    assert err.violations[0].field == "tenant.name"
    assert refused(identity_pb2.GetUserRequest(user_id="\x00")).violations[0].field == "user_id"


def test_nul_is_allowed_only_in_free_texts():
    check_request(
        llm_pb2.ChatRequest(model="m", messages=[llm_pb2.Message(role=2, content="a\x00b")])
    )
    check_request(
        history_pb2.RecordInteractionsRequest(
            interactions=[history_pb2.Interaction(question="q\x00", answer="\x00")]
        )
    )
    err = refused(llm_pb2.ChatRequest(model="m\x00"))
    assert err.violations[0].field == "model"


def test_out_of_range_timestamps_are_refused_anywhere():
    req = identity_pb2.CreateApiKeyRequest()
    req.expire_time.seconds = 10**15
    assert refused(req).violations[0].field == "expire_time"
    search = history_pb2.ListInteractionsRequest(tenant_id="t")
    search.start_time.nanos = -1
    assert refused(search).violations[0].field == "start_time"


def test_nan_and_infinity_are_refused_in_structs_and_doubles():
    params = struct_pb2.Struct()
    params.update({"deep": {"x": float("nan")}})
    assert "parameters" in refused(llm_pb2.ChatRequest(model="m", parameters=params)).message
    assert refused(llm_pb2.ChatRequest(model="m", temperature=float("inf")))


def test_nul_in_a_struct_key_or_value_of_a_stored_config_is_refused():
    extra = struct_pb2.Struct()
    extra.update({"k\x00": "v"})
    req = identity_pb2.CreateModelConfigRequest(
        config=identity_pb2.ModelConfig(extra_parameters=extra)
    )
    assert refused(req).violations[0].field.startswith("config.extra_parameters")


def test_a_clean_request_passes():
    check_request(identity_pb2.ListUsersRequest(tenant_id="t", page_size=5, page_token="x"))
