"""A real Prometheus (Debian's package) scrapes the running suite during a short load; then
every dashboard panel's query and every alert's query (its threshold comparison removed)
must evaluate without error and return series. A renamed metric or label, or a typo in a
dashboard, fails here instead of showing an empty panel or an alert that can never fire."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from tests.e2e.conftest import Suite, running_suite, suite_environment
from tests.e2e.world import make_tenant
from tests.ops.pgtools import wait_port
from tests.support import ROOT, free_port

DEPLOY = ROOT / "deploy"
THRESHOLD = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.eE+-]+\s*$")
LOAD_SECONDS = 12.0


def panel_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted((DEPLOY / "grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "1m")
                found.append((f"{path.stem}: {panel['title']} ({target['refId']})", expr))
    return found


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            expr, n = THRESHOLD.subn("", rule["expr"].strip())
            assert n == 1, f"{rule['alert']}: expected '<query> <comparison> <number>'"
            found.append((rule["alert"], expr))
    return found


class Prometheus:
    def __init__(self, folder: Path, jobs: dict[str, int], log: Path) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(DEPLOY / "prometheus/alerts.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in jobs.items()
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        argv = [
            "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("ab"))

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:  # a bad query: 400 with the error in the body
            return json.load(exc)

    def query(self, expr: str) -> tuple[str, list[Any]]:
        """('' and the series) or (the error, [])."""
        doc = self.get("query", query=expr)
        if doc.get("status") != "success":
            return f"{doc.get('errorType')}: {doc.get('error')}", []
        return "", doc["data"]["result"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


async def load(suite: Suite, seconds: float) -> dict[str, int]:
    """Chats from a few users, refusals past a plan's limit, and provider failures."""
    outcomes: dict[str, int] = {}
    tenants = [await make_tenant(suite, limit=40) for _ in range(3)]
    deadline = asyncio.get_running_loop().time() + seconds

    async def user(n: int) -> None:
        tenant, i = tenants[n], 0
        while asyncio.get_running_loop().time() < deadline:
            text = "[[fail:503]] now" if i % 10 == 9 else f"load {i}"
            try:
                await tenant.chat(text)
                code = "OK"
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            outcomes[code] = outcomes.get(code, 0) + 1
            i += 1
            await asyncio.sleep(0.05)

    await asyncio.gather(*(user(n) for n in range(len(tenants))))
    return outcomes


@pytest.fixture(scope="module")
async def scraped(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("prometheus")
    with suite_environment() as env:
        async with running_suite(env, log_dir) as suite:
            prom = Prometheus(folder, env["metrics"], log_dir / "prometheus.log")
            try:
                await asyncio.to_thread(wait_port, prom.port, 30.0)
                outcomes = await load(suite, LOAD_SECONDS)
                assert {"OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE"} <= set(outcomes), outcomes
                await asyncio.sleep(3)  # the last scrapes and rule evaluations
                yield prom
            finally:
                prom.stop()


async def test_every_target_is_scraped_and_the_rules_load(scraped: Prometheus) -> None:
    error, series = scraped.query('up{job=~"identity|quota|history|llm"}')
    assert not error and {s["metric"]["job"]: s["value"][1] for s in series} == {
        j: "1" for j in ("identity", "quota", "history", "llm")
    }
    groups = scraped.get("rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(alert_queries())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


@pytest.mark.parametrize("name,expr", panel_queries() + alert_queries())
async def test_query_evaluates_to_series(scraped: Prometheus, name: str, expr: str) -> None:
    error, series = scraped.query(expr)
    assert not error, f"{name}: {error}"
    assert series, f"{name}: no series for {expr}"
