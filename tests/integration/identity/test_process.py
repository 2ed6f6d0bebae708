"""python -m identity_svc on an empty database: migrates, then serves; the first
platform-admin key comes from the create_admin_key command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc

from llmgw.identity.v1 import identity_pb2 as pb
from llmgw.identity.v1 import identity_pb2_grpc
from tests.support import ServiceProcess, free_port, fresh_pg_database, sqlalchemy_url, wait_serving


async def test_service_process_migrates_and_authenticates(log_dir):
    with fresh_pg_database("identity_proc") as dsn:
        url, port = sqlalchemy_url(dsn), free_port()
        env = {"IDENTITY_DATABASE_URL": url, "IDENTITY_PORT": str(port)}
        proc = ServiceProcess("identity_svc", env, log_dir).start()
        try:
            await wait_serving(f"127.0.0.1:{port}", timeout=30)
            command = [sys.executable, "-m", "identity_svc.create_admin_key", "--name", "first"]
            done = await asyncio.to_thread(
                subprocess.run, command, env={**os.environ, **env}, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            out = done.stdout
            secret = next(x.split()[1] for x in out.splitlines() if x.startswith("api_key"))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = identity_pb2_grpc.IdentityServiceStub(channel)
                reply = await stub.Authenticate(pb.AuthenticateRequest(api_key=secret), timeout=5)
            assert reply.principal.role == pb.ROLE_PLATFORM_ADMIN
        finally:
            assert proc.stop() == 0, proc.log()
