"""Test helpers shared by the suites: the local stack's addresses, fresh databases,
in-process gRPC servers and service subprocesses. No mocks of our databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
from pydantic import SecretStr

from devtools import launch
from devtools.launch import free_port as free_port
from devtools.launch import sqlalchemy_url as sqlalchemy_url
from gateway_common import service_auth
from gateway_common.server import GrpcServer, ServiceSpec
from gateway_common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
PG_PORT = launch.local_pg_port()
PG_ADMIN_DSN = launch.local_pg_admin_dsn("TEST_PG_DSN")
MONGO_URL = launch.local_mongo_url("MONGO_URL")
# Each service's own credential in the suites, and the callers every receiver accepts
# (their digests); each internal RPC still allows only the services it names.
SERVICE_TOKENS = {s: f"test-service-token-{s}" for s in service_auth.SERVICES}
ACCEPTED_SERVICE_TOKENS = ",".join(
    f"{s}={service_auth.digest(t)}" for s, t in SERVICE_TOKENS.items()
)


def service_env(service: str) -> dict[str, str]:
    """The credential settings of one service (``"llm"``, ``"quota"``...) as environment."""
    return {
        "GATEWAY_SERVICE_TOKEN": SERVICE_TOKENS[service],
        "GATEWAY_ACCEPTED_SERVICE_TOKENS": ACCEPTED_SERVICE_TOKENS,
    }


def service_fields(service: str) -> dict[str, object]:
    """The same, as a ``model_copy(update=...)`` of a service's settings."""
    return {
        "service_token": SecretStr(SERVICE_TOKENS[service]),
        "accepted_service_tokens": ACCEPTED_SERVICE_TOKENS,
    }


def as_service(service: str) -> tuple[tuple[str, str], ...]:
    """Call metadata presenting ``service``'s own credential."""
    return ((service_auth.SERVICE_TOKEN, SERVICE_TOKENS[service]),)


# A pooler (tests/ops: PgBouncer) in front of the local server: fresh databases are made on
# the server, and their DSNs name the pooler, so a whole suite runs through it.
POOLER_PORT = os.environ.get("TEST_PG_POOLER_PORT", "")


@contextlib.contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the local server; dropped afterwards.
    Yields a libpq DSN (use :func:`sqlalchemy_url` for SQLAlchemy), via the pooler if any."""
    name = f"t_{prefix}_{uuid.uuid4().hex[:10]}"
    launch.create_pg_databases(PG_ADMIN_DSN, [name])
    try:
        dsn = launch.database_dsn(PG_ADMIN_DSN, name)
        yield dsn.replace(f":{PG_PORT}/", f":{POOLER_PORT}/") if POOLER_PORT else dsn
    finally:
        launch.drop_pg_databases(PG_ADMIN_DSN, [name])


CREATED_MONGO_DATABASES: list[str] = []


def fresh_mongo_database(prefix: str) -> str:
    """A database name nobody else uses; dropped at the end of the test session."""
    name = f"t_{prefix}_{uuid.uuid4().hex[:10]}"
    CREATED_MONGO_DATABASES.append(name)
    return name


def drop_mongo_databases() -> None:
    if CREATED_MONGO_DATABASES:
        launch.drop_mongo_databases(MONGO_URL, CREATED_MONGO_DATABASES)
    CREATED_MONGO_DATABASES.clear()


@contextlib.asynccontextmanager
async def running_server(
    settings: ServiceSettings, spec: ServiceSpec
) -> AsyncIterator[tuple[GrpcServer, grpc.aio.Channel]]:
    """An in-process server on a free port and a channel to it (settings.port is ignored)."""
    settings = settings.model_copy(update={"port": 0, "host": "127.0.0.1"})
    if "shutdown_delay_seconds" not in settings.model_fields_set:
        settings = settings.model_copy(update={"shutdown_delay_seconds": 0.0})
    server = GrpcServer(settings, spec)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.stop(grace=0.5)


def create_admin_key(env: dict[str, str], name: str = "tests") -> str:
    """A platform-admin key made by identity's own tool, on ``IDENTITY_DATABASE_URL``."""
    made = subprocess.run(
        [sys.executable, "-m", "identity_svc.create_admin_key", "--name", name],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return next(
        line.split(":", 1)[1].strip()
        for line in made.stdout.splitlines()
        if line.startswith("api_key:")
    )


class ServiceProcess:
    """``python -m <module>`` as a separate process, with its log kept for failures."""

    def __init__(self, module: str, env: dict[str, str], log_dir: Path) -> None:
        self.module = module
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{module}-{uuid.uuid4().hex[:6]}.log"
        self.process: launch.Process | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.popen if self.process is not None else None

    def start(self) -> ServiceProcess:
        argv = [sys.executable, "-m", self.module]
        self.process = launch.Process.spawn(self.module, argv, self.env, ROOT, self.log_path)
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        return self.process.stop(timeout) if self.process is not None else None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or drained."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.process.text() if self.process is not None else ""


async def wait_serving(target: str, timeout: float = 30.0, service: str = "") -> None:
    error = await launch.serving_error(target, timeout, service=service)
    if error:
        raise TimeoutError(error)


class Cable:
    """A TCP proxy to PostgreSQL that the test can unplug and plug back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def plug(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def unplug(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in list(self.links):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self.links.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
