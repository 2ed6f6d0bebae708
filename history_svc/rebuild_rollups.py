"""python -m history_svc.rebuild_rollups: recompute the daily rollups from the raw interactions.

Reads every raw interaction of the tenant (all tenants by default), compares the sums with the
stored rollups and prints the differences (missing, stale, orphan keys). Without ``--check`` it
repairs them: a missing rollup is inserted only where none exists, a stale or orphan one is
recomputed by the same guarded refresh as the service uses, so it is safe while history serves
(a batch recorded during the scan may show up as a difference that its own refresh repairs).
Exit status: 0 when equal (or repaired), 1 with ``--check`` when a difference was found.

Settings as history_svc: ``MONGO_URL`` and ``HISTORY_DATABASE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from gateway_common import mongo
from history_svc.config import HistorySettings
from history_svc.domain import RebuildReport
from history_svc.mongo_interactions import MongoInteractionRepository


async def rebuild(settings: HistorySettings, tenant_id: str, repair: bool) -> RebuildReport:
    client = mongo.make_client(settings.mongo_url, settings.mongo_timeout_ms)
    try:
        repo = await MongoInteractionRepository.open(client, settings.database, text_search=False)
        return await repo.rollups.rebuild(tenant_id, repair)
    finally:
        await client.close()


def summary(report: RebuildReport, repaired: bool, seconds: float) -> dict[str, object]:
    sample = 20  # keys listed per kind; the counts are exact

    def keys(kind: list[object]) -> list[object]:
        return [list(vars(k).values()) for k in kind[:sample]]

    return {
        "keys_checked": report.keys_checked,
        "differences": report.differences,
        "missing": len(report.missing),
        "stale": len(report.stale),
        "orphans": len(report.orphans),
        "repaired": repaired and report.differences > 0,
        "seconds": round(seconds, 2),
        "examples": {
            "missing": keys(list(report.missing)),
            "stale": keys(list(report.stale)),
            "orphans": keys(list(report.orphans)),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="", help="only this tenant (default: all)")
    parser.add_argument("--check", action="store_true", help="report only, change nothing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = asyncio.run(rebuild(HistorySettings(), args.tenant, repair=not args.check))
    print(json.dumps(summary(report, not args.check, time.monotonic() - started), indent=2))
    return 1 if args.check and report.differences else 0


if __name__ == "__main__":
    sys.exit(main())
