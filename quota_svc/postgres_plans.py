"""plano_de_uso on PostgreSQL."""

# SQL is assembled only from constant fragments (column lists, fixed filters);
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_common.errors import AlreadyExists, FailedPrecondition
from gateway_common.idempotency import RequestKey
from quota_svc import postgres_rows as rows
from quota_svc.domain import NewPlan, Plan
from quota_svc.ports import PageKey, PlanRepository, Recorded
from quota_svc.postgres_rows import PLAN_COLUMNS, uid

_COLUMNS = {
    "name": "nome_plano",
    "description": "descricao_plano",
    "monthly_request_limit": "limite_requisicoes_mes",
    "requests_per_minute_limit": "limite_requisicoes_minuto",
    "monthly_token_limit": "limite_tokens_mes",
    "allowed_models": "modelos_permitidos",
}


def _name_taken(exc: IntegrityError) -> AlreadyExists:
    return AlreadyExists("a plan with this name already exists", "PLAN_NAME_TAKEN")


_GLOBAL = "'00000000-0000-0000-0000-000000000000'::uuid"
_SCOPE = f"COALESCE(distribuidor_id, {_GLOBAL})"


class SqlPlans(PlanRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def by_request_id(self, tenant_id: str, request_id: str) -> Recorded[Plan] | None:
        sql = (
            f"SELECT {PLAN_COLUMNS}, impressao_requisicao FROM plano_de_uso"
            f" WHERE {_SCOPE} = COALESCE(CAST(:t AS uuid), {_GLOBAL}) AND request_id = :r"
        )
        params = {"t": uid(tenant_id), "r": request_id}
        row = (await self._conn.execute(text(sql), params)).first()
        return (rows.plan(row), row.impressao_requisicao) if row else None

    async def create(self, plan: NewPlan, request: RequestKey) -> Plan | None:
        # request_id is unique per plan tenant (0003): one tenant's ids never meet another's.
        sql = text(
            "INSERT INTO plano_de_uso (distribuidor_id, nome_plano, limite_requisicoes_mes,"
            " descricao_plano, request_id, impressao_requisicao, limite_requisicoes_minuto,"
            " limite_tokens_mes, modelos_permitidos)"
            " VALUES (:t, :n, :l, :d, :r, :f, :rpm, :tok, :models)"
            f" ON CONFLICT ({_SCOPE}, request_id) WHERE request_id IS NOT NULL"
            f" DO NOTHING RETURNING {PLAN_COLUMNS}"
        )
        params = {
            "t": uid(plan.tenant_id),
            "n": plan.name,
            "l": plan.monthly_request_limit,
            "d": plan.description or None,
            "r": request.request_id or None,
            "f": request.fingerprint if request.request_id else None,
            "rpm": plan.requests_per_minute_limit,
            "tok": plan.monthly_token_limit,
            "models": list(plan.allowed_models) or None,
        }
        try:
            row = (await self._conn.execute(sql, params)).first()
        except IntegrityError as exc:
            raise _name_taken(exc) from None
        return rows.plan(row) if row else None

    async def get(self, plan_id: str) -> Plan | None:
        row = (
            await self._conn.execute(
                text(f"SELECT {PLAN_COLUMNS} FROM plano_de_uso WHERE plano_id = :p"),
                {"p": uid(plan_id)},
            )
        ).first()
        return rows.plan(row) if row else None

    async def list(self, tenant_id: str, after: PageKey | None, limit: int) -> list[Plan]:
        where = ["(distribuidor_id IS NULL OR distribuidor_id = :t)"]
        params: dict[str, Any] = {"t": uid(tenant_id), "n": limit}
        if after is not None:
            where.append("(criado_em, plano_id) > (:c, :i)")
            params.update(c=after[0], i=uid(after[1]))
        sql = (
            f"SELECT {PLAN_COLUMNS} FROM plano_de_uso WHERE {' AND '.join(where)}"
            " ORDER BY criado_em, plano_id LIMIT :n"
        )
        result = await self._conn.execute(text(sql), params)
        return [rows.plan(r) for r in result]

    async def update(self, plan_id: str, changes: dict[str, Any]) -> Plan | None:
        sets = ", ".join(f"{_COLUMNS[k]} = :{k}" for k in changes)
        params = {**changes, "p": uid(plan_id)}
        if "description" in params:
            params["description"] = params["description"] or None
        if "allowed_models" in params:
            params["allowed_models"] = list(params["allowed_models"]) or None
        sql = f"UPDATE plano_de_uso SET {sets} WHERE plano_id = :p RETURNING {PLAN_COLUMNS}"
        try:
            row = (await self._conn.execute(text(sql), params)).first()
        except IntegrityError as exc:
            raise _name_taken(exc) from None
        return rows.plan(row) if row else None

    async def delete(self, plan_id: str) -> bool:
        try:
            result = await self._conn.execute(
                text("DELETE FROM plano_de_uso WHERE plano_id = :p RETURNING plano_id"),
                {"p": uid(plan_id)},
            )
        except IntegrityError:
            raise FailedPrecondition("the plan is used by subscriptions", "PLAN_IN_USE") from None
        return result.first() is not None
