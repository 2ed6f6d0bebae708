"""The Kubernetes manifests parse, and every service has probes, resources and its configuration."""

from __future__ import annotations

import pytest
import yaml

from tests.support import ROOT

K8S = ROOT / "deploy" / "k8s"
SERVICES = {"identity": 50051, "quota": 50052, "history": 50053, "llm": 50054}


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    (cm,) = load("config.yaml")
    return cm["data"]


def known_env_names() -> set[str]:
    """Every environment variable some service's settings class reads."""
    from history_svc.config import HistorySettings
    from identity_svc.config import IdentitySettings
    from llm_svc.config import LlmSettings
    from quota_svc.config import QuotaSettings

    names: set[str] = set()
    for cls in (IdentitySettings, QuotaSettings, HistorySettings, LlmSettings):
        prefix = cls.model_config.get("env_prefix", "")
        for field_name, field in cls.model_fields.items():
            alias = field.validation_alias
            names.add(str(alias) if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


@pytest.mark.parametrize("name,port", sorted(SERVICES.items()))
def test_workload_has_probes_resources_and_config(name, port, config):
    docs = {d["kind"]: d for d in load(f"{name}_svc.yaml")}
    workload = docs.get("Deployment") or docs["StatefulSet"]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in container["ports"]} >= {port}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert probe in container, probe
    ready_cmd = container["readinessProbe"]["exec"]["command"]
    assert "gateway_common.healthcheck" in ready_cmd and f"127.0.0.1:{port}" in ready_cmd
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["limits"]["memory"]
    sources = [(next(iter(s)), next(iter(s.values()))["name"]) for s in container["envFrom"]]
    assert sources == [
        ("configMapRef", "llmgw-config"),
        ("secretRef", "llmgw-secrets"),
        ("secretRef", f"llmgw-{name}-service"),  # its own service credential, no other's
    ]
    assert config[f"{name.upper()}_HOST"] == "0.0.0.0"
    service = docs["Service"]
    assert service["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in service["spec"]["ports"]} >= {port}
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == workload["metadata"]["name"]
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]


def test_llm_is_a_stateless_deployment_that_scales_freely():
    docs = {d["kind"]: d for d in load("llm_svc.yaml")}
    assert "StatefulSet" not in docs
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert all("persistentVolumeClaim" not in v for v in pod.get("volumes", []))
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_every_configured_variable_is_read_by_a_service(config):
    known = known_env_names() | {"OTEL_EXPORTER_OTLP_ENDPOINT", "GATEWAY_TRACING"}
    unknown = sorted(set(config) - known)
    assert not unknown, f"ConfigMap keys no service reads: {unknown}"


def test_secret_template_covers_what_services_need():
    secret = load("secrets.example.yaml")[0]["stringData"]
    needed = {"IDENTITY_ENCRYPTION_KEYS", "IDENTITY_DATABASE_URL"}
    assert needed | {"QUOTA_DATABASE_URL", "MONGO_URL"} <= set(secret)
    per_service = {d["metadata"]["name"]: d["stringData"] for d in load("secrets.example.yaml")}
    for name in SERVICES:
        own = per_service[f"llmgw-{name}-service"]
        assert set(own) == {"GATEWAY_SERVICE_TOKEN", "GATEWAY_ACCEPTED_SERVICE_TOKENS"}


def test_behind_pgbouncer_prepared_statements_are_off_and_migrations_go_direct(config):
    secret = load("secrets.example.yaml")[0]["stringData"]
    for svc in ("IDENTITY", "QUOTA"):
        if "pgbouncer" in secret[f"{svc}_DATABASE_URL"]:
            assert config[f"{svc}_DB_PREPARED_STATEMENTS"] == "false"
            assert "pgbouncer" not in secret[f"{svc}_MIGRATION_DATABASE_URL"]
