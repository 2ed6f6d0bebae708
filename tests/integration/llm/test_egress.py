"""Provider destinations under the platform's egress policy (hardening finding 10), through
a running llm: a refused destination is FAILED_PRECONDITION PROVIDER_DESTINATION_NOT_ALLOWED,
checked on the URL's literal and again on every address a name resolves to; the reservation
is released and the interaction recorded as an error (the settlement invariant)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import grpc
import pytest

from llmgw.history.v1 import history_pb2
from llmgw.llm.v1 import llm_pb2
from tests.integration.llm.conftest import Stack
from tests.integration.llm.test_llm_servicer import USER, chat, fails

REFUSED = (grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_DESTINATION_NOT_ALLOWED")
HOST = socket.gethostname()  # a name the local resolver maps to this machine: not public


@pytest.fixture
def egress(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """GATEWAY_EGRESS_ALLOW for the stack built after it (the platform's setting)."""
    monkeypatch.setenv("GATEWAY_EGRESS_ALLOW", request.param)
    monkeypatch.setenv("LLM_RESOLVE_CACHE_SECONDS", "0")  # a changed base URL counts at once
    yield request.param


def provider_port(stack: Stack) -> int:
    return urlsplit(stack.identity.resolved.deployments[0].base_url).port or 80


def point_at(stack: Stack, host: str) -> None:
    stack.identity.resolved.deployments[0].base_url = f"http://{host}:{provider_port(stack)}/v1"


@pytest.mark.parametrize("egress", [""], indirect=True)
@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::ffff:127.0.0.1]", "169.254.169.254", "metadata.google.internal"]
)
async def test_by_default_loopback_private_and_metadata_are_refused(
    egress: str, stack: Stack, host: str
) -> None:
    point_at(stack, host)
    err = await fails(stack.llm.Chat(chat(), metadata=USER, timeout=5), *REFUSED)
    assert "not allowed by the platform" in (err.details() or "")
    assert stack.provider.last_request == {}  # nothing left the pod
    assert list(stack.states().values()) == ["released"]
    [stored] = await stack.records(1)
    assert stored.status == history_pb2.INTERACTION_STATUS_ERROR
    assert stored.error_reason == REFUSED[1]


@pytest.mark.parametrize("egress", [""], indirect=True)
async def test_a_name_is_checked_after_dns_resolution(egress: str, stack: Stack) -> None:
    assert not socket.getaddrinfo(HOST, 80)[0][4][0].startswith(("8.", "1.")), "must be local"
    point_at(stack, HOST)
    err = await fails(stack.llm.Chat(chat(), metadata=USER, timeout=5), *REFUSED)
    assert f"{HOST} resolves to" in (err.details() or "")
    assert stack.provider.last_request == {}
    assert list(stack.states().values()) == ["released"]
    # Streaming takes the same path.
    request = llm_pb2.ChatStreamRequest(model="demo-model", messages=chat().messages)
    stream = stack.llm.ChatStream(request, metadata=USER, timeout=5)
    await fails(anext(aiter(stream)), *REFUSED)


@pytest.mark.parametrize("egress", [f"{HOST}, 10.0.0.0/8"], indirect=True)
async def test_the_platform_allows_an_on_premise_host(egress: str, stack: Stack) -> None:
    point_at(stack, HOST)
    reply = await stack.llm.Chat(chat(), metadata=USER, timeout=5)
    assert reply.content == "Echo: hello there" and stack.committed() == 1
    # The allow list does not open the metadata address, nor loopback by address.
    for host in ("169.254.169.254", "127.0.0.1"):
        point_at(stack, host)
        await fails(stack.llm.Chat(chat(), metadata=USER, timeout=5), *REFUSED)


@pytest.mark.parametrize("egress", ["127.0.0.0/8"], indirect=True)
async def test_the_local_stack_allows_loopback(egress: str, stack: Stack) -> None:
    reply = await stack.llm.Chat(chat(), metadata=USER, timeout=5)
    assert reply.content == "Echo: hello there"
    point_at(stack, "169.254.169.254")  # metadata stays refused whatever the list says
    await fails(stack.llm.Chat(chat(), metadata=USER, timeout=5), *REFUSED)
