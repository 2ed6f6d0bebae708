"""Starting the suite's pieces locally, one way for the tests and the benchmark: free ports,
fresh databases, processes with their log kept, waiting for SERVING. Dev only."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg


def local_pg_port() -> int:
    return int(os.environ.get("PG_PORT", "55432"))


def local_pg_admin_dsn(override_var: str) -> str:
    """The local stack's PostgreSQL (``PG_PORT``) as the gateway user, unless ``override_var``
    names another server."""
    default = f"postgresql://gateway:gateway@127.0.0.1:{local_pg_port()}/postgres"
    return os.environ.get(override_var, default)


def local_mongo_url(override_var: str) -> str:
    """The local stack's FerretDB (``FERRETDB_PORT``), unless ``override_var`` says otherwise."""
    default = f"mongodb://127.0.0.1:{os.environ.get('FERRETDB_PORT', '27027')}/"
    return os.environ.get(override_var, default)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def database_dsn(admin_dsn: str, name: str) -> str:
    """The DSN of database ``name`` on the server of ``admin_dsn``."""
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def create_pg_databases(admin_dsn: str, names: Iterable[str]) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_databases(admin_dsn: str, names: Iterable[str]) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_mongo_databases(url: str, names: Iterable[str]) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]]
    with MongoClient(url, serverSelectionTimeoutMS=3000) as client:
        for name in names:
            client.drop_database(name)


@dataclass
class Process:
    """A child process whose stdout and stderr go to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @classmethod
    def spawn(
        cls, name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path, port: int = 0
    ) -> Process:
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return cls(name, popen, log, port)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive():
            self.popen.terminate()
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()


async def serving_error(
    target: str, timeout: float, proc: Process | None = None, service: str = ""
) -> str:
    """'' once ``target``'s gRPC health (of ``service``, '' = the server) says SERVING,
    else why not."""
    from gateway_common.healthcheck import check

    deadline = time.monotonic() + timeout
    state = ""
    name = proc.name if proc is not None else target
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return f"{name} exited ({proc.popen.returncode}): {proc.tail()}"
        state = await check(target, service, timeout=1.0)
        if state == "SERVING":
            return ""
        await asyncio.sleep(0.2)
    tail = f": {proc.tail()}" if proc is not None else ""
    return f"{name} not SERVING after {timeout:.0f}s (last: {state}){tail}"
