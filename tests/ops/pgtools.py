"""Real PostgreSQL tooling for the ops tests: PgBouncer in front of the local server, and
small throwaway clusters (a primary and its streaming replica) on free ports. Binaries come
from Debian's packages (scripts/ops_tools.sh installs them); as root they run as the
unprivileged ``postgres`` user, like scripts/pg.sh runs the local server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import PG_PORT, ROOT, free_port

WORK = Path(os.environ.get("LOCAL_DIR", ROOT / ".local")) / "ops"


def pg_bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise FileNotFoundError(f"{name}: install Debian's postgresql (scripts/pg.sh start)")


def as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def workdir(kind: str) -> Path:
    """A fresh folder the server's user owns (removed by the caller's ``shutil.rmtree``)."""
    path = WORK / f"{kind}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(WORK, "postgres", "postgres")
        shutil.chown(path, "postgres", "postgres")
    return path


def run(argv: list[str], timeout: float = 60.0) -> str:
    done = subprocess.run(as_owner(argv), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@contextlib.contextmanager
def pgbouncer(upstream_port: int = PG_PORT, pool_size: int = 20) -> Iterator[int]:
    """PgBouncer in transaction pooling mode in front of ``upstream_port``; yields its port."""
    folder = workdir("pgbouncer")
    port = free_port()
    (folder / "users.txt").write_text('"gateway" ""\n"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host=127.0.0.1 port={upstream_port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options
admin_users = postgres
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    if os.geteuid() == 0:
        for f in folder.iterdir():
            shutil.chown(f, "postgres", "postgres")
    proc = subprocess.Popen(
        as_owner(
            [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(folder / "pgbouncer.ini")]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Cluster:
    """A PostgreSQL server of its own (data folder, port), for tests that stop or promote it."""

    data: Path
    port: int

    @classmethod
    def init(cls, folder: Path) -> Cluster:
        data = folder / f"primary-{uuid.uuid4().hex[:4]}"
        run([pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"])
        return cls(data, free_port())

    def replica(self, folder: Path) -> Cluster:
        """A streaming replica of this (running) server, not started."""
        data = folder / f"replica-{uuid.uuid4().hex[:4]}"
        source = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        copy = ["-D", str(data), "-R", "-X", "stream", "-c", "fast"]
        run([pg_bin("pg_basebackup"), *source, *copy], timeout=120)
        return Cluster(data, free_port())

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=100 -c shared_buffers=32MB -c wal_level=replica"
        )
        log = f"{self.data}/log"
        run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", log, "-o", opts, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def promote(self) -> None:
        run([pg_bin("pg_ctl"), "-D", str(self.data), "-w", "promote"])

    def psql(self, sql: str, db: str = "postgres") -> str:
        argv = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        return run([*argv, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]).strip()

    def create_database(self, name: str) -> str:
        """A database owned by a ``gateway`` login role; returns its libpq DSN."""
        if self.psql("select count(*) from pg_roles where rolname='gateway'") == "0":
            self.psql("create role gateway login password 'gateway'")
        self.psql(f"create database {name} owner gateway")
        return f"postgresql://gateway:gateway@127.0.0.1:{self.port}/{name}"

    def ensure_stopped(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")


@contextlib.contextmanager
def scratch(kind: str) -> Iterator[Path]:
    folder = workdir(kind)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
