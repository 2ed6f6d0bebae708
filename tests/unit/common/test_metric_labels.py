"""Metric labels stay bounded: a tenant is its own label value only when allow-listed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway_common import metrics


@pytest.fixture(autouse=True)
def _no_allow_list() -> Iterator[None]:
    yield
    metrics.label_tenants("")


def test_tenants_are_other_by_default() -> None:
    metrics.label_tenants("")
    assert metrics.tenant_label("7f1c0d7e-0000-4000-8000-000000000001") == "other"


def test_allow_listed_tenants_keep_their_id() -> None:
    metrics.label_tenants(" big-one , big-two,")
    assert metrics.tenant_label("big-one") == "big-one"
    assert metrics.tenant_label("big-two") == "big-two"
    assert metrics.tenant_label("small") == "other"
