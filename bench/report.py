"""report.md from the summary dict (the same dict written to summary.json). Pure."""

from __future__ import annotations

from typing import Any

from bench.summary import Scenario
from bench.tables import cpu_section, peers_section, settlement_section

METHOD_NOTES = [
    "Load generators: ghz for the gRPC scenarios (one HTTP/2 connection, `c` workers, "
    "`--duration-stop wait` so no call is cut off), hey for LiteLLM's HTTP API "
    "(`c` workers, one keep-alive connection each). Both are Go binaries sharing the "
    "2 cores with the suite, its databases and the provider fake. hey drives every HTTP "
    "target with the same body and concurrencies.",
    "req/s counts every finished call; ok req/s only the successful ones (ratios and "
    "targets use ok req/s). Latencies are per call, errors included.",
    "Reserve+Settle: ghz calls one RPC per run, so each concurrency runs Reserve for the "
    "fixed duration with request ids `<prefix><RequestNumber>`, then Settle on exactly "
    "those ids (`-n` = the Reserve count). pairs/s = 1 / (1/Reserve ok req/s + 1/Settle "
    "ok req/s); pair latencies are Reserve + Settle per percentile (exact for the mean, "
    "an upper bound for p95/p99).",
    "Chat is the whole path (auth + quota Reserve/Settle + provider; the record reaches "
    "history through quota's outbox); "
    "LiteLLM is its bare proxy (master key auth, no database, one worker per core: its "
    "documented production setting) and Portkey a stateless Node proxy (`--headless`, the "
    "provider named by `x-portkey-provider` / `x-portkey-custom-host`), both against the "
    "same fake provider with latency 0. `http_chat` is our OpenAI-compatible HTTP door, "
    "the same path as `chat`.",
    "`chat_overload` runs Chat far above capacity: UNAVAILABLE answers (load shed by the "
    "server's concurrency bound) are its point, not failures; other errors are.",
]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(errors.items())) or "0"


