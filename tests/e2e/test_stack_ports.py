"""`make run`'s steps honour the port and URL variables (hardening finding 8): a second stack
on other ports and databases starts, seeds into its own databases, and prints commands that
reach it, never the default stack's."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools import launch
from tests.support import MONGO_URL, ROOT, fresh_pg_database, sqlalchemy_url

SERVICES = ("IDENTITY", "QUOTA", "HISTORY", "LLM")


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_pg_database("stack_id") as identity, fresh_pg_database("stack_quota") as quota:
        env = {
            **os.environ,
            "LOCAL_DIR": str(tmp_path),  # its own pid files, logs and demo.json
            "IDENTITY_DATABASE_URL": sqlalchemy_url(identity),
            "QUOTA_DATABASE_URL": sqlalchemy_url(quota),
            "MONGO_URL": MONGO_URL,
            "HISTORY_DATABASE": f"t_stack_{tmp_path.name[-10:]}",
        }
        for name in SERVICES:
            env[f"{name}_PORT"] = str(launch.free_port())
            env[f"{name}_METRICS_PORT"] = str(launch.free_port())
            env.pop(f"GATEWAY_{name}_TARGET", None)
        env.pop("FAKE_PROVIDER_URL", None)
        try:
            yield env | {"_identity_dsn": identity, "_quota_dsn": quota}
        finally:
            subprocess.run(["scripts/proc.sh", "stop-all"], cwd=ROOT, env=env, check=False)
            launch.drop_mongo_databases(MONGO_URL, [env["HISTORY_DATABASE"]])


def stack(env: dict[str, str], step: str) -> str:
    done = subprocess.run(
        ["scripts/stack.sh", step], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_stack_on_other_ports_seeds_its_own_databases_and_prints_its_ports(
    stack_env: dict[str, str],
):
    env = stack_env
    stack(env, "services-up")
    out = stack(env, "seed")
    status = stack(env, "status")
    for name in SERVICES:
        assert f"127.0.0.1:{env[name + '_PORT']}" in status
    # The seed is in this stack's identity and quota databases.
    state = json.loads((Path(env["LOCAL_DIR"]) / "demo.json").read_text())
    with psycopg.connect(env["_identity_dsn"]) as conn:
        tenants = conn.execute(
            "SELECT distribuidor_id::text, nome_distribuidor FROM distribuidor"
        ).fetchall()
        keys = conn.execute("SELECT count(*) FROM chave_acesso").fetchone()
        urls = conn.execute("SELECT url_base FROM implantacao_llm").fetchall()
    assert tenants == [(state["tenant_id"], "Demo Tenant")]
    assert keys is not None and keys[0] == 2  # the seed's platform admin and the user's key
    provider_port = env.get("FAKE_PROVIDER_PORT", "18080")
    assert urls == [(f"http://127.0.0.1:{provider_port}/v1",)]
    with psycopg.connect(env["_quota_dsn"]) as conn:
        subscribed = conn.execute("SELECT count(*) FROM assinatura_plano").fetchone()
    assert subscribed is not None and subscribed[0] == 1
    # The printed chat command names this stack's llm port, and it chats through this stack.
    line = next(ln.strip() for ln in out.splitlines() if "gatewayctl chat" in ln)
    assert f"GATEWAY_LLM_TARGET=127.0.0.1:{env['LLM_PORT']} " in line
    argv = shlex.split(line)
    assignments = dict(a.split("=", 1) for a in argv if re.match(r"^[A-Z_]+=", a))
    command = [a for a in argv if not re.match(r"^[A-Z_]+=", a)]
    plain = {k: v for k, v in env.items() if not k.startswith(("LLM_PORT", "GATEWAY_LLM"))}
    chat = subprocess.run(
        command, cwd=ROOT, env=plain | assignments, capture_output=True, text=True, timeout=60
    )
    assert chat.returncode == 0, chat.stdout + chat.stderr
    # A second seed is a replay: nothing new in this stack's databases.
    stack(env, "seed")
    with psycopg.connect(env["_identity_dsn"]) as conn:
        again = conn.execute("SELECT count(*) FROM distribuidor").fetchone()
    assert again is not None and again[0] == 1
