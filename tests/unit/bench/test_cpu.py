"""CPU accounting: /proc trees (this very process), per request and in echo calls."""

import os
import socket
import subprocess
import sys

import pytest

from bench import cpu
from bench.summary import RunStats, Scenario, apply_cpu, combine_pair


def test_a_tree_counts_its_live_children():
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    child = subprocess.Popen([sys.executable, "-c", spin + "time.sleep(5)"])
    try:
        before = cpu.snapshot({"me": os.getpid()})
        for _ in range(200):  # wait until the child has burnt its 0.3 s
            if cpu.snapshot({"child": child.pid})["child"] >= 300:
                break
            subprocess.run([sys.executable, "-c", "pass"], check=True)  # reaped: load gen
        after = cpu.snapshot({"me": os.getpid()})
        spent = cpu.delta(before, after)
        assert spent["me"] >= 250  # the live child is part of this process's tree
        assert spent[cpu.LOADGEN] > 0  # the reaped `python -c pass` runs
        assert after["machine"] >= before["machine"]
    finally:
        child.kill()
        child.wait()


def test_listener_pid_finds_the_process_on_a_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert cpu.listener_pid(s.getsockname()[1]) == os.getpid()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening
    assert cpu.listener_pid(port) is None


def test_per_request_and_echo_calls():
    spent = {"llm": 600.0, "quota": 300.0, "PostgreSQL": 0.0, cpu.LOADGEN: 100.0, "machine": 1300}
    cost = cpu.per_request(spent, ok=100, seconds=2.0, echo_total=0.5)
    assert cost.per_request_ms == {"llm": 6.0, "quota": 3.0, cpu.LOADGEN: 1.0, "total": 10.0}
    assert cost.echo_calls == 20.0 and cost.echo_calls_by_process["llm"] == 12.0
    assert cost.cores_busy == 0.5 and cost.machine_other_ms == 300.0
    assert cpu.per_request(spent, ok=0, seconds=2.0, echo_total=0.5).per_request_ms == {}


def test_delta_never_negative_and_order():
    assert cpu.delta({"a": 10.0, "b": 5.0}, {"a": 4.0}) == {"a": 0.0}
    assert cpu.ordered({"zeta", "fake", "llm", "total", cpu.LOADGEN}) == [
        "llm",
        "fake",
        cpu.LOADGEN,
        "zeta",
    ]


def test_apply_cpu_in_echo_calls_of_the_same_concurrency():
    echo = Scenario("echo", "echo", "echo", "ghz")
    echo.runs = [RunStats(16, 1000, 1000, 1.0, cpu_ms={"echo": 600.0, cpu.LOADGEN: 400.0})]
    chat = Scenario("chat", "chat", "llm", "ghz")
    chat.runs = [
        RunStats(16, 100, 100, 1.0, cpu_ms={"llm": 800.0, cpu.LOADGEN: 200.0}),
        RunStats(64, 100, 100, 1.0, cpu_ms={"llm": 900.0}),
    ]
    apply_cpu([echo, chat])
    assert echo.runs[0].cpu["echo_calls"] == 1.0
    assert chat.runs[0].cpu["echo_calls"] == 10.0
    assert chat.runs[0].cpu["echo_calls_by_process"]["llm"] == 8.0
    assert chat.runs[1].cpu["echo_calls"] is None  # no echo run at c=64
    assert chat.runs[1].cpu["per_request_ms"]["total"] == 9.0


def test_a_pair_adds_the_cpu_of_both_runs():
    reserve = RunStats(1, 10, 10, 1.0, {"p50": 1.0}, cpu_ms={"quota": 10.0, "PostgreSQL": 4.0})
    settle = RunStats(1, 10, 10, 1.0, {"p50": 1.0}, cpu_ms={"quota": 20.0})
    pair = combine_pair(reserve, settle, ("Reserve", "Settle"))
    assert pair.cpu_ms == {"quota": 30.0, "PostgreSQL": 4.0}
    assert pair.ok == 10 and pair.seconds == pytest.approx(2.0)
