"""The durable spool of quota Commits that failed after an answer was served, and its
replayer.

An answer returned to the caller must be charged. When Commit fails for a reason that
may pass (quota unreachable after the channel's retries, a timeout), the request id is
written to ``<LLM_SPOOL_DIR>/commits/<request_id>.commit`` (atomic write, as the
interaction spool does) and a background task retries Commit until quota answers.
Commit is idempotent on the request id, so a retry after a Commit that did land (but
whose answer was lost) changes nothing; and quota honours a Commit even after its
settlement expired (refunded) the reservation (the "late commit"), so the request is
charged exactly once however long quota was away.

An entry is deleted only when quota answered: OK, NOT_FOUND (nothing to charge), or
FAILED_PRECONDITION (the reservation was released: an answer was served but refunded,
which is logged at ERROR). Other refusals are set aside in ``commits/rejected/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from gateway_common.errors import DomainError, FailedPrecondition, NotFound
from llm_svc import metrics
from llm_svc.ports import TRANSIENT, CommitSpoolPort, QuotaPort
from llm_svc.spool import PeriodicReplayer, write_atomic

log = logging.getLogger("llm.commit_spool")
SUFFIX = ".commit"


class CommitSpool(CommitSpoolPort):
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dead = self.dir / "rejected"  # commits quota refused for good, kept for people

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dead.mkdir(exist_ok=True)
        self._update_gauge()

    async def put(self, request_id: str) -> None:
        await asyncio.to_thread(self._write, request_id)

    def pending(self) -> list[Path]:
        """Pending commits, oldest first."""
        if not self.dir.exists():
            return []
        files = [p for p in self.dir.glob(f"*{SUFFIX}") if p.is_file()]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def depth(self) -> int:
        return len(self.pending())

    def path(self, request_id: str) -> Path:
        """Named by the request id (ours are UUIDs); anything else by its hash."""
        plain = all(c.isascii() and (c.isalnum() or c in "-_") for c in request_id)
        if plain and 0 < len(request_id) <= 128:
            name = request_id
        else:
            name = hashlib.sha256(request_id.encode()).hexdigest()
        return self.dir / f"{name}{SUFFIX}"

    def _write(self, request_id: str) -> None:
        write_atomic(self.path(request_id), request_id.encode())
        self._update_gauge()

    def _update_gauge(self) -> None:
        metrics.COMMIT_SPOOL_DEPTH.set(self.depth())


class CommitReplayer(PeriodicReplayer):
    """Retry the spooled Commits."""

    def __init__(
        self, spool: CommitSpool, quota: QuotaPort, interval: float = 1.0, timeout: float = 5.0
    ) -> None:
        super().__init__(spool, interval)
        self._spool: CommitSpool = spool
        self._quota = quota
        self._timeout = timeout

    async def replay_once(self) -> int:
        """Retry every pending Commit; stop at the first transient failure (quota still
        away: the rest waits, in the same order). Returns how many were charged."""
        charged = 0
        for path in await asyncio.to_thread(self._spool.pending):
            try:
                request_id = (await asyncio.to_thread(path.read_bytes)).decode()
            except FileNotFoundError:
                continue  # another round took it meanwhile
            try:
                await self._quota.commit(request_id, self._timeout)
            except TRANSIENT:
                break
            except DomainError as exc:
                _refused(path, request_id, exc, self._spool.dead)
                continue
            path.unlink(missing_ok=True)
            charged += 1
        metrics.COMMIT_SPOOL_DEPTH.set(self._spool.depth())
        if charged:
            log.info("spooled commits charged", extra={"charged": charged})
        return charged


def _refused(path: Path, request_id: str, exc: DomainError, dead: Path) -> None:
    """Quota answered with a refusal: retrying cannot change it."""
    if isinstance(exc, FailedPrecondition):
        # Released (or expired, on a quota without late commits): served but not charged.
        log.error(
            "spooled commit refused (%s): an answer was served but not charged",
            exc.reason,
            extra={"rid": request_id},
        )
        path.unlink(missing_ok=True)
    elif isinstance(exc, NotFound):
        log.warning("spooled commit of an unknown reservation", extra={"rid": request_id})
        path.unlink(missing_ok=True)
    else:
        log.error("quota refused a spooled commit; set aside: %s", exc, extra={"rid": request_id})
        dead.mkdir(parents=True, exist_ok=True)
        path.replace(dead / path.name)
