"""Does search slow another tenant? (hardening finding 1; dev only, not a test: too noisy
for a shared 2-core machine to assert on). A history server runs in its own process without a text
index (history scans); tenant A keeps two worst-case searches running over its long interactions
while tenant B's List and Record p50 are measured, against the same figures idle.

    python -m devtools.search_pressure [--max-seconds 5] [--keyword-chars 200] [--per-tenant 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import statistics
import time
import uuid
from typing import Any

import grpc

from devtools import ferretdb_tune
from gateway_common import mongo, service_auth
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal, Role
from gateway_common.server import run
from history_svc import mapping
from history_svc.bootstrap import build
from history_svc.config import HistorySettings
from history_svc.domain import Interaction, utc_millis
from llmgw.history.v1 import history_pb2 as pb
from llmgw.history.v1 import history_pb2_grpc

KEYS = {
    "key-a": Principal(Role.USER, tenant_id="tenant-a", user_id="user-a", key_id="ka"),
    "key-b": Principal(Role.TENANT_ADMIN, tenant_id="tenant-b", user_id="admin-b", key_id="kb"),
}


class StaticAuthenticator(Authenticator):
    def __init__(self) -> None:  # no identity: two fixed keys
        pass

    async def authenticate(self, api_key: str, timeout: float = 5.0) -> Principal:
        return KEYS[api_key]


def serve(settings: HistorySettings) -> None:
    spec = build(settings, authenticator=StaticAuthenticator(), text_search=False)
    asyncio.run(run(settings, spec))


def item(tenant: str, user: str, text: str) -> pb.Interaction:
    return mapping.interaction_out(
        Interaction(
            str(uuid.uuid4()),
            tenant,
            user,
            utc_millis(dt.datetime.now(dt.UTC)),
            question=text,
            answer=text,
            model_id="m",
        )
    )


async def p50(call: Any, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def drive(target: str, args: argparse.Namespace) -> None:
    channel = grpc.aio.insecure_channel(target)
    public = history_pb2_grpc.HistoryServiceStub(channel)
    internal = history_pb2_grpc.HistoryInternalServiceStub(channel)
    await channel.channel_ready()
    internal_md = ((service_auth.SERVICE_TOKEN, service_auth.dev_token("quota")),)  # as the relay
    for _ in range(args.long // 3):
        batch = [item("tenant-a", "user-a", "a" * 262_144) for _ in range(3)]
        await internal.RecordInteractions(
            pb.RecordInteractionsRequest(interactions=batch), metadata=internal_md, timeout=60
        )
    small = [item("tenant-b", "user-b", "hello there") for _ in range(50)]
    await internal.RecordInteractions(
        pb.RecordInteractionsRequest(interactions=small), metadata=internal_md, timeout=60
    )
    # The GIN index the local stack adds (scripts/stack.sh), so tenant filters are indexed.
    pg = f"postgresql://gateway:gateway@127.0.0.1:{os.environ.get('PG_PORT', '55432')}/ferretdb"
    await asyncio.to_thread(ferretdb_tune.tune, pg, args.database)
    b_md = (("authorization", "Bearer key-b"),)

    async def list_b() -> None:
        await public.ListInteractions(
            pb.ListInteractionsRequest(tenant_id="tenant-b", page_size=20), metadata=b_md
        )

    async def record_b() -> None:
        await internal.RecordInteractions(
            pb.RecordInteractionsRequest(interactions=[item("tenant-b", "user-b", "hi")]),
            metadata=internal_md,
        )

    idle = (await p50(list_b, args.n), await p50(record_b, args.n))
    keyword = "a" * (args.keyword_chars - 1) + "b"
    stop = asyncio.Event()
    outcomes: list[str] = []

    async def attacker() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await public.SearchInteractions(
                    pb.SearchInteractionsRequest(tenant_id="tenant-a", query=keyword),
                    metadata=(("authorization", "Bearer key-a"),),
                    timeout=120,
                )
                outcome = "OK"
            except grpc.aio.AioRpcError as exc:
                outcome = exc.code().name
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    await asyncio.sleep(args.backoff)  # a client's retry delay
            outcomes.append(f"{outcome} {time.perf_counter() - started:.1f}s")

    attackers = [asyncio.create_task(attacker()) for _ in range(2)]
    await asyncio.sleep(1.0)
    busy = (await p50(list_b, args.n), await p50(record_b, args.n))
    stop.set()
    await asyncio.gather(*attackers)
    print(f"idle  p50: List {idle[0]:.1f} ms, Record {idle[1]:.1f} ms")
    print(f"busy  p50: List {busy[0]:.1f} ms, Record {busy[1]:.1f} ms (2 searches running)")
    print(f"ratio: List {busy[0] / idle[0]:.2f}x, Record {busy[1] / idle[1]:.2f}x")
    print("searches:", ", ".join(outcomes))
    await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--keyword-chars", type=int, default=200)
    parser.add_argument("--per-tenant", type=int, default=2)
    parser.add_argument("--backoff", type=float, default=0.1, help="after RESOURCE_EXHAUSTED")
    parser.add_argument("--share", type=float, default=0.25, help="HISTORY_SEARCH_SHARE")
    parser.add_argument("--long", type=int, default=12, help="tenant A's long interactions")
    parser.add_argument("--n", type=int, default=100, help="calls per p50")
    parser.add_argument("--port", type=int, default=50099)
    args = parser.parse_args()
    database = args.database = f"search_pressure_{uuid.uuid4().hex[:8]}"
    settings = HistorySettings().model_copy(
        update={
            "port": args.port,
            "host": "127.0.0.1",
            "database": database,
            "search_max_seconds": args.max_seconds,
            "search_per_tenant": args.per_tenant,
            "search_share": args.share,
            "metrics_port": 0,
        }
    )
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(settings,))
    server.start()
    try:
        asyncio.run(drive(f"127.0.0.1:{args.port}", args))
    finally:
        server.terminate()
        server.join()
        asyncio.run(_drop(settings))


async def _drop(settings: HistorySettings) -> None:
    client = mongo.make_client(settings.mongo_url)
    await client.drop_database(settings.database)
    await client.close()


if __name__ == "__main__":
    main()
