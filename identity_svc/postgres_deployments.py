"""SQL adapter for implantacao_llm, a configuration's provider deployments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from identity_svc import ports
from identity_svc.domain import Deployment
from identity_svc.postgres_accounts import SqlRepository, after_time
from identity_svc.postgres_tables import implantacao_llm

_COLUMNS = {
    "base_url": "url_base",
    "credential": "chave_api",
    "upstream_model": "modelo_fornecedor",
    "priority": "prioridade",
    "weight": "peso",
    "attempt_timeout_ms": "tempo_limite_ms",
}
_KEPT = ("priority", "weight", "attempt_timeout_ms")  # stored as given (0 is a value)


def _deployment(row: Mapping[str, Any]) -> Deployment:
    return Deployment(
        deployment_id=row["implantacao_id"],
        tenant_id=row["distribuidor_id"],
        config_id=row["config_llm_id"],
        base_url=row["url_base"] or "",
        credential=row["chave_api"] or "",
        upstream_model=row["modelo_fornecedor"] or "",
        priority=row["prioridade"],
        weight=row["peso"],
        attempt_timeout_ms=row["tempo_limite_ms"],
        create_time=row["criado_em"],
        update_time=row["atualizado_em"],
    )


def _values(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {_COLUMNS[k]: (v if k in _KEPT else v or None) for k, v in changes.items()}


class SqlDeploymentRepository(SqlRepository, ports.DeploymentRepository):
    def _where(self, tenant_id: str, deployment_id: str) -> Any:
        c = implantacao_llm.c
        return and_(c.distribuidor_id == tenant_id, c.implantacao_id == deployment_id)

    async def add(self, deployment: Deployment) -> Deployment:
        values = {
            "implantacao_id": deployment.deployment_id,
            "distribuidor_id": deployment.tenant_id,
            "config_llm_id": deployment.config_id,
        } | _values({k: getattr(deployment, k) for k in _COLUMNS})
        row = await self._one(insert(implantacao_llm).values(values).returning(implantacao_llm))
        assert row is not None
        return _deployment(row)

    async def get(self, tenant_id: str, deployment_id: str) -> Deployment | None:
        row = await self._one(select(implantacao_llm).where(self._where(tenant_id, deployment_id)))
        return _deployment(row) if row else None

    async def in_order(self, tenant_id: str, config_id: str, limit: int) -> list[Deployment]:
        c = implantacao_llm.c
        stmt = (
            select(implantacao_llm)
            .where(c.distribuidor_id == tenant_id, c.config_llm_id == config_id)
            .order_by(c.prioridade, c.criado_em, c.implantacao_id)
            .limit(limit)
        )
        return [_deployment(r) for r in await self._all(stmt)]

    async def count(self, tenant_id: str, config_id: str) -> int:
        c = implantacao_llm.c
        stmt = select(func.count()).where(
            c.distribuidor_id == tenant_id, c.config_llm_id == config_id
        )
        result = await self.conn.execute(stmt)
        return int(result.scalar_one())

    async def list(
        self, tenant_id: str, config_id: str, after: ports.TimeKey | None, limit: int
    ) -> list[Deployment]:
        c = implantacao_llm.c
        stmt = (
            select(implantacao_llm)
            .where(
                c.distribuidor_id == tenant_id,
                c.config_llm_id == config_id,
                after_time(implantacao_llm, "implantacao_id", after),
            )
            .order_by(c.criado_em, c.implantacao_id)
            .limit(limit)
        )
        return [_deployment(r) for r in await self._all(stmt)]

    async def update(
        self, tenant_id: str, deployment_id: str, changes: dict[str, Any]
    ) -> Deployment | None:
        stmt = (
            update(implantacao_llm)
            .where(self._where(tenant_id, deployment_id))
            .values(_values(changes))
            .returning(implantacao_llm)
        )
        row = await self._one(stmt)
        return _deployment(row) if row else None

    async def delete(self, tenant_id: str, deployment_id: str) -> bool:
        return await self._delete(implantacao_llm, self._where(tenant_id, deployment_id))
