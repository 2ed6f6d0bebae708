"""The revocation feed in PostgreSQL (evento_revogacao, migration 0003)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_common.revocation import Revocation
from identity_svc import ports
from identity_svc.postgres_tables import evento_revogacao


class SqlRevocationLog(ports.RevocationLog):
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def record(self, kind: str, target_id: str) -> Revocation:
        # Writers queue on this lock until they commit, so sequences become visible in
        # increasing order: a poller's cursor never passes a sequence still uncommitted.
        # Readers (ACCESS SHARE) are not blocked.
        await self.conn.execute(text("LOCK TABLE evento_revogacao IN EXCLUSIVE MODE"))
        stmt = (
            insert(evento_revogacao)
            .values(alvo=kind, alvo_id=target_id)
            .returning(evento_revogacao.c.sequencia)
        )
        sequence = (await self.conn.execute(stmt)).scalar_one()
        return Revocation(int(sequence), kind, target_id)

    async def after(self, sequence: int, limit: int) -> list[Revocation]:
        t = evento_revogacao.c
        stmt = (
            select(t.sequencia, t.alvo, t.alvo_id)
            .where(t.sequencia > sequence)
            .order_by(t.sequencia)
            .limit(limit)
        )
        rows = (await self.conn.execute(stmt)).all()
        return [Revocation(int(r.sequencia), r.alvo, str(r.alvo_id)) for r in rows]

    async def prune(self, before: datetime) -> int:
        stmt = delete(evento_revogacao).where(evento_revogacao.c.criado_em < before)
        return int((await self.conn.execute(stmt)).rowcount or 0)
