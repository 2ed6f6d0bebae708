"""Routing end to end (issue 16): the suite's processes and several fake provider processes
(healthy, failing every call, slow, flaky under control, failing part-way through a
stream) plus one that is down (a port nobody listens on). Its own suite: breakers that
open after 3 failures in a row and probe after 1 s, so recovery fits in a test."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from llmgw.history.v1 import audit_pb2 as apb
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.llm.v1 import llm_pb2
from tests.e2e.conftest import Suite, _wait_http, running_suite, suite_environment
from tests.e2e.world import Tenant, bearer, make_tenant
from tests.support import ROOT, free_port

OVERRIDES = {
    "LLM_BREAKER_CONSECUTIVE_FAILURES": "3",
    "LLM_BREAKER_COOLDOWN_SECONDS": "1",
    "LLM_MAX_ATTEMPTS": "3",
}


@dataclass
class Fake:
    """One fake provider process, steered through its /_control."""

    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _post(self, path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=5).close()

    def control(self, **settings: Any) -> None:
        self._post("/_control", settings)

    def calls(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=5) as r:
            return int(json.load(r)["calls"])


@pytest.fixture(scope="module")
def fakes(log_dir: Path) -> Iterator[dict[str, Fake]]:
    settings = {
        "healthy": [],
        "failing": ["--fail-status", "503"],
        "slow": ["--latency-ms", "3000"],
        "flaky": [],
        "breaks": [],
        "spare": [],
    }
    out: dict[str, Fake] = {}
    try:
        for name, args in settings.items():
            fake = Fake(free_port())
            fake.proc = subprocess.Popen(
                [sys.executable, "-m", "devtools.fake_provider", "--port", str(fake.port), *args],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=(log_dir / f"fake-{name}.log").open("ab"),
            )
            out[name] = fake
        for fake in out.values():
            _wait_http(f"http://127.0.0.1:{fake.port}/health")
        out["down"] = Fake(free_port())  # nothing listens there
        yield out
    finally:
        for fake in out.values():
            if fake.proc is not None:
                fake.proc.terminate()
                fake.proc.wait(10)


@pytest.fixture(scope="module")
async def rsuite(log_dir: Path) -> AsyncIterator[Suite]:
    with suite_environment(OVERRIDES) as env:
        async with running_suite(env, log_dir) as suite:
            yield suite


def _idn(suite: Suite) -> irpc.IdentityServiceStub:
    return irpc.IdentityServiceStub(suite.channel("identity"))


async def _config_id(suite: Suite, tenant_id: str, model_id: str = "") -> str:
    reply = await _idn(suite).ListModelConfigs(
        ipb.ListModelConfigsRequest(tenant_id=tenant_id), metadata=bearer(suite.admin_key)
    )
    return next(c.config_id for c in reply.configs if not model_id or c.model_id == model_id)


async def route(suite: Suite, tenant_id: str, config_id: str, *specs: dict[str, Any]) -> list[str]:
    """Replace the configuration's deployments with ``specs`` (ModelDeployment fields);
    their ids, in the order given."""
    idn, md = _idn(suite), bearer(suite.admin_key)
    listed = await idn.ListModelDeployments(
        ipb.ListModelDeploymentsRequest(tenant_id=tenant_id, config_id=config_id), metadata=md
    )
    for old in listed.deployments:
        await idn.DeleteModelDeployment(
            ipb.DeleteModelDeploymentRequest(tenant_id=tenant_id, deployment_id=old.deployment_id),
            metadata=md,
        )
    ids = []
    for spec in specs:
        row = ipb.ModelDeployment(tenant_id=tenant_id, config_id=config_id, **spec)
        made = await idn.CreateModelDeployment(
            ipb.CreateModelDeploymentRequest(deployment=row, credential="sk-fake"), metadata=md
        )
        ids.append(made.deployment.deployment_id)
    await asyncio.sleep(1.2)  # past identity's and llm's resolve caches (0.5 s each)
    return ids


async def routed_tenant(suite: Suite, *specs: dict[str, Any]) -> tuple[Tenant, list[str]]:
    t = await make_tenant(suite, limit=10_000)
    return t, await route(suite, t.tenant_id, await _config_id(suite, t.tenant_id), *specs)


async def _records(t: Tenant, want: int) -> list[history_pb2.Interaction]:
    found = await t.interactions(want)
    assert len(found) >= want, f"{len(found)} of {want} records in history"
    return found


def _metric(suite: Suite, name: str, labels: str) -> float:
    url = f"http://127.0.0.1:{suite.metrics_ports['llm']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(f"{name}{{{labels}}} "):
                return float(line.split()[-1])
    return 0.0


async def test_one_of_two_deployments_down_200_chats_no_client_error(
    rsuite: Suite, fakes: dict[str, Fake]
) -> None:
    t, (down, healthy) = await routed_tenant(
        rsuite, {"base_url": fakes["down"].url}, {"base_url": fakes["healthy"].url}
    )
    before = fakes["healthy"].calls()
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with gate:
            return (await t.chat(f"hello {i}")).content

    answers = await asyncio.gather(*(one(i) for i in range(200)))
    assert answers == [f"Echo: hello {i}" for i in range(200)]
    assert fakes["healthy"].calls() - before == 200
    assert await t.used() == 200
    records = await _records(t, 200)
    assert all(r.status == history_pb2.INTERACTION_STATUS_OK for r in records)
    assert {r.metadata.deployment_id for r in records} == {healthy}
    retried = [r for r in records if len(r.metadata.attempts) > 1]
    assert retried, "no call met the down deployment"
    for r in retried:
        first = r.metadata.attempts[0]
        assert (first.deployment_id, first.status) == (down, "PROVIDER_UNAVAILABLE")
    # Its circuit opened: far fewer than half of the calls went to it.
    assert len(retried) < 40


async def test_all_down_is_unavailable_uncharged_with_each_attempt_recorded(
    rsuite: Suite, fakes: dict[str, Fake]
) -> None:
    t, ids = await routed_tenant(
        rsuite,
        {"base_url": fakes["down"].url, "priority": 0},
        {"base_url": fakes["slow"].url, "priority": 1, "attempt_timeout_ms": 300},
        {"base_url": fakes["failing"].url, "priority": 2},
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await t.chat("anyone there?")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await t.used() == 0
    [record] = await _records(t, 1)
    assert record.status == history_pb2.INTERACTION_STATUS_ERROR
    assert record.metadata.deployment_id == ""
    attempts = [(a.deployment_id, a.status, a.http_status) for a in record.metadata.attempts]
    assert attempts == [
        (ids[0], "PROVIDER_UNAVAILABLE", 0),
        (ids[1], "PROVIDER_TIMEOUT", 0),
        (ids[2], "PROVIDER_ERROR", 503),
    ]
    assert 250 <= record.metadata.attempts[1].latency_ms < 1000  # its own timeout, not 3 s


async def test_a_breaker_opens_under_failures_and_closes_after_recovery(
    rsuite: Suite, fakes: dict[str, Fake]
) -> None:
    flaky = fakes["flaky"]
    flaky.control(fail_status=503)
    t, (flaky_id, _) = await routed_tenant(
        rsuite,
        {"base_url": flaky.url, "priority": 0},
        {"base_url": fakes["healthy"].url, "priority": 1},
    )
    start = flaky.calls()
    for i in range(10):
        assert (await t.chat(f"q{i}")).content == f"Echo: q{i}"
    assert flaky.calls() - start == 3  # opened after 3 failures in a row, then skipped
    assert _metric(rsuite, "llm_circuit_breakers", 'state="open"') >= 1
    flaky.control(fail_status=0)
    await asyncio.sleep(1.2)  # the cooldown: the next call is its probe
    for i in range(5):
        assert (await t.chat(f"r{i}")).content == f"Echo: r{i}"
    assert flaky.calls() - start == 3 + 5  # the probe closed it: it serves again
    records = await _records(t, 15)
    last = max(records, key=lambda r: r.timestamp.ToDatetime())
    assert last.metadata.deployment_id == flaky_id
    # Each transition is a system event in logs_sistema (written by llm through history).
    assert await _circuit_events(rsuite, flaky_id) >= {"circuit_open", "circuit_closed"}


async def _circuit_events(suite: Suite, deployment_id: str) -> set[str]:
    hist = history_pb2_grpc.HistoryServiceStub(suite.channel("history"))
    deadline = asyncio.get_running_loop().time() + 20
    seen: set[str] = set()
    while not {"circuit_open", "circuit_closed"} <= seen:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
        seen, token = set(), ""
        while True:
            reply = await hist.ListSystemEvents(
                apb.ListSystemEventsRequest(service="llm", page_size=200, page_token=token),
                metadata=bearer(suite.admin_key),
                timeout=10,
            )
            for e in reply.events:
                if e.details.fields["deployment_id"].string_value == deployment_id:
                    seen.add(e.event)
            token = reply.next_page_token
            if not token:
                break
    return seen


async def test_a_provider_400_is_not_retried(rsuite: Suite, fakes: dict[str, Fake]) -> None:
    a, b = fakes["healthy"], fakes["spare"]
    t, _ = await routed_tenant(rsuite, {"base_url": a.url}, {"base_url": b.url})
    before = a.calls() + b.calls()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await t.chat("[[fail:400]] bad request")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert a.calls() + b.calls() - before == 1
    assert await t.used() == 0
    [record] = await _records(t, 1)
    assert [a.http_status for a in record.metadata.attempts] == [400]


async def test_the_fallback_model_answers_when_the_first_models_deployments_all_fail(
    rsuite: Suite, fakes: dict[str, Fake]
) -> None:
    t, _ = await routed_tenant(
        rsuite, {"base_url": fakes["down"].url}, {"base_url": fakes["failing"].url}
    )
    idn, md = _idn(rsuite), bearer(rsuite.admin_key)
    spare = f"{t.model}-spare"
    model = await idn.CreateModel(
        ipb.CreateModelRequest(
            model=ipb.Model(
                tenant_id=t.tenant_id,
                name=spare,
                provider="fake",
                access_type=ipb.ACCESS_TYPE_CLOUD,
            )
        ),
        metadata=md,
    )
    config = await idn.CreateModelConfig(
        ipb.CreateModelConfigRequest(
            config=ipb.ModelConfig(tenant_id=t.tenant_id, model_id=model.model.model_id)
        ),
        metadata=md,
    )
    [spare_id] = await route(
        rsuite, t.tenant_id, config.config.config_id, {"base_url": fakes["spare"].url}
    )
    first = await _config_id(rsuite, t.tenant_id, (await _model_id(rsuite, t)))
    await idn.UpdateModelConfig(
        ipb.UpdateModelConfigRequest(
            config=ipb.ModelConfig(
                tenant_id=t.tenant_id, config_id=first, fallback_models=["nope", spare]
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["fallback_models"]),
        ),
        metadata=md,
    )
    await asyncio.sleep(1.2)
    answer = await t.chat("are you there?")
    assert answer.content == "Echo: are you there?"
    assert await t.used() == 1
    [record] = await _records(t, 1)
    assert record.model_name == t.model  # what was asked for
    assert record.metadata.answered_model == spare
    assert record.metadata.deployment_id == spare_id
    assert [a.model for a in record.metadata.attempts][-1] == spare


async def _model_id(suite: Suite, t: Tenant) -> str:
    reply = await _idn(suite).ListModels(
        ipb.ListModelsRequest(tenant_id=t.tenant_id), metadata=bearer(suite.admin_key)
    )
    return next(m.model_id for m in reply.models if m.name == t.model)


async def test_a_stream_that_fails_after_its_first_delta_is_not_retried(
    rsuite: Suite, fakes: dict[str, Fake]
) -> None:
    breaks, healthy = fakes["breaks"], fakes["healthy"]
    breaks.control(stream_fail_after=1)
    t, _ = await routed_tenant(
        rsuite, {"base_url": breaks.url, "priority": 0}, {"base_url": healthy.url, "priority": 1}
    )
    before = healthy.calls(), breaks.calls()
    req = llm_pb2.ChatStreamRequest(
        model=t.model,
        messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content="one two three")],
    )
    got: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for event in t.llm.ChatStream(req, metadata=bearer(t.user_key), timeout=10):
            got.append(event.delta)
    assert got, "no delta reached the caller"
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (healthy.calls(), breaks.calls()) == (before[0], before[1] + 1)
    assert await t.used() == 0
    [record] = await _records(t, 1)
    assert record.status == history_pb2.INTERACTION_STATUS_ERROR
    assert len(record.metadata.attempts) == 1
    # Before its first delta a stream is retried: a failing first deployment is passed over.
    breaks.control(stream_fail_after=0, fail_status=503)
    events = [e async for e in t.llm.ChatStream(req, metadata=bearer(t.user_key), timeout=10)]
    assert events[-1].done.content == "Echo: one two three"
    assert healthy.calls() == before[0] + 1
    breaks.control(fail_status=0)
