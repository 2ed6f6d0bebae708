"""Fixtures shared by all suites; helpers live in tests/support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session", autouse=True)
def _drop_test_mongo_databases() -> Iterator[None]:
    """Databases named by fresh_mongo_database() do not outlive the session."""
    yield
    from tests.support import drop_mongo_databases

    drop_mongo_databases()
