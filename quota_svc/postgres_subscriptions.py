"""assinatura_plano and historico_plano on PostgreSQL."""

# SQL is assembled only from constant fragments (column lists, fixed filters);
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_common.errors import AlreadyExists
from quota_svc import postgres_rows as rows
from quota_svc.domain import Period, Subscription
from quota_svc.ports import (
    PageKey,
    PlanEvent,
    Recorded,
    SubscriptionDraft,
    SubscriptionRepository,
    UsageCount,
)
from quota_svc.postgres_rows import EXCLUSION_VIOLATION, SUB_COLUMNS, uid

_ACTIVE = "s.data_inicio <= :at AND (s.data_fim IS NULL OR s.data_fim > :at)"

# Used in a period: the live counter when it belongs to the period, otherwise the
# ledger's count for it (past months; a future month has none).
_USAGE = f"""
SELECT
  COALESCE(SUM(CASE WHEN s.periodo_inicio = :ps THEN s.requisicoes_utilizadas_mes
      ELSE (SELECT count(*) FROM reserva_requisicao r
            WHERE r.assinatura_id = s.assinatura_id AND r.periodo_inicio = :ps
              AND r.estado IN ('reserved', 'committed')) END), 0) AS used,
  COALESCE(SUM(p.limite_requisicoes_mes) FILTER (WHERE {_ACTIVE}), 0) AS lim,
  count(*) AS n,
  COALESCE(SUM(CASE WHEN s.periodo_inicio = :ps THEN s.tokens_utilizados_mes
      ELSE (SELECT COALESCE(sum(COALESCE(r.tokens_cobrados, r.tokens_reservados)), 0)
            FROM reserva_requisicao r
            WHERE r.assinatura_id = s.assinatura_id AND r.periodo_inicio = :ps
              AND r.estado IN ('reserved', 'committed', 'released')) END), 0) AS tokens,
  SUM(p.limite_tokens_mes) FILTER (WHERE {_ACTIVE}) AS token_lim
FROM assinatura_plano s JOIN plano_de_uso p ON p.plano_id = s.plano_id
WHERE s.distribuidor_id = :t AND (CAST(:u AS uuid) IS NULL OR s.usuario_id = :u)
  AND s.data_inicio < :pe AND (s.data_fim IS NULL OR s.data_fim > :ps)
"""


def _overlap() -> AlreadyExists:
    return AlreadyExists(
        "the user already has a subscription active in that time",
        "ACTIVE_SUBSCRIPTION_EXISTS",
    )


