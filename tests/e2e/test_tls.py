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
            log_dir / "spool-tls",
            tls,
        )
        procs = [ServiceProcess(m, envs[m], log_dir).start() for m in MODULES]
        try:
            yield ports
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
    for module, port in tls_suite.items():
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
