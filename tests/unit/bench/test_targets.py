"""The issue's targets: met / missed with the margin, not measured when a side is missing."""

import pytest

from bench.summary import RunStats, Scenario
from bench.targets import evaluate


def sc(name, runs, status="ok"):
    return Scenario(name, name, "svc", "ghz", status=status, runs=runs)


def r(c, rps, p50=1.0, p99=1.0):
    return RunStats(c, rps, rps, 1.0, {"p50": p50, "p99": p99})


def by(targets, name, c):
    return next(t for t in targets if t.name.startswith(name) and t.concurrency == c)


@pytest.fixture
def scenarios():
    return [
        sc("echo", [r(1, 1000, p99=2.0), r(16, 4000, p99=10.0)]),
        sc("litellm", [r(1, 130, p50=6.8), r(16, 170)]),
        sc("portkey", [r(1, 400, p50=1.0), r(16, 900)]),
        sc("chat", [r(1, 300, p50=3.0), r(16, 300)]),
        sc("http_chat", [r(1, 200, p50=7.0), r(16, 400)]),
        sc("authenticate", [r(1, 600), r(16, 1000)]),
        sc("quota_pair_spread", [r(1, 250), r(16, 2000)]),
        sc("history_record", [r(1, 100), r(16, 100)], status="errors"),
        sc("history_list", [r(1, 100, p99=5.0), r(16, 100, p99=40.0)]),
    ]


def test_ratio_targets(scenarios):
    targets = evaluate(scenarios, [1, 16])
    assert not [t for t in targets if t.name.startswith("Chat req/s") and t.concurrency == 1]
    chat16 = by(targets, "Chat req/s", 16)
    assert chat16.status == "missed" and chat16.required == 3.0
    assert chat16.margin_pct == pytest.approx((300 / 170) / 3 - 1)
    assert "missed by 41%" in chat16.verdict
    door16 = by(targets, "HTTP door req/s >= 2x", 16)
    assert door16.status == "met" and door16.actual == pytest.approx(400 / 170)
    portkey = [by(targets, "HTTP door req/s >= Portkey", c) for c in (1, 16)]
    assert [t.status for t in portkey] == ["missed", "missed"]
    assert portkey[1].actual == pytest.approx(400 / 900)
    auth16 = by(targets, "Authenticate", 16)
    assert auth16.status == "missed" and auth16.actual == pytest.approx(0.25)
    assert by(targets, "Authenticate", 1).status == "met"
    assert by(targets, "Reserve+Settle", 1).status == "met"  # exactly 25%


def test_latency_targets(scenarios):
    targets = evaluate(scenarios, [1, 16])
    p50 = by(targets, "Chat p50", 1)
    assert p50.status == "met" and p50.actual == pytest.approx(3.0 / 6.8) and p50.unit == "x"
    assert [t.concurrency for t in targets if t.name.startswith("Chat p50")] == [1]
    door = by(targets, "HTTP door p50", 1)
    assert door.status == "missed" and door.required == pytest.approx(6.8) and door.unit == "ms"
    list1, list16 = by(targets, "ListInteractions", 1), by(targets, "ListInteractions", 16)
    assert list1.status == "met" and list1.actual == pytest.approx(2.5)
    assert list16.status == "missed" and list16.actual == pytest.approx(4.0)
    assert list16.margin_pct == pytest.approx(3.0 / 4.0 - 1)


def test_not_measured_when_a_scenario_failed_or_is_absent(scenarios):
    targets = evaluate(scenarios, [1, 16, 64])
    record = by(targets, "RecordInteractions", 1)
    assert record.status == "not measured" and "history_record: errors" in record.verdict
    assert by(targets, "Authenticate", 64).status == "not measured"
    targets = evaluate([s for s in scenarios if s.name != "litellm"], [1])
    assert by(targets, "Chat p50", 1).status == "not measured"


def test_cpu_targets_in_echo_calls(scenarios):
    chat = next(s for s in scenarios if s.name == "chat")
    chat.runs[0].cpu = {"echo_calls": 5.0, "echo_calls_by_process": {"llm": 2.5}}
    targets = evaluate(scenarios, [1, 16])
    assert by(targets, "Chat CPU <= 6", 1).status == "met"
    assert by(targets, "Chat CPU in llm_svc", 1).status == "missed"
    assert by(targets, "Chat CPU <= 6", 16).status == "not measured"  # no CPU figures
