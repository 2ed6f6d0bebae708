"""A PostgreSQL failover while Chats run: identity and quota use a multi-host URL with
``target_session_attrs=read-write`` (primary, then its streaming replica). The primary
crashes (immediate stop), the replica is promoted; both services report NOT_SERVING, then
reconnect to the new primary by themselves and serve. Afterwards the committed count equals
the answers served and history holds each of them once."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc

from gateway_common.healthcheck import check
from llmgw.history.v1 import history_pb2
from tests.e2e.conftest import Suite, running_suite, suite_environment
from tests.e2e.world import Tenant, make_tenant
from tests.ops.pgtools import Cluster, scratch

RESERVATION_TTL = 6.0  # a reservation orphaned by the crash is refunded this soon


def failover_url(db: str, *clusters: Cluster) -> str:
    hosts = "&".join(f"host=127.0.0.1:{c.port}" for c in clusters)
    return f"postgresql+psycopg://gateway:gateway@/{db}?{hosts}&target_session_attrs=read-write"


class Load:
    """Two users chatting without pause; what each call ended as, and when."""

    def __init__(self, tenants: list[Tenant]) -> None:
        self.tenants = tenants
        self.outcomes: Counter[str] = Counter()
        self.served: dict[str, int] = {t.tenant_id: 0 for t in tenants}
        self.ok_after = 0.0  # answers after this moment count in ok_since_mark
        self.ok_since_mark = 0
        self.running = True

    async def user(self, tenant: Tenant) -> None:
        i = 0
        while self.running:
            try:
                await tenant.chat(f"failover {i}")
                self.outcomes["OK"] += 1
                self.served[tenant.tenant_id] += 1
                if asyncio.get_running_loop().time() > self.ok_after > 0:
                    self.ok_since_mark += 1
            except grpc.aio.AioRpcError as exc:
                self.outcomes[exc.code().name] += 1
                await asyncio.sleep(0.05)
            i += 1


async def watch(suite: Suite, seen: dict[str, set[str]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name in ("identity", "quota"):
            seen[name].add(await check(suite.targets[name], timeout=0.5))
        await asyncio.sleep(0.1)


async def wait_serving(suite: Suite, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        states = {await check(suite.targets[n], timeout=0.5) for n in ("identity", "quota")}
        if states == {"SERVING"}:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not SERVING again after the promotion: {suite.logs()[-3000:]}")


async def test_promoting_the_replica_while_chats_run(log_dir) -> None:
    with scratch("failover") as folder:
        primary = Cluster.init(folder)
        primary.start()
        replica: Cluster | None = None
        try:
            primary.create_database("identity")
            primary.create_database("quota")
            replica = primary.replica(folder)
            replica.start()
            # Commits wait for the replica: an acknowledged answer survives the crash.
            primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            primary.psql("SELECT pg_reload_conf()")
            overrides = {
                "IDENTITY_DATABASE_URL": failover_url("identity", primary, replica),
                "QUOTA_DATABASE_URL": failover_url("quota", primary, replica),
                "IDENTITY_HEALTH_INTERVAL_SECONDS": "0.2",
                "QUOTA_HEALTH_INTERVAL_SECONDS": "0.2",
                "QUOTA_RESERVATION_TTL_SECONDS": str(RESERVATION_TTL),
                "QUOTA_SETTLE_INTERVAL_SECONDS": "0.5",
            }
            with suite_environment(overrides) as env:
                async with running_suite(env, log_dir) as suite:
                    await drill(suite, primary, replica)
        finally:
            for cluster in (replica, primary):
                if cluster is not None:
                    cluster.ensure_stopped()


async def drill(suite: Suite, primary: Cluster, replica: Cluster) -> None:
    tenants = [await make_tenant(suite, limit=100_000) for _ in range(2)]
    load = Load(tenants)
    seen: dict[str, set[str]] = {"identity": set(), "quota": set()}
    stop_watch = asyncio.Event()
    users = [asyncio.create_task(load.user(t)) for t in tenants]
    watcher = asyncio.create_task(watch(suite, seen, stop_watch))
    try:
        await asyncio.sleep(2.0)
        assert load.outcomes["OK"] > 0, load.outcomes
        crashed = asyncio.get_running_loop().time()
        await asyncio.to_thread(primary.stop, "immediate")  # the primary crashes
        for _ in range(50):
            if all("NOT_SERVING" in s for s in seen.values()):
                break
            await asyncio.sleep(0.1)
        await asyncio.to_thread(replica.promote)
        await wait_serving(suite)
        load.ok_after = asyncio.get_running_loop().time()
        recovered = load.ok_after - crashed
        await asyncio.sleep(3.0)
    finally:
        load.running = False
        await asyncio.gather(*users)
        stop_watch.set()
        await watcher
    assert all("NOT_SERVING" in s for s in seen.values()), seen
    assert load.ok_since_mark > 10, (load.outcomes, suite.logs()[-3000:])
    # Reservations the crash orphaned are refunded after their TTL by the sweep.
    await asyncio.sleep(RESERVATION_TTL + 2.0)
    for tenant in tenants:
        served = load.served[tenant.tenant_id]
        assert await tenant.used() == served, (served, load.outcomes)
        found = await tenant.interactions(want=served, timeout=30)
        ok = [i.interaction_id for i in found if i.status == history_pb2.INTERACTION_STATUS_OK]
        assert len(ok) == len(set(ok)) == served, (len(ok), served)
    print(f"failover: SERVING again {recovered:.1f}s after the crash; calls {dict(load.outcomes)}")
