"""The settlement outbox seen from quota's metrics: delivery batch sizes and the
answer-to-record lag (``llmgw_outbox_batch_size`` / ``llmgw_outbox_lag_seconds``,
gateway_common/outbox_relay.py), as the difference of two scrapes around the Chat scenarios.
Parsing and arithmetic are pure; :func:`scrape` is the only I/O."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

BATCH = "llmgw_outbox_batch_size"
LAG = "llmgw_outbox_lag_seconds"
PENDING = "llmgw_outbox_entries"

Histogram = dict[str, Any]  # {"buckets": [(le, cumulative count)], "sum": s, "count": n}


async def scrape(url: str) -> str:
    """The Prometheus text of ``url``, '' when it does not answer."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp,
        ):
            return await resp.text() if resp.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError):
        return ""


def histograms(text: str, names: tuple[str, ...] = (BATCH, LAG)) -> dict[str, Histogram]:
    """Each histogram of ``names``, its series summed over labels (topics)."""
    out: dict[str, Histogram] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in names:
            continue
        buckets: dict[float, float] = {}
        total = count = 0.0
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
        out[family.name] = {"buckets": sorted(buckets.items()), "sum": total, "count": count}
    return out


def pending(text: str) -> float | None:
    """Outbox entries still pending (all topics), None when the gauge is not there."""
    found = None
    for family in text_string_to_metric_families(text):
        if family.name == PENDING:
            for sample in family.samples:
                if sample.labels.get("state") == "pending":
                    found = (found or 0.0) + sample.value
    return found


def difference(before: Histogram | None, after: Histogram) -> Histogram:
    if before is None:
        return after
    old = dict(before["buckets"])
    return {
        "buckets": [(le, n - old.get(le, 0.0)) for le, n in after["buckets"]],
        "sum": after["sum"] - before["sum"],
        "count": after["count"] - before["count"],
    }


def quantile(hist: Histogram, q: float) -> float | None:
    """Prometheus' histogram_quantile: linear inside the bucket that holds rank q*count;
    the highest finite bound when the rank falls in +Inf."""
    count = hist["count"]
    if count <= 0:
        return None
    rank, lower, seen = q * count, 0.0, 0.0
    for le, cumulative in hist["buckets"]:
        if cumulative >= rank:
            if math.isinf(le):
                return lower
            inside = cumulative - seen
            return float(lower + (le - lower) * ((rank - seen) / inside if inside > 0 else 1.0))
        lower, seen = le, cumulative
    return lower


def figures(before_text: str, after_text: str) -> dict[str, Any]:
    """Batches, entries and lag between two scrapes: counts, means, p50/p99 estimates."""
    before, after = histograms(before_text), histograms(after_text)
    out: dict[str, Any] = {}
    for name, key, scale in ((BATCH, "batch_size", 1.0), (LAG, "lag_ms", 1000.0)):
        if name not in after:
            continue
        hist = difference(before.get(name), after[name])
        count = hist["count"]
        p50, p99 = quantile(hist, 0.5), quantile(hist, 0.99)
        out[key] = {
            "observations": int(count),
            "mean": round(hist["sum"] / count * scale, 2) if count else None,
            "p50": None if p50 is None else round(p50 * scale, 2),
            "p99": None if p99 is None else round(p99 * scale, 2),
        }
    return out


async def drained(url: str, wait_s: float) -> tuple[str, float | None]:
    """Waits until quota's outbox has no pending entry (or ``wait_s`` passed), so what a
    scenario left to deliver is not delivered during the next; the last scrape and the
    entries still pending."""
    deadline = time.monotonic() + wait_s
    while True:
        text = await scrape(url)
        left = pending(text)
        if not left or time.monotonic() > deadline:
            return text, left
        await asyncio.sleep(0.5)


def _keep(folder: Path, before: str, after: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quota-metrics-before-chat.txt").write_text(before)
    (folder / "quota-metrics-after-chat.txt").write_text(after)


async def after_run(
    url: str, before: str, keep: Path | None = None, wait_s: float = 20.0
) -> dict[str, Any]:
    """The outbox figures since the scrape ``before``, once the relay has delivered the
    pending entries (or ``wait_s`` passed): the lag of every answer is then counted.
    ``keep``: a folder for both scrapes as they were."""
    if not before:
        return {"status": "not measured", "reason": f"{url} did not answer"}
    after, left = await drained(url, wait_s)
    if keep is not None:
        await asyncio.to_thread(_keep, keep, before, after)
    out = figures(before, after)
    if "batch_size" not in out:
        return {"status": "not measured", "reason": "no llmgw_outbox_* histograms at " + url}
    return {"status": "ok", "pending_after": left, **out}
