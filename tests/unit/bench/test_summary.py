"""Parsing ghz / hey output into RunStats, pairs, ratios and the error verdict."""

import json
from pathlib import Path

import pytest

from bench.summary import (
    RunStats,
    Scenario,
    apply_ratios,
    code_name,
    combine_pair,
    judge,
    parse_ghz,
    parse_hey,
)

FIXTURES = Path(__file__).parent / "fixtures"


def ghz_doc(**over):
    doc = json.loads((FIXTURES / "ghz_echo_c16.json").read_text())
    doc.update(over)
    return doc


def test_parse_ghz_report():
    stats = parse_ghz(ghz_doc(), 16)
    assert stats.concurrency == 16
    assert stats.count == 10949 and stats.ok == 10949 and stats.errors == {}
    assert stats.seconds == pytest.approx(3.004131051)
    assert stats.rps == pytest.approx(3644.65, abs=0.01)
    assert stats.latency_ms == pytest.approx(
        {"p50": 3.453716, "p95": 7.777385, "p99": 10.665751, "mean": 4.260687}
    )


def test_parse_ghz_errors_by_code():
    doc = ghz_doc(
        count=10,
        statusCodeDistribution={"OK": 7, "Unimplemented": 2, "DeadlineExceeded": 1},
        errorDistribution={"rpc error: code = Unimplemented desc = Method not found!": 2},
    )
    stats = parse_ghz(doc, 1)
    assert stats.ok == 7
    assert stats.errors == {"UNIMPLEMENTED": 2, "DEADLINE_EXCEEDED": 1}
    assert stats.messages == ["2 x rpc error: code = Unimplemented desc = Method not found!"]
    assert stats.ok_rps == pytest.approx(7 / 3.004131051)


def test_parse_ghz_without_calls():
    stats = parse_ghz({"count": 0, "total": 0, "latencyDistribution": None}, 64)
    assert (stats.count, stats.ok, stats.rps, stats.latency_ms) == (0, 0, 0.0, {})


@pytest.mark.parametrize(
    ("go", "grpc"),
    [("OK", "OK"), ("Unavailable", "UNAVAILABLE"), ("ResourceExhausted", "RESOURCE_EXHAUSTED")],
)
def test_code_name(go, grpc):
    assert code_name(go) == grpc


def test_parse_hey_summary():
    stats = parse_hey((FIXTURES / "hey_litellm_c16.txt").read_text(), 16)
    assert stats.count == stats.ok == 731
    assert stats.seconds == pytest.approx(5.0455)
    assert stats.rps == pytest.approx(731 / 5.0455)
    assert stats.latency_ms == pytest.approx(
        {"p50": 106.4, "p95": 137.8, "p99": 162.2, "mean": 109.9}
    )
    assert stats.errors == {}


def test_parse_hey_transport_errors_and_http_statuses():
    stats = parse_hey((FIXTURES / "hey_refused.txt").read_text(), 2)
    assert stats.ok == 0 and stats.errors == {"CONNECTION_REFUSED": 61019}
    assert "connection refused" in stats.messages[0]
    text = (
        "Summary:\n  Total:\t2.0 secs\n\nStatus code distribution:\n"
        "  [200]\t10 responses\n  [500]\t3 responses\n"
    )
    stats = parse_hey(text, 1)
    assert (stats.ok, stats.count, stats.errors) == (10, 13, {"HTTP_500": 3})


def run(c, ok, seconds, p50=1.0, p99=2.0, errors=None):
    count = ok + sum((errors or {}).values())
    return RunStats(c, count, ok, seconds, {"p50": p50, "p99": p99}, errors or {})


def test_combine_pair_is_harmonic_and_sums_latency():
    reserve, commit = run(16, 1000, 1.0, 2.0, 5.0), run(16, 1000, 0.5, 1.0, 3.0)
    pair = combine_pair(reserve, commit, ("Reserve", "Settle"))
    assert pair.ok_rps == pytest.approx(1 / (1 / 1000 + 1 / 2000))
    assert pair.ok == 1000
    assert pair.latency_ms == {"p50": 3.0, "p99": 8.0}
    failing = combine_pair(run(1, 5, 1.0, errors={"ABORTED": 2}), run(1, 5, 1.0), ("R", "C"))
    assert failing.errors == {"R:ABORTED": 2}


def test_apply_ratios_against_echo_at_same_concurrency():
    echo = Scenario(
        "echo",
        "Echo",
        "echo",
        "ghz",
        runs=[run(1, 1000, 1.0, p99=1.0), run(16, 4000, 1.0, p99=4.0)],
    )
    auth = Scenario(
        "authenticate", "A", "identity", "ghz", runs=[run(1, 500, 1.0, p99=3.0), run(64, 10, 1.0)]
    )
    apply_ratios([echo, auth])
    assert auth.runs[0].ratio_rps == pytest.approx(0.5)
    assert auth.runs[0].ratio_p99 == pytest.approx(3.0)
    assert auth.runs[1].ratio_rps is None  # no echo run at c=64
    assert echo.runs[1].ratio_rps == pytest.approx(1.0)


def test_judge_marks_errors_unless_expected():
    bad = Scenario("chat", "Chat", "llm", "ghz", runs=[run(1, 5, 1.0, errors={"INTERNAL": 1})])
    judge(bad)
    assert bad.status == "errors" and "INTERNAL x1" in bad.reason
    tolerated = Scenario("x", "X", "llm", "ghz", expect_errors=True, runs=list(bad.runs))
    judge(tolerated)
    assert tolerated.status == "ok"
    blocked = Scenario("y", "Y", "llm", "ghz", status="blocked", reason="seed missing")
    judge(blocked)
    assert blocked.reason == "seed missing"


def test_scenario_round_trips_through_dict():
    s = Scenario("echo", "Echo", "echo", "ghz", runs=[run(1, 10, 1.0)], notes=["n"])
    again = Scenario.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    assert s.to_dict()["runs"][0]["ok_rps"] == 10.0
