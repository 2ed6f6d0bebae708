"""The sources of logs_sistema on real stores: a dead letter, a store going NOT_SERVING and
SERVING again, migrations applied (once, not by the replica that finds nothing to do), and a
key-ring rotation recorded in identity's outbox with the rotation itself."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from grpc_health.v1 import health_pb2_grpc

from gateway_common import db, outbox, system_events
from gateway_common.audit_proto import from_json, system_event_in
from gateway_common.outbox_relay import Relay, Verdict
from gateway_common.server import ServiceSpec
from gateway_common.settings import ServiceSettings
from gateway_common.system_events import Emitter
from identity_svc import migrate as identity_migrate
from identity_svc.crypto import KeyRing
from identity_svc.rotate_keys import rotate
from llmgw.history.v1 import audit_pb2
from quota_svc import migrate as quota_migrate
from tests.integration.common.test_health import NOT_SERVING, SERVING, wait_for_status
from tests.integration.common.test_outbox import FAST, TOPIC, ScriptedSink, _due_now, _put
from tests.integration.common.test_outbox import pool as pool
from tests.support import PG_PORT, Cable, fresh_pg_database, running_server, sqlalchemy_url


@pytest.fixture
def emitter() -> Iterator[Emitter]:
    installed = Emitter("test", None)
    system_events.install(installed)
    yield installed
    system_events.install(None)


def events(emitter: Emitter) -> list[tuple[str, dict[str, object]]]:
    return [(e.event, e.details) for e in emitter._buffer]


async def test_a_dead_letter_is_a_system_event(pool, emitter: Emitter) -> None:
    sink = ScriptedSink()
    sink.script["bad"] = Verdict.REJECTED
    await _put(pool, "bad")
    relay = Relay(outbox.OutboxStore(pool.connection), sink, TOPIC, FAST)
    for _ in range(FAST.max_rejections):
        await _due_now(pool)
        await relay.run_once()
    [(name, details)] = events(emitter)
    assert name == "dead_letter"
    assert details["entry_id"] == "bad" and details["topic"] == TOPIC


async def test_store_transitions_are_system_events(emitter: Emitter) -> None:
    cable = Cable(PG_PORT)
    await cable.plug()
    engine = db.make_engine(
        f"postgresql+psycopg://gateway:gateway@127.0.0.1:{cable.port}/postgres", 1, 0
    )

    async def probe() -> None:
        await db.ping(engine)

    spec = ServiceSpec(
        domain="probe.llmgw", service_names=["probe.v1.S"], register=lambda s: None,
        probe=probe, close=engine.dispose,
    )  # fmt: skip
    async with running_server(ServiceSettings(health_interval_seconds=0.2), spec) as (_, ch):
        stub = health_pb2_grpc.HealthStub(ch)
        await wait_for_status(stub, SERVING)
        await cable.unplug()
        await wait_for_status(stub, NOT_SERVING)
        await cable.plug()
        await wait_for_status(stub, SERVING)
    await cable.unplug()
    assert [name for name, _ in events(emitter)] == ["store_not_serving", "store_serving"]
    assert events(emitter)[0][1] == {"domain": "probe.llmgw"}


def test_migrations_applied_once(emitter: Emitter) -> None:
    with fresh_pg_database("mig_events") as dsn:
        quota_migrate.upgrade(dsn)
        quota_migrate.upgrade(dsn)  # nothing to do: no event
    [(name, details)] = events(emitter)
    assert name == "migrations_applied"
    assert details["from_revision"] == "" and details["to_revision"] == "0005_audit_outbox"


async def test_a_key_ring_rotation_is_recorded_in_the_outbox() -> None:
    ring = KeyRing([("k2", b"\x01" * 32), ("k1", b"\x02" * 32)])
    with fresh_pg_database("rotate_events") as dsn:
        identity_migrate.upgrade(dsn)
        assert await rotate(sqlalchemy_url(dsn), ring) == 0
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT topic, payload FROM outbox").fetchall()
    [(topic, payload)] = rows
    event = system_event_in(from_json(bytes(payload), audit_pb2.SystemEvent()))
    assert topic == "system" and event.event == "key_ring_rotated"
    assert event.details == {"active_key_id": "k2", "re_encrypted": 0}