def scenario_table(scenario: Scenario) -> list[str]:
    lines = [
        "| c | req/s | ok req/s | p50 ms | p95 ms | p99 ms | mean ms | calls | errors by code "
        "| x echo req/s | x echo p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in scenario.runs:
        lat = r.latency_ms
        lines.append(
            f"| {r.concurrency} | {r.rps:.1f} | {r.ok_rps:.1f} | {_ms(lat.get('p50'))} "
            f"| {_ms(lat.get('p95'))} | {_ms(lat.get('p99'))} | {_ms(lat.get('mean'))} "
            f"| {r.count} | {_errors(r.errors)} | {_ratio(r.ratio_rps)} | {_ratio(r.ratio_p99)} |"
        )
    return lines


def _header(summary: dict[str, Any]) -> list[str]:
    meta = summary.get("meta", {})
    versions = meta.get("versions", {})
    failures = summary.get("failures", [])
    lines = [
        f"# Benchmark {meta.get('started', '')}",
        "",
        f"Machine: **{meta.get('cpu_count', '?')} CPUs** ({meta.get('cpu_model', '?')}), "
        f"{meta.get('platform', '')}. Suite, databases, provider fake and load generators "
        "all on this machine. Load average before the run "
        f"{meta.get('load_average', '?')}, after {meta.get('load_average_end', '?')} "
        "(well above 0 before: other work shared the CPUs and the figures are low).",
        "",
        "Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        f"Settings: {meta.get('duration_s', '?')} s per run at concurrency "
        f"{', '.join(str(c) for c in meta.get('concurrencies', []))}; warm-up "
        f"{meta.get('warmup_s', 0)} s; services at log level {meta.get('log_level', '?')}"
        f"{'; py-spy attached during Chat (numbers perturbed)' if meta.get('profile') else ''}.",
        "",
        f"**Result: {'FAIL' if failures else 'PASS'}**"
        + (" (zero errors, quota counts exact)" if not failures else ""),
    ]
    lines += [f"- {f}" for f in failures]
    return lines


def _targets(summary: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Targets",
        "",
        "| target | c | status | verdict |",
        "|---|---:|---|---|",
    ]
    for t in summary.get("targets", []):
        lines.append(f"| {t['name']} | {t['concurrency']} | {t['status']} | {t['verdict']} |")
    return lines


def _quota(summary: dict[str, Any]) -> list[str]:
    check = summary.get("quota_check") or {}
    lines = ["", "## Quota counts after the run", ""]
    lines.append(f"Status: **{check.get('status', 'not run')}** {check.get('reason', '')}".rstrip())
    rows = check.get("checks", [])
    if rows:
        lines += ["", "| subject | expected (successful calls) | GetUsage used | equal |"]
        lines.append("|---|---:|---:|---|")
        for row in rows:
            lines.append(
                f"| {row['subject']} | {row['expected']} | {row['actual']} "
                f"| {'yes' if row['ok'] else 'NO'} |"
            )
    return lines


def _scenarios(summary: dict[str, Any]) -> list[str]:
    lines = ["", "## Scenarios"]
    for data in summary.get("scenarios", []):
        scenario = Scenario.from_dict(data)
        lines += [
            "",
            f"### {scenario.title} (`{scenario.name}`)",
            "",
            f"Service: {scenario.service}; tool: {scenario.tool}; status: **{scenario.status}**"
            + (f" ({scenario.reason})" if scenario.reason else ""),
        ]
        lines += [f"- {note}" for note in scenario.notes]
        if scenario.runs:
            lines += ["", *scenario_table(scenario)]
        messages = [m for r in scenario.runs for m in r.messages]
        if messages:
            lines += ["", "Errors seen:"] + [f"- `{m}`" for m in messages[:5]]
    return lines


def _extras(summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    seed = summary.get("seed")
    if seed:
        lines += ["", "## Seeding", ""]
        lines += [f"- {k}: {v}" for k, v in seed.items()]
    plots = summary.get("plots", [])
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    profile = summary.get("profile")
    if profile:
        lines += ["", "## Profile", ""]
        lines += [f"- {item}" for item in profile.get("files", [])]
        for key, title in (("top", "by own time"), ("ours", "our code, by inclusive time")):
            lines += _profile_table(profile.get(key, []), title)
    lines += ["", "## Method", ""] + [f"- {n}" for n in METHOD_NOTES]
    lines += [f"- {n}" for n in summary.get("meta", {}).get("notes", [])]
    return lines


def _profile_table(top: list[dict[str, Any]], title: str) -> list[str]:
    if not top:
        return []
    lines = ["", f"| llm_svc during Chat, {title} | self % | total % |", "|---|---:|---:|"]
    lines += [f"| `{t['frame']}` | {t['self_pct']:.1f} | {t['total_pct']:.1f} |" for t in top]
    return lines


def _overload(summary: dict[str, Any]) -> list[str]:
    data = next((d for d in summary.get("scenarios", []) if d["name"] == "chat_overload"), None)
    if data is None:
        return []
    scenario = Scenario.from_dict(data)
    lines = ["", "## Overload (`chat_overload`)", ""]
    if not scenario.runs:
        return [*lines, f"{scenario.status}: {scenario.reason}"]
    lines += ["| c | answers/s | OK/s | p50 ms | p99 ms | UNAVAILABLE share | other errors |"]
    lines.append("|---:|---:|---:|---:|---:|---:|---|")
    for r in scenario.runs:
        shed = r.errors.get("UNAVAILABLE", 0)
        other = {k: v for k, v in r.errors.items() if k != "UNAVAILABLE"}
        share = f"{100.0 * shed / r.count:.1f}%" if r.count else "-"
        lines.append(
            f"| {r.concurrency} | {r.rps:.1f} | {r.ok_rps:.1f} | {_ms(r.latency_ms.get('p50'))} "
            f"| {_ms(r.latency_ms.get('p99'))} | {share} | {_errors(other)} |"
        )
    return lines


def _routed(summary: dict[str, Any]) -> list[str]:
    """chat_routed against the healthy chat of the same run (issue 16's target: no client
    error, at least 80% of its OK/s at every concurrency)."""
    found = {d["name"]: Scenario.from_dict(d) for d in summary.get("scenarios", [])}
    routed, healthy = found.get("chat_routed"), found.get("chat")
    if routed is None or healthy is None:
        return []
    lines = ["", "## Routing (`chat_routed` vs `chat`)", ""]
    if not routed.runs:
        return [*lines, f"{routed.status}: {routed.reason}"]
    lines += ["| c | OK/s routed | OK/s chat | routed / chat | client errors |"]
    lines.append("|---:|---:|---:|---:|---|")
    for r in routed.runs:
        ref = healthy.run_at(r.concurrency)
        ratio = f"{r.ok_rps / ref.ok_rps:.2f}" if ref is not None and ref.ok_rps else "-"
        chat = f"{ref.ok_rps:.1f}" if ref is not None else "-"
        lines.append(
            f"| {r.concurrency} | {r.ok_rps:.1f} | {chat} | {ratio} | {_errors(r.errors)} |"
        )
    return lines


def render(summary: dict[str, Any]) -> str:
    lines = _header(summary) + _targets(summary) + peers_section(summary)
    lines += settlement_section(summary) + _overload(summary) + _routed(summary)
    lines += cpu_section(summary)
    lines += _scenarios(summary) + _quota(summary) + _extras(summary)
    return "\n".join(lines) + "\n"
