"""report.md rendering from a summary dict."""

from bench.report import render
from bench.summary import RunStats, Scenario
from bench.targets import evaluate


def summary(failures=()):
    echo = Scenario(
        "echo",
        "Echo baseline",
        "echo",
        "ghz",
        runs=[RunStats(1, 100, 100, 1.0, {"p50": 1.0, "p95": 2.0, "p99": 3.0})],
    )
    chat = Scenario(
        "chat",
        "llm Chat",
        "llm",
        "ghz",
        status="unimplemented",
        reason="probe call failed with UNIMPLEMENTED",
    )
    quota = Scenario(
        "quota_hot_reserve",
        "Reserve",
        "quota",
        "ghz",
        runs=[RunStats(1, 12, 10, 2.0, {"p50": 4.0}, {"ABORTED": 2}, ratio_rps=0.05)],
    )
    scenarios = [echo, chat, quota]
    return {
        "meta": {
            "started": "2026-01-01 00:00:00",
            "cpu_count": 2,
            "cpu_model": "Xeon",
            "versions": {"ghz": "0.121.0", "litellm": "1.108.7"},
            "duration_s": 10,
            "concurrencies": [1],
            "notes": ["a note"],
        },
        "scenarios": [s.to_dict() for s in scenarios],
        "targets": [t.to_dict() for t in evaluate(scenarios, [1])],
        "quota_check": {
            "status": "exact",
            "checks": [{"subject": "hot user", "expected": 10, "actual": 10, "ok": True}],
        },
        "failures": list(failures),
        "plots": ["latency.png"],
    }


def test_header_versions_and_verdict():
    text = render(summary())
    assert text.startswith("# Benchmark 2026-01-01 00:00:00")
    assert "**2 CPUs** (Xeon)" in text
    assert "ghz 0.121.0; litellm 1.108.7" in text
    assert "**Result: PASS**" in text
    failed = render(summary(["chat: unimplemented - probe"]))
    assert "**Result: FAIL**" in failed and "- chat: unimplemented - probe" in failed


def test_scenario_tables_and_statuses():
    text = render(summary())
    assert "| 1 | 100.0 | 100.0 | 1.00 | 2.00 | 3.00 | - | 100 | 0 | - | - |" in text
    assert "| 1 | 6.0 | 5.0 | 4.00 | - | - | - | 12 | ABORTED 2 | 0.05x | - |" in text
    assert "status: **unimplemented** (probe call failed with UNIMPLEMENTED)" in text


def test_targets_quota_plots_and_notes():
    text = render(summary())
    assert "| Chat p50 <= 0.6x LiteLLM p50 | 1 | not measured |" in text
    assert "| hot user | 10 | 10 | yes |" in text
    assert "![latency.png](latency.png)" in text
    assert "- a note" in text


def test_routing_table_compares_chat_routed_with_chat():
    chat = Scenario("chat", "llm Chat", "llm", "ghz", runs=[RunStats(16, 1000, 1000, 10.0)])
    routed = Scenario("chat_routed", "routed", "llm", "ghz", runs=[RunStats(16, 900, 900, 10.0)])
    text = render({"meta": {}, "scenarios": [chat.to_dict(), routed.to_dict()]})
    assert "## Routing (`chat_routed` vs `chat`)" in text
    assert "| 16 | 90.0 | 100.0 | 0.90 |" in text
