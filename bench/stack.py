"""The benchmark's own stack: fresh databases, the four services, the provider fake, the
echo baseline and the HTTP peers (LiteLLM proxy, Portkey gateway), each on a free port,
logs in the results folder."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devtools import launch
from devtools.launch import Process, free_port
from gateway_common import service_auth

ROOT = Path(__file__).resolve().parent.parent
PG_PORT = launch.local_pg_port()
PG_ADMIN_DSN = launch.local_pg_admin_dsn("BENCH_PG_DSN")
MONGO_URL = launch.local_mongo_url("BENCH_MONGO_URL")
SERVICES = ("identity", "quota", "history", "llm")
# Env of the shell that must not leak into the bench stack (e.g. a `make run` setup).
_PREFIXES = ("IDENTITY_", "QUOTA_", "HISTORY_", "LLM_", "GATEWAY_")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env.pop("MONGO_URL", None)
    return env


Proc = Process


@dataclass
class Stack:
    tag: str
    logs: Path
    # Each service's own credential (x-service-token); every service accepts all four by
    # digest, and each internal RPC still answers only the service it names.
    service_tokens: dict[str, str] = field(
        default_factory=lambda: {s: f"bench-{s}-" + secrets.token_hex(16) for s in SERVICES}
    )
    encryption_key: str = field(
        default_factory=lambda: "bench:" + base64.b64encode(secrets.token_bytes(32)).decode()
    )
    litellm_key: str = field(default_factory=lambda: "sk-bench-" + secrets.token_hex(24))
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)  # identity/quota -> db name
    mongo_db: str = ""
    log_level: str = "WARNING"

    def __post_init__(self) -> None:
        for name in (*SERVICES, "fake", "fake_flaky", "echo", "litellm", "portkey", "llm_http"):
            self.ports[name] = free_port()
        for svc in SERVICES:
            self.ports[f"{svc}_metrics"] = free_port()
        self.mongo_db = f"bench_history_{self.tag}"

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    # -- databases -------------------------------------------------------------------
    def dsn(self, db: str) -> str:
        return launch.database_dsn(PG_ADMIN_DSN, self.databases[db])

    def sqlalchemy_url(self, db: str) -> str:
        return launch.sqlalchemy_url(self.dsn(db))

    def create_databases(self) -> None:
        names = {db: f"bench_{db}_{self.tag}" for db in ("identity", "quota")}
        launch.create_pg_databases(PG_ADMIN_DSN, names.values())
        self.databases.update(names)

    def drop_databases(self) -> None:
        launch.drop_pg_databases(PG_ADMIN_DSN, self.databases.values())
        launch.drop_mongo_databases(MONGO_URL, [self.mongo_db])

    # -- processes -------------------------------------------------------------------
    def metrics_url(self, svc: str) -> str:
        return f"http://127.0.0.1:{self.ports[svc + '_metrics']}/metrics"

    def service_env(self, svc: str) -> dict[str, str]:
        up = svc.upper()
        env = clean_env()
        env.update(
            {
                "GATEWAY_SERVICE_TOKEN": self.service_tokens[svc],
                "GATEWAY_ACCEPTED_SERVICE_TOKENS": ",".join(
                    f"{name}={service_auth.digest(token)}"
                    for name, token in self.service_tokens.items()
                ),
                "GATEWAY_EGRESS_ALLOW": "127.0.0.0/8,::1/128",  # the fake provider, on loopback
                f"{up}_HOST": "127.0.0.1",
                f"{up}_PORT": str(self.ports[svc]),
                f"{up}_METRICS_PORT": str(self.ports[f"{svc}_metrics"]),
                f"{up}_LOG_LEVEL": self.log_level,
            }
        )
        identity = self.target("identity")
        if svc == "identity":
            env["IDENTITY_DATABASE_URL"] = self.sqlalchemy_url("identity")
            env["IDENTITY_ENCRYPTION_KEYS"] = self.encryption_key
        elif svc == "quota":
            env["QUOTA_DATABASE_URL"] = self.sqlalchemy_url("quota")
            env["QUOTA_IDENTITY_TARGET"] = identity
            env["QUOTA_HISTORY_TARGET"] = self.target("history")  # the outbox's sink
        elif svc == "history":
            env.update(
                MONGO_URL=MONGO_URL,
                HISTORY_DATABASE=self.mongo_db,
                HISTORY_IDENTITY_TARGET=identity,
            )
        elif svc == "llm":
            env.update(
                LLM_IDENTITY_TARGET=identity,
                LLM_QUOTA_TARGET=self.target("quota"),
                LLM_HISTORY_TARGET=self.target("history"),
                LLM_HTTP_PORT=str(self.ports["llm_http"]),  # the OpenAI-compatible door
                # Above the scenarios' concurrency (64), below chat_overload's (256): the
                # overload scenario shows the excess shed with UNAVAILABLE and p99 held.
                GATEWAY_MAX_CONCURRENT_RPCS=os.environ.get("BENCH_LLM_MAX_CONCURRENT_RPCS", "128"),
            )
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> Proc:
        log = self.logs / f"{name}.log"
        proc = Process.spawn(name, argv, env, cwd, log, self.ports.get(name, 0))
        self.procs[name] = proc
        return proc

    def migrate(self, svc: str) -> str:
        """Run ``python -m <svc>_svc.migrate`` when the service has one; '' or the error."""
        if not (ROOT / f"{svc}_svc" / "migrate.py").exists():
            return ""
        done = subprocess.run(
            [sys.executable, "-m", f"{svc}_svc.migrate"],
            env=self.service_env(svc),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            return f"{svc} migrate failed: {(done.stderr or done.stdout).strip()[-500:]}"
        return ""

    def start_service(self, svc: str) -> Proc:
        # BENCH_<SVC>_ARGV replaces `python -m <svc>_svc` (e.g. to try a patched entry point).
        custom = os.environ.get(f"BENCH_{svc.upper()}_ARGV", "")
        argv = shlex.split(custom) if custom else [sys.executable, "-m", f"{svc}_svc"]
        return self.spawn(svc, argv, self.service_env(svc))

    def start_fake(self) -> Proc:
        argv = [sys.executable, "-m", "devtools.fake_provider"]
        argv += ["--port", str(self.ports["fake"]), "--latency-ms", "0"]
        return self.spawn("fake", argv, clean_env())

    def start_fake_flaky(self) -> Proc:
        """A second provider that fails every other call (503): chat_routed's bad half."""
        argv = [sys.executable, "-m", "devtools.fake_provider"]
        argv += ["--port", str(self.ports["fake_flaky"]), "--fail-every", "2"]
        return self.spawn("fake_flaky", argv, clean_env())

    def start_echo(self) -> Proc:
        argv = [sys.executable, "-m", "bench.echo_server", "--port", str(self.ports["echo"])]
        return self.spawn("echo", argv, clean_env())

    def start_litellm(self, bench_venv: Path) -> Proc:
        config = self.logs.parent / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            "  - model_name: bench-model\n"
            "    litellm_params:\n"
            "      model: openai/bench-model\n"
            f"      api_base: http://127.0.0.1:{self.ports['fake']}/v1\n"
            "      api_key: fake-provider-key\n"
            "litellm_settings:\n"
            "  telemetry: false\n"
        )
        env = clean_env()
        env.update(
            LITELLM_MASTER_KEY=self.litellm_key,
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_LOG="ERROR",
        )
        env.pop("DATABASE_URL", None)
        argv = [str(bench_venv / "bin" / "litellm"), "--config", str(config)]
        # LiteLLM's documented production setting: one worker per core.
        workers = str(os.cpu_count() or 1)
        argv += ["--host", "127.0.0.1", "--port", str(self.ports["litellm"])]
        argv += ["--num_workers", workers]
        return self.spawn("litellm", argv, env, cwd=self.logs.parent)

    def start_portkey(self, entry: Path) -> Proc:
        """The Portkey gateway (``build/start-server.js`` of npm @portkey-ai/gateway): a
        stateless Node proxy; each request names the provider and host in its headers."""
        env = clean_env()
        env["NODE_ENV"] = "production"
        argv = ["node", str(entry), f"--port={self.ports['portkey']}", "--headless"]
        return self.spawn("portkey", argv, env, cwd=self.logs.parent)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


async def wait_grpc(proc: Proc, target: str, timeout: float = 90.0) -> str:
    """'' once the server's health says SERVING, else why not."""
    return await launch.serving_error(target, timeout, proc)


async def wait_http(proc: Proc, url: str, timeout: float = 120.0) -> str:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not proc.alive():
                return f"{proc.name} exited ({proc.popen.returncode}): {proc.tail()}"
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return ""
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.5)
    return f"{proc.name} not answering {url} after {timeout:.0f}s: {proc.tail()}"


def new_tag() -> str:
    return time.strftime("%Y%m%d_%H%M%S") + "_" + uuid.uuid4().hex[:4]
