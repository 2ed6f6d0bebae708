from __future__ import annotations

import grpc
import pytest

from gateway_common import service_auth
from gateway_common.client_errors import translate
from gateway_common.errors import DomainError, PermissionDenied, Unauthenticated, Unavailable
from gateway_common.service_auth import SERVICE_TOKEN, Callers, digest, parse_accepted
from gateway_common.settings import ServiceSettings
from gateway_common.status import to_grpc_status, to_rpc_status
from history_svc.servicer import HistoryInternalServicer
from identity_svc.servicer import IdentityInternalServicer
from llm_svc.config import LlmSettings
from quota_svc.config import QuotaSettings
from quota_svc.servicer import QuotaInternalServicer

CALLERS = Callers.parse(f"llm={digest('llm-secret')},quota={digest('quota-secret')}")


def md(token: str) -> list[tuple[str, str]]:
    return [(SERVICE_TOKEN, token)]


def test_a_caller_is_known_by_the_digest_of_its_own_token():
    assert CALLERS.identify(md("llm-secret")) == "llm"
    assert CALLERS.identify(md("quota-secret")) == "quota"
    for metadata in ([], md(""), md("wrong"), md(digest("llm-secret"))):  # a digest is no token
        with pytest.raises(Unauthenticated) as exc:
            CALLERS.identify(metadata)
        assert exc.value.reason == "INTERNAL_ONLY"


def test_a_known_caller_outside_the_rpcs_list_is_permission_denied():
    assert CALLERS.require(md("llm-secret"), "ResolveModel", frozenset({"llm"})) == "llm"
    with pytest.raises(PermissionDenied) as exc:
        CALLERS.require(md("quota-secret"), "ResolveModel", frozenset({"llm"}))
    assert exc.value.reason == "CALLER_NOT_ALLOWED"
    assert exc.value.metadata == {"caller": "quota", "rpc": "ResolveModel"}
    with pytest.raises(Unauthenticated):
        CALLERS.require(md("nope"), "ResolveModel", frozenset({"llm"}))


@pytest.mark.parametrize(
    "value", ["llm", "llm=abc", f"LLM={'0' * 64}", f"llm={'0' * 64},quota={'0' * 64}", "=x"]
)
def test_malformed_accepted_callers_are_refused(value: str):
    with pytest.raises(ValueError):
        parse_accepted(value)
    with pytest.raises(ValueError):
        ServiceSettings(GATEWAY_ACCEPTED_SERVICE_TOKENS=value)


def test_a_refused_entry_is_not_echoed():
    with pytest.raises(ValueError) as exc:  # a raw token pasted where its digest belongs
        QuotaSettings(GATEWAY_ACCEPTED_SERVICE_TOKENS="llm=s3cret-token-value")
    assert "s3cret" not in str(exc.value)


def test_a_caller_rotating_its_token_is_accepted_under_both():
    both = Callers.parse(f"llm={digest('old')},llm={digest('new')}")
    assert both.identify(md("old")) == both.identify(md("new")) == "llm"


def test_empty_accepts_nobody():
    assert parse_accepted("") == {}
    with pytest.raises(Unauthenticated):
        Callers.parse("").identify(md(service_auth.dev_token("llm")))


def test_every_internal_rpc_names_its_callers():
    expected = {
        IdentityInternalServicer: {
            "ResolveModel": {"llm"},
            "CheckMembership": {"quota"},
            "ListRevocations": {"llm", "quota", "history"},
        },
        QuotaInternalServicer: {"Reserve": {"llm"}, "Settle": {"llm"}, "GetSettlement": {"llm"}},
        HistoryInternalServicer: {
            "RecordInteractions": {"quota"},
            "ListErasures": {"quota"},
            "RecordAdjustments": {"identity", "quota"},
            "RecordSystemEvents": {"identity", "quota", "llm"},
        },
    }
    for servicer, rpcs in expected.items():
        base = servicer.__mro__[1]  # the generated servicer: every RPC of the contract
        declared = {n for n in vars(base) if n[0].isupper()}
        assert declared == set(rpcs), servicer
        for name, callers in rpcs.items():
            assert getattr(servicer, name).allowed_callers == callers, (servicer, name)


def test_each_service_presents_its_own_development_token_by_default():
    assert QuotaSettings().service_credential() == "dev-service-token-quota"
    assert LlmSettings().service_credential() == "dev-service-token-llm"
    assert QuotaSettings(GATEWAY_SERVICE_TOKEN="s").service_credential() == "s"
    assert (
        Callers.parse(QuotaSettings().accepted_service_tokens).identify(md("dev-service-token-llm"))
        == "llm"
    )
    assert LlmSettings().accepted_service_tokens == ""  # llm serves no internal RPC


def test_development_credentials_are_refused_off_loopback():
    QuotaSettings(host="127.0.0.1").check_production_safety()  # local runs: fine
    real = {
        "GATEWAY_SERVICE_TOKEN": "s3cret-value",
        "GATEWAY_ACCEPTED_SERVICE_TOKENS": f"llm={digest('llm-s3cret')}",
    }
    QuotaSettings(host="0.0.0.0", **real).check_production_safety()
    without_dev = {"GATEWAY_ACCEPTED_SERVICE_TOKENS": real["GATEWAY_ACCEPTED_SERVICE_TOKENS"]}
    LlmSettings(host="0.0.0.0", GATEWAY_SERVICE_TOKEN="s3cret").check_production_safety()
    for unset in (QuotaSettings(host="0.0.0.0"), ServiceSettings(host="0.0.0.0")):
        with pytest.raises(SystemExit) as exc:
            unset.check_production_safety()
        assert "GATEWAY_SERVICE_TOKEN" in str(exc.value)
    with pytest.raises(SystemExit):  # another service's public token is no better
        QuotaSettings(
            host="0.0.0.0", GATEWAY_SERVICE_TOKEN="dev-service-token-llm", **without_dev
        ).check_production_safety()
    dev_llm = f"llm={digest('dev-service-token-llm')}"
    with pytest.raises(SystemExit) as exc:
        QuotaSettings(
            host="0.0.0.0",
            GATEWAY_SERVICE_TOKEN="s3cret-value",
            GATEWAY_ACCEPTED_SERVICE_TOKENS=dev_llm,
        ).check_production_safety()
    assert "GATEWAY_ACCEPTED_SERVICE_TOKENS" in str(exc.value) and "llm" in str(exc.value)


def _rpc_error(code: grpc.StatusCode, error: DomainError) -> grpc.aio.AioRpcError:
    status = to_grpc_status(to_rpc_status(error, "identity.llmgw"))
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), error.message
    )


def test_a_refused_service_credential_is_the_callers_outage_not_the_users_fault():
    refused = [
        _rpc_error(grpc.StatusCode.UNAUTHENTICATED, Unauthenticated("x", "INTERNAL_ONLY")),
        _rpc_error(grpc.StatusCode.PERMISSION_DENIED, PermissionDenied("x", "CALLER_NOT_ALLOWED")),
    ]
    for err in refused:
        failure = translate(err, "identity")
        assert isinstance(failure, Unavailable) and failure.reason == "IDENTITY_UNAVAILABLE"
    other = _rpc_error(
        grpc.StatusCode.PERMISSION_DENIED, PermissionDenied("x", "MODEL_NOT_ENABLED")
    )
    assert isinstance(translate(other, "identity"), PermissionDenied)
