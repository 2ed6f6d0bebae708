"""reserva_requisicao (the ledger) and the counter in assinatura_plano.

Every counting operation is one SQL statement, so it is atomic on its own:
the counter and the ledger row change together or not at all."""

# SQL is assembled only from constant fragments (column lists, fixed filters);
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from quota_svc import rows
from quota_svc.domain import LATE_COMMIT, Reservation
from quota_svc.ports import DuplicateRequest, LedgerRepository, ReserveCall, Standing
from quota_svc.rows import LEDGER_COLUMNS, SUB_COLUMNS, uid

_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)")


def _sql(query: str) -> str:
    """``:name`` placeholders (readable, as in the other repositories) -> psycopg's."""
    return _NAMED.sub(r"%(\1)s", query)


# The subscription row lock serialises a user's reserves; the re-check after the
# wait sees the new count, so exactly `limit` succeed. A new month starts from
# zero (the CASE). The ledger INSERT has no ON CONFLICT on purpose: a replayed
# request_id raises unique_violation, which undoes this statement's UPDATE.
_RESERVE = _sql(f"""
WITH upd AS (
  UPDATE assinatura_plano s SET
    requisicoes_utilizadas_mes = CASE WHEN s.periodo_inicio < :ps THEN 1
                                      ELSE s.requisicoes_utilizadas_mes + 1 END,
    periodo_inicio = GREATEST(s.periodo_inicio, :ps),
    fuso_horario = :tz
  FROM plano_de_uso p
  WHERE p.plano_id = s.plano_id AND s.usuario_id = :u AND s.distribuidor_id = :t
    AND s.data_inicio <= :now AND (s.data_fim IS NULL OR s.data_fim > :now)
    AND CASE WHEN s.periodo_inicio < :ps THEN 0 ELSE s.requisicoes_utilizadas_mes END
        < p.limite_requisicoes_mes
  RETURNING s.assinatura_id, s.requisicoes_utilizadas_mes, s.periodo_inicio,
            p.limite_requisicoes_mes
)
INSERT INTO reserva_requisicao (request_id, assinatura_id, distribuidor_id, usuario_id,
  periodo_inicio, periodo_fim, estado, usado, limite, expira_em)
SELECT :r, assinatura_id, :t, :u, periodo_inicio, :pe, 'reserved',
       requisicoes_utilizadas_mes, limite_requisicoes_mes, :exp FROM upd
RETURNING {LEDGER_COLUMNS}
""")

_STANDINGS = _sql(f"""
SELECT {", ".join("s." + c.strip() for c in SUB_COLUMNS.split(","))},
       p.limite_requisicoes_mes
FROM assinatura_plano s JOIN plano_de_uso p ON p.plano_id = s.plano_id
WHERE s.usuario_id = :u AND s.distribuidor_id = :t
ORDER BY s.data_inicio DESC LIMIT 10
""")

_REFUSE = _sql(f"""
INSERT INTO reserva_requisicao (request_id, assinatura_id, distribuidor_id, usuario_id,
  periodo_inicio, periodo_fim, estado, usado, limite, motivo, liquidado_em)
VALUES (:r, :a, :t, :u, :ps, :pe, 'refused', :used, :lim, :why, now())
ON CONFLICT (request_id) DO NOTHING RETURNING {LEDGER_COLUMNS}
""")

# Commit also takes a reservation the settlement refunded (expired): llm_svc commits
# only an answer it served, so a commit that could not reach us in time (it retries
# from its spool) still charges the request: the "late commit". The CASE reads the
# state the UPDATE found (after waiting for a concurrent sweep, if any), so motivo
# 'LATE_COMMIT' marks exactly the rows refunded before and counted back here, once:
# a replay finds the row committed and changes nothing. The count goes back only into
# the period the reservation was counted in (after a month change the old period's
# figure is the ledger, which now says committed); no limit check, as it was served.
_COMMIT = _sql(f"""
WITH led AS (
  UPDATE reserva_requisicao r SET estado = 'committed', liquidado_em = now(),
    motivo = CASE WHEN r.estado = 'expired' THEN '{LATE_COMMIT}' ELSE r.motivo END
  WHERE r.request_id = :r AND r.estado IN ('reserved', 'expired')
  RETURNING {LEDGER_COLUMNS}
), sub AS (
  UPDATE assinatura_plano s SET requisicoes_utilizadas_mes = s.requisicoes_utilizadas_mes + 1
  FROM led WHERE led.motivo = '{LATE_COMMIT}' AND s.assinatura_id = led.assinatura_id
    AND s.periodo_inicio = led.periodo_inicio
  RETURNING 1
)
SELECT {LEDGER_COLUMNS} FROM led
""")

