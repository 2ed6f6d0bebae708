"""The issue's speed targets, evaluated on a run's scenarios (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.summary import RunStats, Scenario

Metric = Callable[[RunStats, RunStats], float | None]


@dataclass
class Target:
    name: str
    concurrency: int
    actual: float | None  # the measured value (a ratio or milliseconds)
    required: float
    op: str  # ">=" or "<="
    unit: str  # "x" (ratio) or "ms"
    status: str  # met | missed | not measured
    margin_pct: float | None  # + ahead of the target, - short of it
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verdict(actual: float | None, required: float, op: str, unit: str) -> Target:
    if actual is None:
        return Target("", 0, None, required, op, unit, "not measured", None, "not measured")
    if op == ">=":
        met = actual >= required
        margin = actual / required - 1 if required else 0.0
        close = required / actual if actual > 0 else float("inf")
    else:
        met = actual <= required
        margin = required / actual - 1 if actual > 0 else 0.0
        close = actual / required if required else float("inf")
    shown = f"{actual:.2f}{unit}" if unit == "x" else f"{actual:.2f} {unit}"
    goal = f"{op} {required:g}{unit}" if unit == "x" else f"{op} {required:.2f} {unit}"
    if met:
        text = f"met: {shown} {goal} ({margin:+.0%})"
    else:
        text = f"missed by {-margin:.0%}: {shown}, needs {goal} ({close:.2f}x better to close)"
    return Target("", 0, actual, required, op, unit, "met" if met else "missed", margin, text)


def _pair(
    name: str, subject: Scenario | None, reference: Scenario | None, c: int, metric: Metric
) -> tuple[float | None, str]:
    if subject is None or reference is None:
        return None, "scenario missing"
    if subject.status != "ok" or reference.status != "ok":
        return None, f"{subject.name}: {subject.status}; {reference.name}: {reference.status}"
    run, ref = subject.run_at(c), reference.run_at(c)
    if run is None or ref is None:
        return None, f"no run at c={c}"
    return metric(run, ref), ""


def _ratio(run: RunStats, ref: RunStats) -> float | None:
    return run.ok_rps / ref.ok_rps if ref.ok_rps > 0 else None


def _p50(run: RunStats, _: RunStats) -> float | None:
    return run.latency_ms.get("p50")


def _p50_ratio(run: RunStats, ref: RunStats) -> float | None:
    p50, ref50 = run.latency_ms.get("p50"), ref.latency_ms.get("p50")
    return p50 / ref50 if p50 is not None and ref50 else None


def _echo_calls(run: RunStats, _: RunStats) -> float | None:
    value = run.cpu.get("echo_calls")
    return float(value) if value is not None else None


def _llm_echo_calls(run: RunStats, _: RunStats) -> float | None:
    value = run.cpu.get("echo_calls_by_process", {}).get("llm")
    return float(value) if value is not None else None


def _p99_ratio(run: RunStats, ref: RunStats) -> float | None:
    p99, ref99 = run.latency_ms.get("p99"), ref.latency_ms.get("p99")
    return p99 / ref99 if p99 is not None and ref99 else None


# (name, subject, reference, metric, op, required, unit, concurrencies: None = all)
RULES: list[tuple[str, str, str, Metric, str, float, str, tuple[int, ...] | None]] = [
    # Settlement issue: gRPC Chat against LiteLLM (one worker per core).
    ("Chat req/s >= 3x LiteLLM", "chat", "litellm", _ratio, ">=", 3.0, "x", (16, 64)),
    ("Chat p50 <= 0.6x LiteLLM p50", "chat", "litellm", _p50_ratio, "<=", 0.6, "x", (1,)),
    # HTTP door issue: the door against both HTTP peers (Portkey: our goal, reported).
    ("HTTP door req/s >= 2x LiteLLM", "http_chat", "litellm", _ratio, ">=", 2.0, "x", (16, 64)),
    ("HTTP door p50 <= LiteLLM p50 at c=1", "http_chat", "litellm", _p50, "<=", 0.0, "ms", (1,)),
    ("HTTP door req/s >= Portkey's (goal)", "http_chat", "portkey", _ratio, ">=", 1.0, "x", None),
    # Machine cost issue: CPU per Chat in echo calls (all processes; llm_svc alone).
    ("Chat CPU <= 6 echo calls", "chat", "echo", _echo_calls, "<=", 6.0, "x", None),
    ("Chat CPU in llm_svc <= 2 echo calls", "chat", "echo", _llm_echo_calls, "<=", 2.0, "x", None),
    ("Authenticate >= 50% of echo req/s", "authenticate", "echo", _ratio, ">=", 0.5, "x", None),
    (
        "Reserve+Settle spread >= 25% of echo",
        "quota_pair_spread",
        "echo",
        _ratio,
        ">=",
        0.25,
        "x",
        None,
    ),
    (
        "RecordInteractions (batch of 1) >= 25% of echo",
        "history_record",
        "echo",
        _ratio,
        ">=",
        0.25,
        "x",
        None,
    ),
    (
        "ListInteractions p99 <= 3x echo p99",
        "history_list",
        "echo",
        _p99_ratio,
        "<=",
        3.0,
        "x",
        None,
    ),
]


def evaluate(scenarios: list[Scenario], concurrencies: list[int]) -> list[Target]:
    by_name = {s.name: s for s in scenarios}
    out: list[Target] = []
    for name, subject, reference, metric, op, required, unit, only in RULES:
        for c in [c for c in concurrencies if c in only] if only else concurrencies:
            actual, why = _pair(name, by_name.get(subject), by_name.get(reference), c, metric)
            goal = required
            if unit == "ms":  # the reference's own p50 is the bound
                ref = by_name.get(reference)
                ref_run = ref.run_at(c) if ref else None
                ref_p50 = ref_run.latency_ms.get("p50") if ref_run else None
                if ref_p50 is None:
                    actual, why = None, why or "reference p50 missing"
                goal = ref_p50 or 0.0
            target = _verdict(actual, goal, op, unit)
            target.name, target.concurrency = name, c
            if actual is None:
                target.verdict = f"not measured ({why or 'no figure in the run'})"
            out.append(target)
    return out
