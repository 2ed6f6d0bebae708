"""Rows of quota's tables -> domain objects, and SQL error classification."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from quota_svc.domain import Period, Plan, Reservation, ReservationState, Subscription

PLAN_COLUMNS = (
    "plano_id, distribuidor_id, nome_plano, limite_requisicoes_mes, descricao_plano, "
    "criado_em, atualizado_em, limite_requisicoes_minuto, limite_tokens_mes, modelos_permitidos"
)
SUB_COLUMNS = (
    "assinatura_id, distribuidor_id, usuario_id, plano_id, data_inicio, data_fim, "
    "requisicoes_utilizadas_mes, periodo_inicio, fuso_horario, criado_em, atualizado_em, "
    "minuto_inicio, requisicoes_minuto, tokens_utilizados_mes"
)
LEDGER_COLUMNS = (
    "request_id, assinatura_id, distribuidor_id, usuario_id, estado, usado, limite, "
    "periodo_inicio, periodo_fim, motivo, expira_em, tokens_reservados, tokens_max, "
    "tokens_cobrados, limite_minuto, usado_minuto, minuto_fim, limite_tokens, tokens_usados"
)


def uid(value: str) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def text_id(value: Any) -> str:
    return "" if value is None else str(value)


def optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def plan(row: Any) -> Plan:
    m = row._mapping
    return Plan(
        plan_id=str(m["plano_id"]),
        tenant_id=text_id(m["distribuidor_id"]),
        name=m["nome_plano"],
        monthly_request_limit=int(m["limite_requisicoes_mes"]),
        description=m["descricao_plano"] or "",
        create_time=m["criado_em"],
        update_time=m["atualizado_em"],
        requests_per_minute_limit=optional_int(m["limite_requisicoes_minuto"]),
        monthly_token_limit=optional_int(m["limite_tokens_mes"]),
        allowed_models=tuple(m["modelos_permitidos"] or ()),
    )


def _fields(row: Any) -> Any:
    """A SQLAlchemy Row's mapping, or a psycopg dict row as it is."""
    return row if isinstance(row, dict) else row._mapping


def subscription(row: Any) -> Subscription:
    m = _fields(row)
    return Subscription(
        subscription_id=str(m["assinatura_id"]),
        tenant_id=str(m["distribuidor_id"]),
        user_id=str(m["usuario_id"]),
        plan_id=str(m["plano_id"]),
        start_time=m["data_inicio"],
        end_time=m["data_fim"],
        requests_used=int(m["requisicoes_utilizadas_mes"]),
        period_start=m["periodo_inicio"],
        time_zone=m["fuso_horario"],
        create_time=m["criado_em"],
        update_time=m["atualizado_em"],
        minute_start=m["minuto_inicio"],
        requests_this_minute=int(m["requisicoes_minuto"]),
        tokens_used=int(m["tokens_utilizados_mes"]),
    )


def reservation(row: Any) -> Reservation:
    m = _fields(row)
    return Reservation(
        request_id=m["request_id"],
        subscription_id=text_id(m["assinatura_id"]),
        state=ReservationState(m["estado"]),
        used=int(m["usado"]),
        limit=int(m["limite"]),
        period=Period(m["periodo_inicio"], m["periodo_fim"]),
        reason=m["motivo"] or "",
        tenant_id=text_id(m["distribuidor_id"]),
        user_id=text_id(m["usuario_id"]),
        expires=m["expira_em"],
        tokens_reserved=int(
            m["tokens_reservados"] if m["tokens_cobrados"] is None else m["tokens_cobrados"]
        ),
        max_tokens=int(m["tokens_max"]),
        minute_limit=optional_int(m["limite_minuto"]),
        minute_used=int(m["usado_minuto"]),
        minute_reset=m["minuto_fim"],
        token_limit=optional_int(m["limite_tokens"]),
        tokens_used=int(m["tokens_usados"]),
    )


def sqlstate(exc: IntegrityError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


UNIQUE_VIOLATION = "23505"
EXCLUSION_VIOLATION = "23P01"
FOREIGN_KEY_VIOLATION = "23503"
