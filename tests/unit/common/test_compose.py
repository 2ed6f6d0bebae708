"""docker-compose.yml is valid and wires each service as ops expect."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from tests.support import ROOT

SERVICES = {
    "identity": "identity_svc",
    "quota": "quota_svc",
    "history": "history_svc",
    "llm": "llm_svc",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_real_database_images(compose):
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["mongo"]["image"].startswith("mongo:")


@pytest.mark.parametrize("name,target", sorted(SERVICES.items()))
def test_each_service_has_its_image_target_health_and_env(compose, name, target):
    svc = compose["services"][name]
    assert svc["build"]["target"] == target
    check = svc["healthcheck"]["test"]
    assert "gateway_common.healthcheck" in check  # gRPC health, not a port probe
    env = svc["environment"]
    assert (
        env["GATEWAY_SERVICE_TOKEN"]
        == f"${{{name.upper()}_SERVICE_TOKEN:?set {name.upper()}_SERVICE_TOKEN}}"
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"AS {target}" in dockerfile


def test_each_service_accepts_only_its_callers(compose):
    accepted = {
        name: compose["services"][name]["environment"]["GATEWAY_ACCEPTED_SERVICE_TOKENS"]
        for name in SERVICES
    }
    callers = {n: {e.split("=")[0] for e in v.split(",") if e} for n, v in accepted.items()}
    assert callers == {
        "identity": {"llm", "quota", "history"},
        "quota": {"llm"},
        "history": {"quota", "identity", "llm"},  # the audit relays, llm's system events
        "llm": set(),
    }


def test_dependencies_wait_for_health(compose):
    llm = compose["services"]["llm"]["depends_on"]
    assert all(llm[d]["condition"] == "service_healthy" for d in ("identity", "quota", "history"))
    assert compose["services"]["identity"]["environment"]["IDENTITY_DATABASE_URL"].endswith(
        "/identity"
    )
    assert compose["services"]["history"]["environment"]["MONGO_URL"].startswith("mongodb://mongo:")


def test_docker_compose_config_accepts_it():
    """Uses the real client's validation where the machine has the compose plugin."""
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("no docker compose client on this machine; the YAML checks above still ran")
    tokens = {f"{s.upper()}_SERVICE_TOKEN{end}": "x" for s in SERVICES for end in ("", "_SHA256")}
    env = {**os.environ, **tokens, "IDENTITY_ENCRYPTION_KEYS": "k1:AAAA"}
    result = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def mounted(service: dict) -> dict[str, str]:
    """Container path -> repository path of a service's bind mounts (all must exist)."""
    out = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        assert (ROOT / source).exists(), source
        out[target] = source
    return out


def test_prometheus_scrapes_the_suite_with_the_alert_rules(compose):
    mounts = mounted(compose["services"]["prometheus"])
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    assert mounts["/etc/prometheus/alerts.yml"].endswith("deploy/prometheus/alerts.yml")
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    for name in SERVICES:  # the job names the alerts and dashboards use
        port = compose["services"][name]["environment"][f"{name.upper()}_METRICS_PORT"]
        assert jobs[name] == [f"{name}:{port}"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboards(compose):
    mounts = mounted(compose["services"]["grafana"])
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards/llmgw.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = sorted((ROOT / mounts["/var/lib/grafana/dashboards"]).glob("*.json"))
    assert len(dashboards) >= 2
    for path in dashboards:
        board = json.loads(path.read_text())
        assert board["uid"] and board["panels"], path
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "prometheus", panel["title"]
            assert all(t["expr"] for t in panel["targets"]), panel["title"]
