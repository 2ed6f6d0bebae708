"""After a few Chat calls, every service's metrics endpoint counts them by method and code."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Suite
from tests.e2e.world import make_tenant


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def handled(metrics: dict, service: str, method: str, code: str) -> float:
    key = (
        "grpc_server_handled_total",
        (("grpc_code", code), ("grpc_method", method), ("grpc_service", service)),
    )
    return metrics.get(key, 0.0)


async def test_metrics_count_calls_by_method_and_code(suite: Suite) -> None:
    ports = suite.metrics_ports
    before = {name: await asyncio.to_thread(scrape, port) for name, port in ports.items()}
    tenant = await make_tenant(suite, limit=3)
    for i in range(3):
        await tenant.chat(f"metrics {i}")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tenant.chat("one too many")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await tenant.interactions(want=3)  # delivered by quota's outbox relay
    after = {name: await asyncio.to_thread(scrape, port) for name, port in ports.items()}

    def delta(name: str, service: str, method: str, code: str) -> float:
        return handled(after[name], service, method, code) - handled(
            before[name], service, method, code
        )

    assert delta("llm", "llmgw.llm.v1.LlmService", "Chat", "OK") == 3
    assert delta("llm", "llmgw.llm.v1.LlmService", "Chat", "RESOURCE_EXHAUSTED") == 1
    quota = "llmgw.quota.v1.QuotaInternalService"
    assert delta("quota", quota, "Reserve", "OK") == 3
    assert delta("quota", quota, "Reserve", "RESOURCE_EXHAUSTED") == 1
    assert delta("quota", quota, "Settle", "OK") == 3
    history = "llmgw.history.v1.HistoryInternalService"
    assert 1 <= delta("history", history, "RecordInteractions", "OK") <= 3  # batches
    delivered = ("llmgw_outbox_delivered_total", (("topic", "interaction"),))
    for _ in range(50):  # the relay counts a batch just after history acknowledged it
        if after["quota"].get(delivered, 0) - before["quota"].get(delivered, 0) >= 3:
            break
        await asyncio.sleep(0.1)
        after["quota"] = await asyncio.to_thread(scrape, ports["quota"])
    assert after["quota"].get(delivered, 0) - before["quota"].get(delivered, 0) >= 3
    assert delta("identity", "llmgw.identity.v1.IdentityService", "CreateTenant", "OK") == 1
    refusals = ("llmgw_quota_refusals_total", (("reason", "QUOTA_EXCEEDED"),))
    assert after["quota"].get(refusals, 0) - before["quota"].get(refusals, 0) == 1

    def tokens(scraped: dict) -> float:
        return sum(
            v
            for (name, labels), v in scraped.items()
            if name == "llm_tokens_total" and ("tenant", "other") in labels
        )

    assert tokens(after["llm"]) > tokens(before["llm"])  # counted, under the bounded label
    for scraped in after.values():  # no series names a tenant (GATEWAY_METRICS_TENANTS unset)
        assert not [k for k in scraped if tenant.tenant_id in str(k[1])]
    pools = [k for k in after["quota"] if k[0] == "llmgw_db_pool_connections"]
    assert pools, "quota exposes its database pool"
