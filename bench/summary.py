"""Figures of a benchmark run: parsing ghz and hey output, ratios to the echo
baseline, Reserve+Settle pairs and the issue's targets. Pure functions only (no
I/O beyond the arguments), so the report can be rebuilt from summary.json."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import cpu
from bench.cpu import TOTAL

PERCENTILES = ("p50", "p95", "p99")
BASELINE = "echo"


@dataclass
class RunStats:
    """One load run: a scenario at one concurrency for a fixed duration."""

    concurrency: int
    count: int  # calls finished, ok or not
    ok: int
    seconds: float  # wall time of the run
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50 p95 p99 mean
    errors: dict[str, int] = field(default_factory=dict)  # status code -> calls
    messages: list[str] = field(default_factory=list)  # a few error texts, for the report
    ratio_rps: float | None = None  # ok_rps / echo ok_rps at the same concurrency
    ratio_p99: float | None = None  # p99 / echo p99 at the same concurrency
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU spent during the run, by process
    cpu: dict[str, Any] = field(default_factory=dict)  # bench.cpu.CpuCost of the run, as a dict

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok_rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rps"] = round(self.rps, 2)
        out["ok_rps"] = round(self.ok_rps, 2)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStats:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Scenario:
    """A scenario's runs at every concurrency, and how it went."""

    name: str
    title: str
    service: str
    tool: str  # ghz | hey | derived
    status: str = "ok"  # ok | errors | unimplemented | blocked | failed
    reason: str = ""
    runs: list[RunStats] = field(default_factory=list)
    expect_errors: bool = False
    notes: list[str] = field(default_factory=list)
    allowed_errors: list[str] = field(default_factory=list)  # codes that are not failures here

    def run_at(self, concurrency: int) -> RunStats | None:
        return next((r for r in self.runs if r.concurrency == concurrency), None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["runs"] = [r.to_dict() for r in self.runs]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        runs = [RunStats.from_dict(r) for r in data.get("runs", [])]
        names = {f for f in cls.__dataclass_fields__} - {"runs"}
        return cls(**{k: v for k, v in data.items() if k in names}, runs=runs)


def code_name(camel: str) -> str:
    """ghz's Go code names ("DeadlineExceeded") as gRPC spells them ("DEADLINE_EXCEEDED")."""
    if camel.isupper() or not camel:
        return camel
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def parse_ghz(doc: dict[str, Any], concurrency: int) -> RunStats:
    """A ghz ``--format json`` report (the ``details`` list is not needed)."""
    statuses = {code_name(k): int(v) for k, v in (doc.get("statusCodeDistribution") or {}).items()}
    ok = statuses.pop("OK", 0)
    latency = {
        f"p{int(item['percentage'])}": item["latency"] / 1e6
        for item in doc.get("latencyDistribution") or []
        if f"p{int(item['percentage'])}" in PERCENTILES
    }
    if doc.get("count"):
        latency["mean"] = doc.get("average", 0) / 1e6
    messages = sorted((doc.get("errorDistribution") or {}).items(), key=lambda kv: -kv[1])
    return RunStats(
        concurrency=concurrency,
        count=int(doc.get("count", 0)),
        ok=ok,
        seconds=doc.get("total", 0) / 1e9,
        latency_ms=latency,
        errors=statuses,
        messages=[f"{n} x {text[:300]}" for text, n in messages[:3]],
    )


_HEY_PCT = re.compile(r"^\s*(\d+)% in ([\d.]+) secs", re.M)
_HEY_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.M)
_HEY_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.M)


def _hey_error_code(message: str) -> str:
    lowered = message.lower()
    if "connection refused" in lowered:
        return "CONNECTION_REFUSED"
    if "timeout" in lowered or "deadline" in lowered:
        return "TIMEOUT"
    if "reset" in lowered or "eof" in lowered:
        return "CONNECTION_RESET"
    return "TRANSPORT_ERROR"


