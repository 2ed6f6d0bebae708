"""Report sections: CPU per request by process, the HTTP peers, overload, settlement."""

from bench.cpu import LOADGEN
from bench.report import render
from bench.summary import RunStats, Scenario, apply_cpu


def run(c, ok, p50, p99=None, cpu_ms=None, errors=None):
    lat = {"p50": p50, "p99": p99 if p99 is not None else p50 * 2}
    return RunStats(
        c, ok + sum((errors or {}).values()), ok, 1.0, lat, errors or {}, cpu_ms=cpu_ms or {}
    )


def summary():
    echo = Scenario("echo", "Echo", "echo", "ghz")
    echo.runs = [run(1, 1000, 0.5, cpu_ms={"echo": 600.0, LOADGEN: 400.0})]
    chat = Scenario("chat", "llm Chat", "llm", "ghz")
    chat.runs = [run(1, 100, 8.0, cpu_ms={"llm": 700.0, "PostgreSQL": 300.0, "quota": 0.1})]
    litellm = Scenario("litellm", "LiteLLM", "litellm", "hey")
    litellm.runs = [run(1, 50, 10.0)]
    portkey = Scenario("portkey", "Portkey", "portkey", "hey")
    portkey.runs = [run(1, 400, 2.0)]
    door = Scenario("http_chat", "door", "llm_http", "hey", status="skipped")
    door.reason = "HTTP door not answering"
    shed = Scenario("chat_overload", "overload", "llm", "ghz", allowed_errors=["UNAVAILABLE"])
    shed.runs = [run(256, 75, 900.0, 2000.0, errors={"UNAVAILABLE": 25})]
    scenarios = [echo, chat, litellm, portkey, door, shed]
    apply_cpu(scenarios)
    return {
        "meta": {"concurrencies": [1]},
        "scenarios": [s.to_dict() for s in scenarios],
        "settlement": {
            "status": "ok",
            "pending_after": 0,
            "batch_size": {"observations": 10, "mean": 5.0, "p50": 5.5, "p99": 9.9},
            "lag_ms": {"observations": 50, "mean": 80.0, "p50": 70.0, "p99": 240.0},
        },
    }


def test_cpu_table_per_process_in_echo_calls():
    text = render(summary())
    assert "**llm Chat** (`chat`): CPU ms per request (in echo calls)" in text
    assert "| llm_svc | 7.00 (7.0) |" in text  # 700 ms / 100 calls; an echo call costs 1 ms
    assert "| PostgreSQL (all backends) | 3.00 (3.0) |" in text
    assert "| **total** | **10.00 (10.0)** |" in text
    assert "| quota_svc |" not in text.split("(`chat`): CPU")[1].split("**total**")[0]  # 0.001 ms


def test_peers_side_by_side_with_ratios():
    text = render(summary())
    assert "`http_chat`: skipped (HTTP door not answering)." in text
    assert "| `chat` | 1 | ok req/s | 100.0 | 50.0 | 400.0 | 2.00x | 0.25x |" in text
    assert "| `chat` | 1 | p50 ms | 8.0 | 10.0 | 2.0 | 0.80x | 4.00x |" in text


def test_overload_share_and_settlement_figures():
    text = render(summary())
    assert "| 256 | 100.0 | 75.0 | 900.00 | 2000.00 | 25.0% | 0 |" in text
    assert "| delivery batch size (entries) | 10 | 5.0 | 5.5 | 9.9 |" in text
    assert "| lag ms | 50 | 80.0 | 70.0 | 240.0 |" in text
