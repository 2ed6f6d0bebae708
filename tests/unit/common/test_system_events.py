"""The system-event emitter: never blocks or raises, bounded, written in batches by a
task, safe from another thread; the audit helpers keep credentials out."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway_common import audit, system_events
from gateway_common.system_events import Emitter, Severity, SystemEvent, Writer


class ListWriter(Writer):
    def __init__(self, fail: int = 0) -> None:
        self.written: list[SystemEvent] = []
        self.fail = fail

    async def write(self, events: list[SystemEvent]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("down")
        self.written += events


async def wait_written(writer: ListWriter, n: int) -> None:
    for _ in range(200):
        if len(writer.written) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(writer.written)} written, wanted {n}")


async def test_events_are_buffered_until_start_then_written_and_retried() -> None:
    writer = ListWriter(fail=1)
    emitter = Emitter("quota", writer, retry_seconds=0.01)
    emitter.emit("migrations_applied", Severity.INFO, to_revision="0005", extra=object())
    emitter.start()
    emitter.emit("dead_letter", Severity.ERROR, topic="audit")
    await wait_written(writer, 2)
    await emitter.close()
    first = writer.written[0]
    assert (first.service, first.event, first.severity) == (
        "quota",
        "migrations_applied",
        Severity.INFO,
    )
    assert isinstance(first.details["extra"], str)  # anything not JSON-able becomes text
    assert len({e.event_id for e in writer.written}) == len(writer.written)


async def test_a_full_buffer_drops_the_oldest_and_never_blocks() -> None:
    emitter = Emitter("llm", None, capacity=3)
    for n in range(5):
        emitter.emit("e", Severity.INFO, n=n)
    assert emitter.pending() == 3


async def test_emit_from_another_thread_wakes_the_writer() -> None:
    writer = ListWriter()
    emitter = Emitter("identity", writer)
    emitter.start()
    thread = threading.Thread(target=emitter.emit, args=("migrations_applied", Severity.INFO))
    thread.start()
    thread.join()
    await wait_written(writer, 1)
    await emitter.close()


async def test_the_module_emit_reaches_the_installed_emitter_and_breakers_map() -> None:
    emitter = Emitter("llm", None)
    system_events.emit("ignored", Severity.INFO)  # nothing installed: only logged
    system_events.install(emitter)
    try:
        system_events.emit("store_not_serving", Severity.WARNING, domain="x")
        system_events.circuit_transition("dep-1", "closed", "open")
        emitter.on_transition("dep-1", "open", "half_open")
    finally:
        system_events.install(None)
    assert emitter.pending() == 3
    await emitter.close()


def test_audit_changes_and_credentials() -> None:
    before = {"name": "a", "email": "x@y", "n": 1}
    after = {"name": "a", "email": "z@y", "n": 2}
    changes = audit.diff(before, after, personal=("email",))
    assert [(c.field, c.before, c.after, c.personal) for c in changes] == [
        ("email", "x@y", "z@y", True),
        ("n", 1, 2, False),
    ]
    gone = audit.forgotten(audit.deleted(before, ("name", "email")))
    assert [(c.field, c.before) for c in gone] == [("name", None), ("email", None), ("n", 1)]


@pytest.mark.parametrize("value", ["sk-secret", ""])
def test_a_deployment_event_never_holds_the_credential(value: str) -> None:
    from identity_svc import audit_events as ae
    from identity_svc import domain as d

    old = d.Deployment("x", "t", "c", credential="v1:k:sealed-old")
    new = d.Deployment("x", "t", "c", credential="v1:k:sealed-new", weight=5)
    action, changes = ae.deployment_update(old, new, {"credential", "weight"})
    assert action == "updated"
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("credential", "set", "replaced"),
        ("weight", 1, 5),
    ]
    same = d.Deployment("x", "t", "c", credential="v1:k:sealed-new")
    only, alone = ae.deployment_update(old, same, {"credential"})
    assert only == "credential_replaced" and [c.field for c in alone] == ["credential"]
    assert "sealed" not in repr(changes) and (not value or value not in repr(changes))