def parse_hey(text: str, concurrency: int) -> RunStats:
    """hey's text summary: HTTP 2xx are ok, other statuses and transport errors are errors."""
    total = re.search(r"Total:\s+([\d.]+) secs", text)
    average = re.search(r"Average:\s+([\d.]+) secs", text)
    latency = {
        f"p{p}": float(s) * 1000 for p, s in _HEY_PCT.findall(text) if f"p{p}" in PERCENTILES
    }
    if average:
        latency["mean"] = float(average.group(1)) * 1000
    ok = 0
    errors: dict[str, int] = {}
    messages: list[str] = []
    for status, n in _HEY_STATUS.findall(text):
        if status.startswith("2"):
            ok += int(n)
        else:
            errors[f"HTTP_{status}"] = errors.get(f"HTTP_{status}", 0) + int(n)
    tail = text.split("Error distribution:", 1)
    if len(tail) == 2:
        for n, message in _HEY_ERROR.findall(tail[1]):
            code = _hey_error_code(message)
            errors[code] = errors.get(code, 0) + int(n)
            messages.append(f"{n} x {message.strip()[:300]}")
    return RunStats(
        concurrency=concurrency,
        count=ok + sum(errors.values()),
        ok=ok,
        seconds=float(total.group(1)) if total else 0.0,
        latency_ms=latency,
        errors=errors,
        messages=messages[:3],
    )


def combine_pair(first: RunStats, second: RunStats, names: tuple[str, str]) -> RunStats:
    """Reserve then Settle measured as two runs: pairs/s = 1 / (1/r1 + 1/r2), i.e. the
    rate if each pair cost the time of one Reserve plus one Commit. Latencies are summed
    per percentile (exact for the mean, an upper bound for p95/p99)."""
    r1, r2 = first.ok_rps, second.ok_rps
    pairs_per_s = 1.0 / (1.0 / r1 + 1.0 / r2) if r1 > 0 and r2 > 0 else 0.0
    pairs = min(first.ok, second.ok)
    latency = {
        k: first.latency_ms[k] + second.latency_ms[k]
        for k in first.latency_ms
        if k in second.latency_ms
    }
    errors: dict[str, int] = {}
    for name, run in zip(names, (first, second), strict=True):
        for code, n in run.errors.items():
            errors[f"{name}:{code}"] = n
    cpu_ms = {
        k: first.cpu_ms.get(k, 0.0) + second.cpu_ms.get(k, 0.0)
        for k in first.cpu_ms.keys() | second.cpu_ms.keys()
    }
    return RunStats(
        concurrency=first.concurrency,
        count=pairs + sum(errors.values()),
        ok=pairs,
        seconds=pairs / pairs_per_s if pairs_per_s > 0 else 0.0,
        latency_ms=latency,
        errors=errors,
        messages=first.messages + second.messages,
        cpu_ms=cpu_ms,
    )


def apply_ratios(scenarios: list[Scenario]) -> None:
    """Fill ratio_rps / ratio_p99 of every run against the echo run at its concurrency."""
    base = next((s for s in scenarios if s.name == BASELINE), None)
    if base is None:
        return
    for scenario in scenarios:
        for run in scenario.runs:
            ref = base.run_at(run.concurrency)
            if ref is None:
                continue
            run.ratio_rps = run.ok_rps / ref.ok_rps if ref.ok_rps > 0 else None
            p99, ref_p99 = run.latency_ms.get("p99"), ref.latency_ms.get("p99")
            run.ratio_p99 = p99 / ref_p99 if p99 is not None and ref_p99 else None


def apply_cpu(scenarios: list[Scenario]) -> None:
    """Fill ``cpu`` of every run that has ``cpu_ms``: per request, and in echo calls (the
    echo run's CPU per call at the same concurrency, server and load generator)."""
    base = next((s for s in scenarios if s.name == BASELINE), None)
    echo: dict[int, float] = {}
    for run in base.runs if base else []:
        cost = cpu.per_request(run.cpu_ms, run.ok, run.seconds, None)
        if TOTAL in cost.per_request_ms:
            echo[run.concurrency] = cost.per_request_ms[TOTAL]
    for scenario in scenarios:
        for run in scenario.runs:
            if run.cpu_ms:
                cost = cpu.per_request(run.cpu_ms, run.ok, run.seconds, echo.get(run.concurrency))
                run.cpu = asdict(cost)


def judge(scenario: Scenario) -> None:
    """An ok scenario with calls that failed becomes ``errors`` (unless errors are expected)."""
    if scenario.status != "ok" or scenario.expect_errors:
        return
    allowed = set(scenario.allowed_errors)
    bad = {c: n for r in scenario.runs for c, n in r.errors.items() if c not in allowed}
    if bad:
        scenario.status = "errors"
        scenario.reason = "calls failed: " + ", ".join(f"{c} x{n}" for c, n in sorted(bad.items()))
