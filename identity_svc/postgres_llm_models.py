"""SQL adapters for llm_modelo and configuracao_llm (see repository.py for the rules)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, insert, literal, or_, select, tuple_, update

from identity_svc import ports
from identity_svc.domain import AccessType, Model, ModelConfig
from identity_svc.postgres_accounts import SqlRepository, after_time
from identity_svc.postgres_tables import configuracao_llm, llm_modelo

_MODEL_COLUMNS = {
    "name": "nome_modelo",
    "description": "descricao_modelo",
    "provider": "fornecedor",
    "access_type": "tipo_acesso",
    "input_price_nanos_per_million": "preco_entrada_milhao",
    "output_price_nanos_per_million": "preco_saida_milhao",
}
_NANOS = Decimal(10**9)


def _nanos(value: Decimal | None) -> int | None:
    return None if value is None else int(value * _NANOS)


def _units(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value) / _NANOS


_CONFIG_COLUMNS = {
    "token_limit": "limite_tokens",
    "extra_parameters": "parametros_extras",
    "allowed_extra_parameters": "parametros_extras_permitidos",
    "fallback_models": "modelos_reserva",
    "fallback_on_context_length": "reserva_contexto",
}


def _model(row: Mapping[str, Any]) -> Model:
    return Model(
        model_id=row["llm_id"],
        tenant_id=row["distribuidor_id"] or "",
        name=row["nome_modelo"],
        description=row["descricao_modelo"] or "",
        provider=row["fornecedor"],
        access_type=AccessType(row["tipo_acesso"]),
        create_time=row["criado_em"],
        update_time=row["atualizado_em"],
        input_price_nanos_per_million=_nanos(row["preco_entrada_milhao"]),
        output_price_nanos_per_million=_nanos(row["preco_saida_milhao"]),
    )


def _model_value(key: str, value: Any) -> Any:
    if key == "access_type":
        return value.value
    if key.endswith("_price_nanos_per_million"):
        return _units(value)
    return value or None if key == "description" else value


def _config(row: Mapping[str, Any]) -> ModelConfig:
    return ModelConfig(
        config_id=row["config_llm_id"],
        tenant_id=row["distribuidor_id"],
        model_id=row["llm_id"],
        token_limit=row["limite_tokens"],
        extra_parameters=dict(row["parametros_extras"] or {}),
        allowed_extra_parameters=tuple(row["parametros_extras_permitidos"] or ()),
        fallback_models=tuple(row["modelos_reserva"] or ()),
        fallback_on_context_length=bool(row["reserva_contexto"]),
        create_time=row["criado_em"],
        update_time=row["atualizado_em"],
    )


def _config_value(key: str, value: Any) -> Any:
    if key in ("allowed_extra_parameters", "fallback_models"):
        return list(value)
    if key == "fallback_on_context_length":
        return bool(value)
    return value if key == "token_limit" else (value or None)


class SqlModelRepository(SqlRepository, ports.ModelRepository):
    async def add(self, model: Model) -> Model:
        values = {"llm_id": model.model_id, "distribuidor_id": model.tenant_id or None}
        fields = {k: getattr(model, k) for k in _MODEL_COLUMNS}
        values |= {_MODEL_COLUMNS[k]: _model_value(k, v) for k, v in fields.items()}
        row = await self._one(insert(llm_modelo).values(values).returning(llm_modelo))
        assert row is not None
        return _model(row)

    async def get(self, model_id: str) -> Model | None:
        row = await self._one(select(llm_modelo).where(llm_modelo.c.llm_id == model_id))
        return _model(row) if row else None

    async def by_name(self, tenant_id: str, name: str) -> Model | None:
        c = llm_modelo.c
        scope = c.distribuidor_id == tenant_id if tenant_id else c.distribuidor_id.is_(None)
        row = await self._one(select(llm_modelo).where(scope, c.nome_modelo == name))
        return _model(row) if row else None

    async def list(
        self, tenant_id: str, enabled_only: bool, after: ports.NameKey | None, limit: int
    ) -> list[Model]:
        c = llm_modelo.c
        if not tenant_id:
            scope: Any = c.distribuidor_id.is_(None)
        elif enabled_only:
            configured = exists().where(
                configuracao_llm.c.llm_id == c.llm_id,
                configuracao_llm.c.distribuidor_id == tenant_id,
            )
            scope = or_(
                c.distribuidor_id == tenant_id, and_(c.distribuidor_id.is_(None), configured)
            )
        else:
            scope = or_(c.distribuidor_id == tenant_id, c.distribuidor_id.is_(None))
        stmt = select(llm_modelo).where(scope)
        if after is not None:
            stmt = stmt.where(
                tuple_(c.nome_modelo, c.llm_id)
                > tuple_(literal(after[0], c.nome_modelo.type), literal(after[1], c.llm_id.type))
            )
        stmt = stmt.order_by(c.nome_modelo, c.llm_id).limit(limit)
        return [_model(r) for r in await self._all(stmt)]

    async def update(self, model_id: str, changes: dict[str, Any]) -> Model | None:
        values = {_MODEL_COLUMNS[k]: _model_value(k, v) for k, v in changes.items()}
        stmt = update(llm_modelo).where(llm_modelo.c.llm_id == model_id).values(values)
        row = await self._one(stmt.returning(llm_modelo))
        return _model(row) if row else None

    async def delete(self, model_id: str) -> bool:
        return await self._delete(llm_modelo, llm_modelo.c.llm_id == model_id)


class SqlModelConfigRepository(SqlRepository, ports.ModelConfigRepository):
    def _where(self, tenant_id: str, config_id: str) -> Any:
        c = configuracao_llm.c
        return and_(c.distribuidor_id == tenant_id, c.config_llm_id == config_id)

    async def add(self, config: ModelConfig) -> ModelConfig:
        values = {
            "config_llm_id": config.config_id,
            "distribuidor_id": config.tenant_id,
            "llm_id": config.model_id,
        }
        fields = {k: getattr(config, k) for k in _CONFIG_COLUMNS}
        values |= {_CONFIG_COLUMNS[k]: _config_value(k, v) for k, v in fields.items()}
        row = await self._one(insert(configuracao_llm).values(values).returning(configuracao_llm))
        assert row is not None
        return _config(row)

    async def get(self, tenant_id: str, config_id: str) -> ModelConfig | None:
        row = await self._one(select(configuracao_llm).where(self._where(tenant_id, config_id)))
        return _config(row) if row else None

    async def for_model(self, tenant_id: str, model_id: str) -> ModelConfig | None:
        c = configuracao_llm.c
        stmt = select(configuracao_llm).where(c.distribuidor_id == tenant_id, c.llm_id == model_id)
        row = await self._one(stmt)
        return _config(row) if row else None

    async def list(
        self, tenant_id: str, after: ports.TimeKey | None, limit: int
    ) -> list[ModelConfig]:
        c = configuracao_llm.c
        stmt = (
            select(configuracao_llm)
            .where(
                c.distribuidor_id == tenant_id, after_time(configuracao_llm, "config_llm_id", after)
            )
            .order_by(c.criado_em, c.config_llm_id)
            .limit(limit)
        )
        return [_config(r) for r in await self._all(stmt)]

    async def update(
        self, tenant_id: str, config_id: str, changes: dict[str, Any]
    ) -> ModelConfig | None:
        values = {_CONFIG_COLUMNS[k]: _config_value(k, v) for k, v in changes.items()}
        stmt = update(configuracao_llm).where(self._where(tenant_id, config_id)).values(values)
        row = await self._one(stmt.returning(configuracao_llm))
        return _config(row) if row else None

    async def delete(self, tenant_id: str, config_id: str) -> bool:
        return await self._delete(configuracao_llm, self._where(tenant_id, config_id))