class SqlSubscriptions(SubscriptionRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _one(self, sql: str, params: dict[str, Any]) -> Subscription | None:
        try:
            row = (await self._conn.execute(text(sql), params)).first()
        except IntegrityError as exc:
            if rows.sqlstate(exc) == EXCLUSION_VIOLATION:
                raise _overlap() from None
            raise
        return rows.subscription(row) if row else None

    async def by_request_id(self, tenant_id: str, request_id: str) -> Recorded[Subscription] | None:
        sql = (
            f"SELECT {SUB_COLUMNS}, impressao_requisicao FROM assinatura_plano"
            " WHERE distribuidor_id = :t AND request_id = :r"
        )
        params = {"t": uid(tenant_id), "r": request_id}
        row = (await self._conn.execute(text(sql), params)).first()
        return (rows.subscription(row), row.impressao_requisicao) if row else None

    async def create(self, draft: SubscriptionDraft) -> Subscription | None:
        sql = (
            "INSERT INTO assinatura_plano (usuario_id, plano_id, distribuidor_id, data_inicio,"
            " data_fim, periodo_inicio, fuso_horario, request_id, impressao_requisicao)"
            " VALUES (:u, :p, :t, :s, :e, :ps, :tz, :r, :f)"
            " ON CONFLICT (distribuidor_id, request_id) WHERE request_id IS NOT NULL"
            f" DO NOTHING RETURNING {SUB_COLUMNS}"
        )
        params = {
            "u": uid(draft.user_id),
            "p": uid(draft.plan_id),
            "t": uid(draft.tenant_id),
            "s": draft.start_time,
            "e": draft.end_time,
            "ps": draft.period_start,
            "tz": draft.time_zone,
            "r": draft.request_id or None,
            "f": draft.fingerprint if draft.request_id else None,
        }
        return await self._one(sql, params)

    async def get(
        self, tenant_id: str, subscription_id: str, *, lock: bool = False
    ) -> Subscription | None:
        sql = (
            f"SELECT {SUB_COLUMNS} FROM assinatura_plano"
            " WHERE assinatura_id = :i AND distribuidor_id = :t"
        ) + (" FOR UPDATE" if lock else "")
        return await self._one(sql, {"i": uid(subscription_id), "t": uid(tenant_id)})

    async def list(
        self,
        tenant_id: str,
        user_id: str,
        active_at: datetime | None,
        after: PageKey | None,
        limit: int,
    ) -> list[Subscription]:
        where = ["s.distribuidor_id = :t"]
        params: dict[str, Any] = {"t": uid(tenant_id), "n": limit}
        if user_id:
            where.append("s.usuario_id = :u")
            params["u"] = uid(user_id)
        if active_at is not None:
            where.append(_ACTIVE)
            params["at"] = active_at
        if after is not None:
            where.append("(s.criado_em, s.assinatura_id) > (:c, :i)")
            params.update(c=after[0], i=uid(after[1]))
        sql = (
            f"SELECT {SUB_COLUMNS} FROM assinatura_plano s WHERE {' AND '.join(where)}"
            " ORDER BY s.criado_em, s.assinatura_id LIMIT :n"
        )
        return [rows.subscription(r) for r in await self._conn.execute(text(sql), params)]

    async def set_plan(self, subscription_id: str, plan_id: str) -> Subscription:
        sql = (
            "UPDATE assinatura_plano SET plano_id = :p WHERE assinatura_id = :i"
            f" RETURNING {SUB_COLUMNS}"
        )
        sub = await self._one(sql, {"p": uid(plan_id), "i": uid(subscription_id)})
        assert sub is not None  # locked by the caller
        return sub

    async def set_end(self, subscription_id: str, end_time: datetime) -> Subscription:
        sql = (
            "UPDATE assinatura_plano SET data_fim = :e WHERE assinatura_id = :i"
            f" RETURNING {SUB_COLUMNS}"
        )
        sub = await self._one(sql, {"e": end_time, "i": uid(subscription_id)})
        assert sub is not None  # locked by the caller
        return sub

    async def event_subscription(
        self, tenant_id: str, kind: str, request_id: str
    ) -> Recorded[str] | None:
        sql = (
            "SELECT assinatura_id, impressao_requisicao FROM historico_plano"
            " WHERE distribuidor_id = :t AND evento = :k AND request_id = :r"
        )
        params = {"t": uid(tenant_id), "k": kind, "r": request_id}
        row = (await self._conn.execute(text(sql), params)).first()
        return (str(row[0]), row[1]) if row else None

    async def log_event(self, event: PlanEvent) -> bool:
        sql = text(
            "INSERT INTO historico_plano (assinatura_id, distribuidor_id, evento,"
            " plano_anterior_id, plano_novo_id, data_fim, requisicoes_no_momento,"
            " alterado_por, request_id, impressao_requisicao)"
            " VALUES (:i, :t, :k, :o, :n, :e, :u, :a, :r, :f)"
            " ON CONFLICT (distribuidor_id, evento, request_id) WHERE request_id IS NOT NULL"
            " DO NOTHING RETURNING historico_id"
        )
        params = {
            "i": uid(event.subscription_id),
            "t": uid(event.tenant_id),
            "k": event.kind,
            "o": uid(event.old_plan_id),
            "n": uid(event.new_plan_id),
            "e": event.end_time,
            "u": event.requests_used,
            "a": event.actor,
            "r": event.request_id or None,
            "f": event.fingerprint if event.request_id else None,
        }
        return (await self._conn.execute(sql, params)).first() is not None

    async def zone_of(self, tenant_id: str, user_id: str) -> str | None:
        sql = (
            "SELECT fuso_horario FROM assinatura_plano WHERE distribuidor_id = :t"
            + (" AND usuario_id = :u" if user_id else "")
            + " ORDER BY atualizado_em DESC LIMIT 1"
        )
        params = {"t": uid(tenant_id), "u": uid(user_id)}
        row = (await self._conn.execute(text(sql), params)).first()
        return str(row[0]) if row else None

    async def usage(self, tenant_id: str, user_id: str, period: Period, at: datetime) -> UsageCount:
        params = {
            "t": uid(tenant_id),
            "u": uid(user_id),
            "ps": period.start,
            "pe": period.end,
            "at": at,
        }
        row = (await self._conn.execute(text(_USAGE), params)).one()
        return UsageCount(
            int(row.used),
            int(row.lim),
            int(row.n),
            int(row.tokens),
            None if row.token_lim is None else int(row.token_lim),
        )
