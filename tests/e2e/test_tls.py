"""The suite with mutual TLS on: services talk over mTLS, a client without a certificate
(or with one from another CA, or in plaintext) is refused."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.suite_env import MODULES, suite_env
from tests.support import (
    ServiceProcess,
    free_port,
    fresh_mongo_database,
    fresh_pg_database,
    wait_serving,
)
from tests.tls_certs import Pair, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> tuple[Pair, Pair, Pair]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_suite(pki, log_dir) -> Iterator[dict[str, int]]:
    """The four services over mTLS; the key ``identity_dsn`` holds identity's database."""
    ca, service, _ = pki
    tls = {
        "GATEWAY_TLS_CERT_FILE": str(service.cert),
        "GATEWAY_TLS_KEY_FILE": str(service.key),
        "GATEWAY_TLS_CA_FILE": str(ca.cert),
        "GATEWAY_TLS_REQUIRE_CLIENT_CERT": "true",
    }
    ports = {m: free_port() for m in MODULES}
    with fresh_pg_database("tid") as identity_dsn, fresh_pg_database("tquota") as quota_dsn:
        envs = suite_env(
            ports,
            identity_dsn,
            quota_dsn,
            fresh_mongo_database("thist"),
            tls,
        )
        procs = [ServiceProcess(m, envs[m], log_dir).start() for m in MODULES]
        try:
            yield {**ports, "identity_dsn": identity_dsn}  # type: ignore[dict-item]
        finally:
            for proc in procs:
                proc.stop()


def creds(ca: Pair, client: Pair | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        ca.cert.read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )


async def health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    return reply.status


async def test_services_serve_over_mutual_tls(tls_suite, pki, monkeypatch):
    ca, service, _ = pki
    # The health probe reads the same GATEWAY_TLS_* variables the services do.
    monkeypatch.setenv("GATEWAY_TLS_CA_FILE", str(ca.cert))
    monkeypatch.setenv("GATEWAY_TLS_CERT_FILE", str(service.cert))
    monkeypatch.setenv("GATEWAY_TLS_KEY_FILE", str(service.key))
    for module in MODULES:
        port = tls_suite[module]
        await wait_serving(f"127.0.0.1:{port}", timeout=60), module
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds(ca, service)) as channel:
            assert await health(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("client", ["none", "stranger", "plaintext"])
async def test_client_without_a_valid_certificate_is_refused(tls_suite, pki, client):
    ca, _, stranger = pki
    target = f"127.0.0.1:{tls_suite['llm_svc']}"
    if client == "plaintext":
        channel = grpc.aio.insecure_channel(target)
    else:
        channel = grpc.aio.secure_channel(
            target, creds(ca, stranger if client == "stranger" else None)
        )
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await health(channel)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_chat_crosses_the_whole_suite_over_mutual_tls(tls_suite, pki, tmp_path):
    """llm reaches identity, quota and history over mTLS with the internal credential."""
    from aiohttp import web

    from devtools.fake_provider import FakeProvider
    from identity_svc.create_admin_key import create_key
    from tests.e2e.conftest import Suite
    from tests.e2e.world import make_tenant
    from tests.support import sqlalchemy_url

    ca, service, _ = pki
    for module in MODULES:
        await wait_serving_tls(f"127.0.0.1:{tls_suite[module]}", ca, service)
    provider = FakeProvider()
    runner = web.AppRunner(provider.app())
    await runner.setup()
    provider_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", provider_port).start()
    _, admin_key = await create_key(sqlalchemy_url(tls_suite["identity_dsn"]), "tls")
    names = {"identity": "identity_svc", "quota": "quota_svc", "history": "history_svc"}
    names["llm"] = "llm_svc"
    targets = {n: f"127.0.0.1:{tls_suite[m]}" for n, m in names.items()}
    url = f"http://127.0.0.1:{provider_port}/v1"
    suite = Suite({}, targets, url, admin_key, tmp_path)
    for name, target in targets.items():
        suite.channels[name] = grpc.aio.secure_channel(target, creds(ca, service))
    try:
        tenant = await make_tenant(suite)
        reply = await tenant.chat("over mutual TLS")
        assert reply.content == "Echo: over mutual TLS"
        assert await tenant.used() == 1
        [stored] = await tenant.interactions(want=1)
        assert stored.interaction_id == reply.interaction_id
    finally:
        for channel in suite.channels.values():
            await channel.close()
        await runner.cleanup()


async def wait_serving_tls(target: str, ca: Pair, client: Pair, timeout: float = 60.0) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with grpc.aio.secure_channel(target, creds(ca, client)) as channel:
                if await health(channel) == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.aio.AioRpcError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(target)
        await asyncio.sleep(0.2)