# The refund only touches the period the reservation was counted in: once the
# month rolled over, the counter already restarted from zero.
_RELEASE = _sql("""
WITH r AS (
  UPDATE reserva_requisicao SET estado = 'released', motivo = :why, liquidado_em = now()
  WHERE request_id = :r AND estado = 'reserved'
  RETURNING assinatura_id, periodo_inicio, usado
), sub AS (
  UPDATE assinatura_plano s
  SET requisicoes_utilizadas_mes = GREATEST(s.requisicoes_utilizadas_mes - 1, 0)
  FROM r WHERE s.assinatura_id = r.assinatura_id AND s.periodo_inicio = r.periodo_inicio
  RETURNING s.requisicoes_utilizadas_mes
)
SELECT r.usado, (SELECT requisicoes_utilizadas_mes FROM sub) AS agora FROM r
""")

_GET = _sql(f"SELECT {LEDGER_COLUMNS} FROM reserva_requisicao WHERE request_id = :r")

_RECORD_RELEASE = _sql(
    f"UPDATE reserva_requisicao SET usado = :n WHERE request_id = :r RETURNING {LEDGER_COLUMNS}"
)

# SKIP LOCKED: replicas sweeping together take disjoint rows.
_SETTLE = _sql("""
WITH due AS (
  SELECT request_id FROM reserva_requisicao
  WHERE estado = 'reserved' AND expira_em <= :now
  ORDER BY expira_em LIMIT :n FOR UPDATE SKIP LOCKED
), led AS (
  UPDATE reserva_requisicao r SET estado = 'expired', motivo = 'TTL_EXPIRED',
    liquidado_em = now()
  FROM due WHERE r.request_id = due.request_id
  RETURNING r.assinatura_id, r.periodo_inicio
), agg AS (
  SELECT assinatura_id, periodo_inicio, count(*) AS n FROM led GROUP BY 1, 2
), sub AS (
  UPDATE assinatura_plano s
  SET requisicoes_utilizadas_mes = GREATEST(s.requisicoes_utilizadas_mes - agg.n, 0)
  FROM agg WHERE s.assinatura_id = agg.assinatura_id AND s.periodo_inicio = agg.periodo_inicio
  RETURNING 1
)
SELECT count(*) FROM led
""")


class PgLedger(LedgerRepository):
    """On a psycopg connection in autocommit mode: the hot path skips SQLAlchemy, whose
    async execution costs ~3x psycopg's own CPU per statement (measured: 215 vs 70 us)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def _one(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        async with self._conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params, prepare=True)
            return await cur.fetchone()

    async def reserve(self, call: ReserveCall) -> Reservation | None:
        params = {
            "r": call.request_id,
            "t": uid(call.tenant_id),
            "u": uid(call.user_id),
            "now": call.now,
            "ps": call.period.start,
            "pe": call.period.end,
            "tz": call.time_zone,
            "exp": call.expires,
        }
        try:
            row = await self._one(_RESERVE, params)
        except psycopg.errors.UniqueViolation:
            raise DuplicateRequest(call.request_id) from None
        return rows.reservation(row) if row else None

    async def standings(self, tenant_id: str, user_id: str) -> list[Standing]:
        async with self._conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_STANDINGS, {"u": uid(user_id), "t": uid(tenant_id)})
            found = await cur.fetchall()
        return [Standing(rows.subscription(r), int(r["limite_requisicoes_mes"])) for r in found]

    async def store_refusal(self, call: ReserveCall, refusal: Reservation) -> bool:
        params = {
            "r": call.request_id,
            "a": uid(refusal.subscription_id),
            "t": uid(call.tenant_id),
            "u": uid(call.user_id),
            "ps": refusal.period.start,
            "pe": refusal.period.end,
            "used": refusal.used,
            "lim": refusal.limit,
            "why": refusal.reason,
        }
        return await self._one(_REFUSE, params) is not None

    async def get(self, request_id: str) -> Reservation | None:
        row = await self._one(_GET, {"r": request_id})
        return rows.reservation(row) if row else None

    async def commit(self, request_id: str) -> Reservation | None:
        row = await self._one(_COMMIT, {"r": request_id})
        return rows.reservation(row) if row else None

    async def release(self, request_id: str, reason: str) -> Reservation | None:
        row = await self._one(_RELEASE, {"r": request_id, "why": reason})
        if row is None:
            return None
        # After a month change the old period's count is frozen: keep its number.
        now_used = row["agora"] if row["agora"] is not None else row["usado"]
        recorded = await self._one(_RECORD_RELEASE, {"n": now_used, "r": request_id})
        assert recorded is not None  # the row was just updated
        return rows.reservation(recorded)

    async def settle_expired(self, now: datetime, batch: int) -> int:
        row = await self._one(_SETTLE, {"now": now, "n": batch})
        return int(row["count"]) if row else 0
