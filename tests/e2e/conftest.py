"""The whole suite as separate processes: the fake provider and the four services on free
ports, fresh PostgreSQL databases (identity, quota), a fresh FerretDB database (history),
and a platform-admin key made by identity's own tool."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support import (
    MONGO_URL,
    ROOT,
    ServiceProcess,
    create_admin_key,
    free_port,
    fresh_mongo_database,
    fresh_pg_database,
    service_env,
    sqlalchemy_url,
    wait_serving,
)


@dataclass
class Suite:
    env: dict[str, str]
    targets: dict[str, str]
    provider_url: str  # OpenAI-compatible base URL of the fake provider
    admin_key: str
    log_dir: Path
    metrics_ports: dict[str, int] = field(default_factory=dict)
    http_url: str = ""  # llm's OpenAI-compatible HTTP door (its /v1 is the SDK's base URL)
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            # Reconnect within a second after a service restarts (tests kill and restart).
            options = [
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ]
            self.channels[name] = grpc.aio.insecure_channel(self.targets[name], options=options)
        return self.channels[name]

    def provider_stats(self) -> dict[str, Any]:
        import json

        base = self.provider_url.removesuffix("/v1")
        with urllib.request.urlopen(f"{base}/_stats", timeout=5) as r:
            return dict(json.load(r))

    def start(self, name: str) -> None:
        env = {**service_env(name), **self.env}  # each service with its own credential
        proc = ServiceProcess(f"{name}_svc", env, self.log_dir).start()
        self.procs[name] = proc

    async def restart(self, name: str) -> None:
        self.start(name)
        await wait_serving(self.targets[name], timeout=60)

    def stop(self, name: str) -> None:
        self.procs[name].stop()

    def kill(self, name: str) -> None:
        self.procs[name].kill()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log()[-4000:]}" for n, p in self.procs.items())


def _wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


@contextlib.contextmanager
def suite_environment(overrides: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Fresh databases, free ports and the environment of the four services."""
    with contextlib.ExitStack() as stack:
        identity_dsn = stack.enter_context(fresh_pg_database("e2e_identity"))
        quota_dsn = stack.enter_context(fresh_pg_database("e2e_quota"))
        ports = {
            n: free_port() for n in ("identity", "quota", "history", "llm", "provider", "http")
        }
        targets = {n: f"127.0.0.1:{ports[n]}" for n in ("identity", "quota", "history", "llm")}
        env = {
            "IDENTITY_PORT": str(ports["identity"]),
            "IDENTITY_DATABASE_URL": sqlalchemy_url(identity_dsn),
            "IDENTITY_AUTH_CACHE_TTL_SECONDS": "0.5",
            "IDENTITY_RESOLVE_CACHE_TTL_SECONDS": "0.5",
            "IDENTITY_HISTORY_TARGET": targets["history"],
            "IDENTITY_RELAY_IDLE_SECONDS": "0.05",
            "IDENTITY_RELAY_BACKOFF_SECONDS": "0.1",
            "IDENTITY_RELAY_BACKOFF_MAX_SECONDS": "0.5",
            "LLM_RESOLVE_CACHE_SECONDS": "0.5",
            "QUOTA_PORT": str(ports["quota"]),
            "QUOTA_DATABASE_URL": sqlalchemy_url(quota_dsn),
            "QUOTA_IDENTITY_TARGET": targets["identity"],
            "QUOTA_HISTORY_TARGET": targets["history"],
            "QUOTA_RELAY_IDLE_SECONDS": "0.02",
            "QUOTA_RELAY_BACKOFF_SECONDS": "0.1",
            "QUOTA_RELAY_BACKOFF_MAX_SECONDS": "0.5",
            "HISTORY_PORT": str(ports["history"]),
            "HISTORY_DATABASE": fresh_mongo_database("e2e_history"),
            "HISTORY_IDENTITY_TARGET": targets["identity"],
            "MONGO_URL": MONGO_URL,
            "LLM_PORT": str(ports["llm"]),
            "LLM_IDENTITY_TARGET": targets["identity"],
            "LLM_QUOTA_TARGET": targets["quota"],
            "LLM_HISTORY_TARGET": targets["history"],
            "LLM_AUTH_CACHE_SECONDS": "0.5",
            "LLM_HTTP_PORT": str(ports["http"]),
            "GATEWAY_IDENTITY_TARGET": targets["identity"],
            "GATEWAY_QUOTA_TARGET": targets["quota"],
            "GATEWAY_HISTORY_TARGET": targets["history"],
            "GATEWAY_LLM_TARGET": targets["llm"],
            **(overrides or {}),
        }
        metrics = {n: free_port() for n in ("identity", "quota", "history", "llm")}
        for name, port in metrics.items():
            env[f"{name.upper()}_METRICS_PORT"] = str(port)
            env[f"{name.upper()}_METRICS_HOST"] = "127.0.0.1"
        yield {
            "env": env,
            "targets": targets,
            "ports": ports,
            "metrics": metrics,
            "quota_dsn": quota_dsn,
        }


@pytest.fixture(scope="session")
def e2e_env() -> Iterator[dict[str, Any]]:
    with suite_environment() as env:
        yield env


@contextlib.asynccontextmanager
async def running_suite(e2e_env: dict[str, Any], log_dir: Path) -> AsyncIterator[Suite]:
    """The fake provider and the four services as processes, and a platform-admin key."""
    env, targets = e2e_env["env"], e2e_env["targets"]
    port = e2e_env["ports"]["provider"]
    provider = subprocess.Popen(  # noqa: ASYNC220 - session setup
        [sys.executable, "-m", "devtools.fake_provider", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(log_dir / "fake-provider.log").open("ab"),
    )
    s = Suite(env, targets, f"http://127.0.0.1:{port}/v1", "", log_dir)
    s.metrics_ports = e2e_env["metrics"]
    s.http_url = f"http://127.0.0.1:{e2e_env['ports']['http']}"
    try:
        _wait_http(f"http://127.0.0.1:{port}/health")
        s.start("identity")
        await wait_serving(targets["identity"], timeout=60)
        s.admin_key = create_admin_key(env, "e2e")
        for name in ("quota", "history", "llm"):
            s.start(name)
        for name in ("quota", "history", "llm"):
            await wait_serving(targets[name], timeout=60)
        await asyncio.to_thread(_wait_http, f"{s.http_url}/healthz")
        yield s
    except BaseException:
        print(s.logs(), file=sys.stderr)
        raise
    finally:
        for ch in s.channels.values():
            await ch.close()
        for proc in s.procs.values():
            proc.stop()
        provider.terminate()
        provider.wait(10)


@pytest.fixture(scope="session")
async def suite(e2e_env: dict[str, Any], log_dir: Path) -> AsyncIterator[Suite]:
    async with running_suite(e2e_env, log_dir) as s:
        yield s
