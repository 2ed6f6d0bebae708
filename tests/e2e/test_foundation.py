"""The four services as separate processes on the real stores: health, reflection, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.suite_env import suite_env
from tests.support import (
    ServiceProcess,
    free_port,
    fresh_mongo_database,
    fresh_pg_database,
    wait_serving,
)

EXPECTED = {
    "identity_svc": {
        "llmgw.identity.v1.IdentityService",
        "llmgw.identity.v1.IdentityInternalService",
    },
    "quota_svc": {"llmgw.quota.v1.QuotaService", "llmgw.quota.v1.QuotaInternalService"},
    "history_svc": {"llmgw.history.v1.HistoryService", "llmgw.history.v1.HistoryInternalService"},
    "llm_svc": {"llmgw.llm.v1.LlmService"},
}


@pytest.fixture(scope="module")
def suite(log_dir) -> Iterator[dict[str, tuple[ServiceProcess, int]]]:
    ports = {m: free_port() for m in EXPECTED}
    with fresh_pg_database("fid") as identity_dsn, fresh_pg_database("fquota") as quota_dsn:
        envs = suite_env(ports, identity_dsn, quota_dsn, fresh_mongo_database("fhist"))
        procs = {m: (ServiceProcess(m, envs[m], log_dir).start(), ports[m]) for m in EXPECTED}
        try:
            yield procs
        finally:
            for proc, _ in procs.values():
                proc.stop()


async def list_services(target: str) -> set[str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            return {s.name for s in reply.list_services_response.service}
    return set()


@pytest.mark.parametrize("module", sorted(EXPECTED))
async def test_service_serves_health_and_reflection(suite, module):
    proc, port = suite[module]
    target = f"127.0.0.1:{port}"
    try:
        await wait_serving(target, timeout=60)
    except TimeoutError:
        pytest.fail(f"{module} not serving; log:\n{proc.log()[-3000:]}")
    listed = await list_services(target)
    assert EXPECTED[module] <= listed
    assert "grpc.health.v1.Health" in listed


async def test_sigterm_drains_and_exits_cleanly(suite):
    proc, port = suite["llm_svc"]
    await wait_serving(f"127.0.0.1:{port}", timeout=60)
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    code = await asyncio.get_running_loop().run_in_executor(None, proc.proc.wait, 30)
    assert code == 0, proc.log()[-2000:]
    log = proc.log()
    assert "draining" in log and '"stopped"' in log


async def test_reflection_resolves_method_symbols_for_ghz(suite):
    """ghz and grpcurl ask for the file containing `pkg.Service.Method`."""
    _, port = suite["identity_svc"]
    target = f"127.0.0.1:{port}"
    await wait_serving(target, timeout=60)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="llmgw.identity.v1.IdentityService.Authenticate"
        )
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            assert reply.WhichOneof("message_response") == "file_descriptor_response"
            assert reply.file_descriptor_response.file_descriptor_proto
            break
