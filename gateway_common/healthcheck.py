"""gRPC health probe: ``python -m gateway_common.healthcheck HOST:PORT [--print]``.

Exits 0 when the server answers SERVING for the overall service (""), 1 otherwise.
Used by the Makefile, docker-compose health checks and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway_common.channels import client_credentials
from gateway_common.settings import ServiceSettings


async def check(target: str, service: str = "", timeout: float = 2.0, server_name: str = "") -> str:
    creds = client_credentials(ServiceSettings())  # GATEWAY_TLS_* when the suite runs with TLS
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (
        grpc.aio.insecure_channel(target)
        if creds is None
        else grpc.aio.secure_channel(target, creds, options=options)
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.aio.AioRpcError as err:
            return f"DOWN ({err.code().name})"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--service", default="")
    parser.add_argument("--print", action="store_true", dest="show")
    parser.add_argument("--server-name", default="", help="TLS name to expect (name override)")
    args = parser.parse_args()
    state = asyncio.run(check(args.target, args.service, server_name=args.server_name))
    if args.show:
        print(state)
    sys.exit(0 if state == "SERVING" else 1)


if __name__ == "__main__":
    main()
