"""The durable local spool of interactions history could not take, and its replayer.

One JSON file per interaction, named by its id, written atomically (temporary file,
fsync, rename, fsync of the directory), so a crash leaves either the whole record or
nothing. The replayer sends the files to history in order of age and deletes each only
after history acknowledged it; history is idempotent on interaction_id, so a crash
between the acknowledgement and the delete cannot make a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from gateway_common.errors import DeadlineExceeded, DomainError, Unavailable
from llm_svc import mapping, metrics
from llm_svc.domain import Interaction
from llm_svc.ports import HistoryPort, SpoolPort

log = logging.getLogger("llm.spool")
SUFFIX = ".json"


class FileSpool(SpoolPort):
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dead = self.dir / "rejected"  # records history refused as invalid, kept for people

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dead.mkdir(exist_ok=True)
        self._update_gauge()

    async def put(self, interaction: Interaction) -> None:
        await asyncio.to_thread(self._write, interaction)

    async def get(self, interaction_id: str) -> Interaction | None:
        path = self._path(interaction_id)
        try:
            text = await asyncio.to_thread(path.read_text)
        except FileNotFoundError:
            return None
        return mapping.interaction_from_json(text)

    def pending(self) -> list[Path]:
        """Spooled files, oldest first."""
        files = [p for p in self.dir.glob(f"*{SUFFIX}") if p.is_file()]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def depth(self) -> int:
        return len(self.pending()) if self.dir.exists() else 0

    def _path(self, interaction_id: str) -> Path:
        safe = "".join(c for c in interaction_id if c.isalnum() or c == "-")
        return self.dir / f"{safe}{SUFFIX}"

    def _write(self, interaction: Interaction) -> None:
        final = self._path(interaction.interaction_id)
        write_atomic(final, mapping.interaction_to_json(interaction).encode())
        self._update_gauge()

    def _update_gauge(self) -> None:
        metrics.SPOOL_DEPTH.set(self.depth())


def write_atomic(final: Path, data: bytes) -> None:
    """Write ``final`` so that a crash leaves the whole file or none: temporary file,
    fsync, rename, fsync of the directory (the rename itself made durable)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class PeriodicReplayer:
    """A background task calling ``replay_once`` every ``interval`` seconds; subclasses say
    what one round replays."""

    def __init__(self, spool: Any, interval: float) -> None:
        self._spool = spool
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._spool.prepare()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.replay_once()
            except Exception:
                log.exception("%s round failed", type(self).__name__)
            await asyncio.sleep(self._interval)

    async def replay_once(self) -> int:
        raise NotImplementedError


class SpoolReplayer(PeriodicReplayer):
    """Send what is spooled to history."""

    def __init__(
        self, spool: FileSpool, history: HistoryPort, interval: float = 1.0, timeout: float = 5.0
    ) -> None:
        super().__init__(spool, interval)
        self._spool: FileSpool = spool
        self._history = history
        self._timeout = timeout

    async def replay_once(self) -> int:
        """Send every spooled file; stop at the first failure. Returns how many were sent."""
        sent = 0
        for path in await asyncio.to_thread(self._spool.pending):
            try:
                interaction = mapping.interaction_from_json(path.read_text())
                await self._history.record(interaction, self._timeout)
            except (Unavailable, DeadlineExceeded):
                break  # history still down: try again later, in the same order
            except (DomainError, ValueError, KeyError) as exc:
                log.error("history refused a spooled record; set aside: %s", exc)
                path.replace(self._spool.dead / path.name)
                continue
            path.unlink(missing_ok=True)
            sent += 1
        metrics.SPOOL_DEPTH.set(self._spool.depth())
        if sent:
            log.info("spool replayed", extra={"sent": sent})
        return sent
