"""System events (history's ``logs_sistema``): what ops need after an incident, beside the
metrics. Dead letters, a store going NOT_SERVING and SERVING again, key-ring rotations,
migrations applied, circuit breakers opening and closing.

Shared code deep in the stack emits them (the outbox relay, the health loop, migrations),
so, as with :mod:`logging`, a process installs one :class:`Emitter` at start and
:func:`emit` reaches it; with none installed an event is only logged. ``emit`` never blocks
and never raises: events wait in a bounded buffer (the oldest go first when it is full,
counted) and a background task hands them to the process's :class:`Writer`:

- identity and quota: their own outbox (topic ``system``), delivered to history by the
  same relay as the audit trail (gateway_common.audit_outbox);
- history: its own ``logs_sistema`` collection, directly;
- llm (no database): history's RecordSystemEvents, best effort (kept in the buffer while
  history is away, lost if llm stops meanwhile).

Details hold ids, counts and names: never a secret, a prompt or an answer.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import enum
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("gateway.system_events")

LOST = Counter(
    "llmgw_system_events_lost_total",
    "System events dropped before they were written (buffer full, or the process stopped).",
    ["service"],
)


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _instance() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class SystemEvent:
    service: str
    event: str
    severity: Severity
    details: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    instance: str = field(default_factory=_instance)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class Writer(abc.ABC):
    """Where a process's events go; idempotent per event id (a batch may be written twice)."""

    @abc.abstractmethod
    async def write(self, events: list[SystemEvent]) -> None:
        """Raises when nothing can be known written: the batch is tried again later."""


class Emitter:
    """The process's emitter: ``emit`` buffers, :meth:`run` writes (see the module doc)."""

    def __init__(
        self,
        service: str,
        writer: Writer | None = None,
        capacity: int = 1000,
        batch: int = 100,
        retry_seconds: float = 1.0,
    ) -> None:
        self.service = service
        self.writer = writer
        self._buffer: collections.deque[SystemEvent] = collections.deque()
        self._capacity = capacity
        self._batch = batch
        self._retry = retry_seconds  # pause after a failed write
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, event: str, severity: Severity, **details: Any) -> SystemEvent:
        item = SystemEvent(self.service, event, severity, _plain(details))
        log.log(_LEVELS[severity], "system event %s", event, extra={"details": item.details})
        if len(self._buffer) >= self._capacity:
            self._buffer.popleft()
            LOST.labels(self.service).inc()
        self._buffer.append(item)
        self._notify()
        return item

    def _notify(self) -> None:
        """Wake the writer; safe from another thread (migrations run in one)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            self._wake.set()
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def on_transition(self, deployment_id: str, old: object, new: object) -> None:
        """A circuit breaker's listener (routing's ``on_transition``): open is a warning."""
        before, after = _state(old), _state(new)
        severity = Severity.WARNING if after == "open" else Severity.INFO
        self.emit(f"circuit_{after}", severity, deployment_id=deployment_id, old=before, new=after)

    def pending(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        """The writer task, on the running loop (once the service serves)."""
        if self._task is None and self.writer is not None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self.run())
            if self._buffer:  # emitted before the start (migrations, say)
                self._wake.set()

    async def flush(self) -> None:
        """Write what is buffered now (raises as the writer does)."""
        while self._buffer and self.writer is not None:
            chunk = [self._buffer[i] for i in range(min(self._batch, len(self._buffer)))]
            await self.writer.write(chunk)
            for _ in chunk:
                self._buffer.popleft()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store or history away: retried
                log.info("system events not written yet", extra={"error": type(exc).__name__})
                await asyncio.sleep(self._retry)
                self._wake.set()

    async def close(self, timeout: float = 2.0) -> None:
        """Last flush (bounded), then stop; what is left is counted as lost."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout)
        if self._buffer:
            LOST.labels(self.service).inc(len(self._buffer))
            self._buffer.clear()


_LEVELS = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING}
_LEVELS[Severity.ERROR] = logging.ERROR
_current: Emitter | None = None


def install(emitter: Emitter | None) -> None:
    """The process's emitter (None: uninstall); set once by the service's bootstrap."""
    global _current
    _current = emitter


def current() -> Emitter | None:
    return _current


def emit(event: str, severity: Severity, **details: Any) -> None:
    """To the installed emitter; only logged when there is none. Never raises."""
    try:
        if _current is not None:
            _current.emit(event, severity, **details)
        else:
            log.log(_LEVELS[severity], "system event %s", event, extra={"details": details})
    except Exception:  # an event must never break what it reports on
        log.warning("system event not emitted", exc_info=True)


def circuit_transition(deployment_id: str, old: object, new: object) -> None:
    """A circuit breaker's ``on_transition`` listener, for any process (routing's hook)."""
    if _current is not None:
        _current.on_transition(deployment_id, old, new)
    else:
        emit(f"circuit_{_state(new)}", Severity.INFO, deployment_id=deployment_id)


def _state(state: object) -> str:
    """A breaker state's name, whether an enum (llm's State) or its text."""
    return str(getattr(state, "value", state)).lower()


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """JSON-able details: scalars kept, anything else as text."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if value is None or isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, bool, int, float)) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out
