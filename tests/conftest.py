"""Fixtures shared by all suites; helpers live in tests/support.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The fake provider listens on loopback, which the platform's egress policy refuses unless
# allowed (gateway_common/egress.py): the tests allow it, as the local stack does.
LOCAL_EGRESS = "127.0.0.0/8,::1/128"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("GATEWAY_EGRESS_ALLOW", LOCAL_EGRESS)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session", autouse=True)
def _drop_test_mongo_databases() -> Iterator[None]:
    """Databases named by fresh_mongo_database() do not outlive the session."""
    yield
    from tests.support import drop_mongo_databases

    drop_mongo_databases()
