"""The echo baseline: ``python -m bench.echo_server --port N``.

A bare ``grpc.aio`` server (no interceptors, no logging) with server reflection,
answering ``bench.echo.v1.EchoService/Echo`` from bench/protos/echo.proto. Its
requests/s on a machine is the ceiling of a Python gRPC service there; the report
shows every other figure as a ratio of it. The proto is compiled at start-up into
a temporary folder, so no generated code is kept in the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from gateway_common import reflection

PROTO_DIR = Path(__file__).resolve().parent / "protos"
SERVICE = "bench.echo.v1.EchoService"


def compile_proto(out_dir: Path) -> tuple[ModuleType, ModuleType]:
    """Generate echo_pb2 / echo_pb2_grpc into ``out_dir`` and import them."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # dev dependency

    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_DIR / "echo.proto"),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on bench/protos/echo.proto")
    sys.path.insert(0, str(out_dir))
    return importlib.import_module("echo_pb2"), importlib.import_module("echo_pb2_grpc")


async def serve(host: str, port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-echo-") as tmp:
        pb2, pb2_grpc = compile_proto(Path(tmp))

        class Echo(pb2_grpc.EchoServiceServicer):  # type: ignore[name-defined,misc]
            async def Echo(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return pb2.EchoResponse(message=request.message)

        server = grpc.aio.server()
        pb2_grpc.add_EchoServiceServicer_to_server(Echo(), server)
        # Health only so the runner can wait for it; reflection as the services have it
        # (method symbols resolved, which ghz needs).
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        reflection.enable([SERVICE, health.SERVICE_NAME], server)
        bound = server.add_insecure_port(f"{host}:{port}")
        await server.start()
        print(f"echo: serving on {host}:{bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50099)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
