"""Environment of the four services started as separate processes by a test."""

from __future__ import annotations

from tests.support import MONGO_URL, free_port, service_env, sqlalchemy_url

MODULES = ("identity_svc", "quota_svc", "history_svc", "llm_svc")


def suite_env(
    ports: dict[str, int],
    identity_dsn: str,
    quota_dsn: str,
    mongo_db: str,
    common: dict[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Per-module environment; ``common`` (TLS files, log level...) goes to all four."""
    identity = f"127.0.0.1:{ports['identity_svc']}"
    shared = common or {}
    envs = {
        "identity_svc": {
            "IDENTITY_PORT": str(ports["identity_svc"]),
            "IDENTITY_DATABASE_URL": sqlalchemy_url(identity_dsn),
            "IDENTITY_HISTORY_TARGET": f"127.0.0.1:{ports['history_svc']}",
        },
        "quota_svc": {
            "QUOTA_PORT": str(ports["quota_svc"]),
            "QUOTA_DATABASE_URL": sqlalchemy_url(quota_dsn),
            "QUOTA_IDENTITY_TARGET": identity,
            "QUOTA_HISTORY_TARGET": f"127.0.0.1:{ports['history_svc']}",
        },
        "history_svc": {
            "HISTORY_PORT": str(ports["history_svc"]),
            "MONGO_URL": MONGO_URL,
            "HISTORY_DATABASE": mongo_db,
            "HISTORY_IDENTITY_TARGET": identity,
        },
        "llm_svc": {
            "LLM_PORT": str(ports["llm_svc"]),
            "LLM_HTTP_PORT": str(free_port()),
            "LLM_IDENTITY_TARGET": identity,
            "LLM_QUOTA_TARGET": f"127.0.0.1:{ports['quota_svc']}",
            "LLM_HISTORY_TARGET": f"127.0.0.1:{ports['history_svc']}",
        },
    }
    return {m: {**service_env(m.removesuffix("_svc")), **shared, **env} for m, env in envs.items()}
