"""Report sections beyond the per-scenario tables: CPU per request by process, the HTTP
peers side by side, the settlement outbox. Pure: the summary dict in, Markdown lines out."""

from __future__ import annotations

from typing import Any

from bench.cpu import TOTAL, ordered
from bench.summary import RunStats, Scenario

PROCESS_NAMES = {
    "llm": "llm_svc",
    "quota": "quota_svc",
    "history": "history_svc",
    "identity": "identity_svc",
    "PostgreSQL": "PostgreSQL (all backends)",
    "fake": "fake provider",
    "echo": "echo server",
    "litellm": "LiteLLM (all workers)",
    "portkey": "Portkey gateway",
}
HTTP_PEERS = (("litellm", "LiteLLM"), ("portkey", "Portkey"))
# Below this many ms per request a process is left out of a scenario's table.
NEGLIGIBLE_MS = 0.005


def _cell(run: RunStats, name: str) -> str:
    ms = run.cpu.get("per_request_ms", {}).get(name)
    if ms is None:
        return "-"
    echo = run.cpu.get("echo_calls_by_process", {}).get(name)
    return f"{ms:.2f}" + (f" ({echo:.1f})" if echo is not None else "")


def cpu_table(scenario: Scenario) -> list[str]:
    runs = [r for r in scenario.runs if r.cpu.get("per_request_ms")]
    if not runs:
        return []
    names = {
        n
        for r in runs
        for n, ms in r.cpu["per_request_ms"].items()
        if ms >= NEGLIGIBLE_MS and n != TOTAL
    }
    head = " | ".join(f"c={r.concurrency}" for r in runs)
    lines = [
        "",
        f"**{scenario.title}** (`{scenario.name}`): CPU ms per request (in echo calls)",
        "",
        f"| process | {head} |",
        "|---|" + "---:|" * len(runs),
    ]
    for name in ordered(names):
        cells = " | ".join(_cell(r, name) for r in runs)
        lines.append(f"| {PROCESS_NAMES.get(name, name)} | {cells} |")
    lines.append("| **total** | " + " | ".join(f"**{_cell(r, TOTAL)}**" for r in runs) + " |")
    busy = " | ".join(f"{r.cpu.get('cores_busy', 0):.2f}" for r in runs)
    other = " | ".join(
        f"{r.cpu.get('machine_other_ms', 0) / max(r.seconds, 1e-9) / 1000:.2f}" for r in runs
    )
    lines.append(f"| cores busy (tracked) | {busy} |")
    lines.append(f"| cores busy (other work on the machine) | {other} |")
    return lines


def cpu_section(summary: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## CPU per request",
        "",
        "utime+stime from /proc of each process tree, read before and after each run, divided "
        "by its successful calls; PostgreSQL is the postmaster and all its backends (FerretDB's "
        "included); the load generator (ghz or hey) is counted too. In brackets: that cost "
        "in echo calls (the echo scenario's CPU per call, server and ghz, at the same "
        "concurrency in this run). Processes under 0.005 ms per request are left out.",
    ]
    for data in summary.get("scenarios", []):
        lines += cpu_table(Scenario.from_dict(data))
    return lines


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _metric(run: RunStats, metric: str) -> float | None:
    return run.ok_rps if metric == "ok req/s" else run.latency_ms.get(metric.split()[0])


def peers_section(summary: dict[str, Any]) -> list[str]:
    """Our Chat (HTTP door and gRPC) against the HTTP peers at each concurrency."""
    by_name = {d["name"]: Scenario.from_dict(d) for d in summary.get("scenarios", [])}
    ours = [n for n in ("http_chat", "chat") if n in by_name and by_name[n].runs]
    peers = [(n, t) for n, t in HTTP_PEERS if n in by_name and by_name[n].runs]
    lines = ["", "## Against the HTTP peers", ""]
    door = by_name.get("http_chat")
    if door is not None and door.status != "ok":
        lines.append(f"`http_chat`: {door.status} ({door.reason}).")
    if not ours or not peers:
        return [*lines, "", "Not enough scenarios ran to compare."]
    lines += [
        "Same body, same concurrencies; our figures do auth, quota and history, the peers "
        "only proxy. `chat` is gRPC (ghz), the others HTTP (hey).",
        "",
        "| ours | c | metric | ours | "
        + " | ".join(t for _, t in peers)
        + " | "
        + " | ".join(f"ours / {t}" for _, t in peers)
        + " |",
        "|---|---:|---|---:|" + "---:|" * (2 * len(peers)),
    ]
    for name in ours:
        for run in by_name[name].runs:
            c = run.concurrency
            refs = [by_name[p].run_at(c) for p, _ in peers]
            for metric in ("ok req/s", "p50 ms", "p99 ms"):
                mine = _metric(run, metric)
                theirs = [_metric(r, metric) if r else None for r in refs]
                lines.append(
                    f"| `{name}` | {c} | {metric} | {_fmt(mine)} | "
                    + " | ".join(_fmt(t) for t in theirs)
                    + " | "
                    + " | ".join(_ratio(mine, t) for t in theirs)
                    + " |"
                )
    return lines


def settlement_section(summary: dict[str, Any]) -> list[str]:
    data = summary.get("settlement") or {}
    lines = ["", "## Settlement outbox during `chat`", ""]
    if data.get("status") != "ok":
        return [*lines, f"Not measured: {data.get('reason', 'chat did not run')}."]
    lines += [
        "From quota's `llmgw_outbox_batch_size` and `llmgw_outbox_lag_seconds` (commit of the "
        "answer's settlement -> history took the record), scraped before `chat` and after its "
        "entries were delivered; p50/p99 interpolated inside the histogram buckets. "
        f"Entries still pending at the last scrape: {data.get('pending_after')}.",
        "",
        "| figure | observations | mean | p50 | p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, title in (("batch_size", "delivery batch size (entries)"), ("lag_ms", "lag ms")):
        item = data.get(key)
        if item:
            lines.append(
                f"| {title} | {item['observations']} | {_fmt(item['mean'])} "
                f"| {_fmt(item['p50'])} | {_fmt(item['p99'])} |"
            )
    return lines
