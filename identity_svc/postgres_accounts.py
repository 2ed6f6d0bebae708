"""SQL adapters of the repositories (SQLAlchemy Core, async, psycopg 3).

Database errors stop here: constraint violations become domain errors, so no SQL text
ever reaches a client. Repositories never commit; the unit of work does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_common.errors import AlreadyExists, DomainError, FailedPrecondition, NotFound
from gateway_common.principal import Role
from identity_svc import ports
from identity_svc.domain import ApiKey, StoredKey, Tenant, User
from identity_svc.postgres_tables import chave_acesso, distribuidor, requisicao_idempotente, usuario

_CONSTRAINTS: dict[str, DomainError] = {
    "uq_distribuidor_nome": AlreadyExists("a tenant with this name exists", "TENANT_EXISTS"),
    "uq_usuario_email": AlreadyExists("e-mail already used in this tenant", "EMAIL_EXISTS"),
    "uq_llm_modelo_nome": AlreadyExists("a model with this name exists here", "MODEL_EXISTS"),
    "uq_configuracao_llm_modelo": AlreadyExists(
        "the tenant already has a configuration for this model", "MODEL_CONFIG_EXISTS"
    ),
    "fk_usuario_distribuidor": NotFound("tenant not found", "TENANT_NOT_FOUND"),
    "fk_llm_modelo_distribuidor": NotFound("tenant not found", "TENANT_NOT_FOUND"),
    "fk_configuracao_llm_distribuidor": NotFound("tenant not found", "TENANT_NOT_FOUND"),
    "fk_configuracao_llm_modelo": NotFound("model not found", "MODEL_NOT_FOUND"),
    "fk_chave_acesso_distribuidor": NotFound("tenant not found", "TENANT_NOT_FOUND"),
    "fk_chave_acesso_usuario": NotFound("user not found", "USER_NOT_FOUND"),
}


@contextlib.asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Constraint violations -> the domain error they mean."""
    try:
        yield
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        name = getattr(diag, "constraint_name", None) or ""
        if name == "pk_requisicao_idempotente":
            raise ports.DuplicateRequest() from None
        known = _CONSTRAINTS.get(name)
        if known is None:
            raise FailedPrecondition("the change conflicts with stored data", "CONFLICT") from None
        raise type(known)(known.message, known.reason) from None


class SqlRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _one(self, stmt: Any) -> Mapping[str, Any] | None:
        async with translated():
            result = await self.conn.execute(stmt)
        row = result.mappings().first()
        return dict(row) if row is not None else None

    async def _all(self, stmt: Any) -> list[Mapping[str, Any]]:
        result = await self.conn.execute(stmt)
        return [dict(row) for row in result.mappings().all()]

    async def _delete(self, table: Table, *where: Any) -> bool:
        async with translated():
            result = await self.conn.execute(delete(table).where(*where))
        return bool(result.rowcount)


def after_time(table: Table, id_col: str, after: ports.TimeKey | None) -> Any:
    if after is None:
        return true()
    created, ident = table.c.criado_em, table.c[id_col]
    return tuple_(created, ident) > tuple_(
        literal(after[0], created.type), literal(after[1], ident.type)
    )


# --- tenants --------------------------------------------------------------------------

_TENANT_COLUMNS = {"name": "nome_distribuidor", "contact": "contato", "time_zone": "fuso_horario"}


def _tenant(row: Mapping[str, Any]) -> Tenant:
    return Tenant(
        tenant_id=row["distribuidor_id"],
        name=row["nome_distribuidor"],
        contact=row["contato"] or "",
        time_zone=row["fuso_horario"],
        create_time=row["criado_em"],
        update_time=row["atualizado_em"],
    )


class SqlTenantRepository(SqlRepository, ports.TenantRepository):
    async def add(self, tenant: Tenant) -> Tenant:
        values = {"distribuidor_id": tenant.tenant_id, "contato": tenant.contact or None}
        values |= {"nome_distribuidor": tenant.name, "fuso_horario": tenant.time_zone}
        row = await self._one(insert(distribuidor).values(values).returning(distribuidor))
        assert row is not None
        return _tenant(row)

    async def get(self, tenant_id: str) -> Tenant | None:
        row = await self._one(
            select(distribuidor).where(distribuidor.c.distribuidor_id == tenant_id)
        )
        return _tenant(row) if row else None

    async def list(self, after: ports.TimeKey | None, limit: int) -> list[Tenant]:
        stmt = (
            select(distribuidor)
            .where(after_time(distribuidor, "distribuidor_id", after))
            .order_by(distribuidor.c.criado_em, distribuidor.c.distribuidor_id)
            .limit(limit)
        )
        return [_tenant(r) for r in await self._all(stmt)]

    async def update(self, tenant_id: str, changes: dict[str, Any]) -> Tenant | None:
        values = {
            _TENANT_COLUMNS[k]: (v or None) if k == "contact" else v for k, v in changes.items()
        }
        stmt = (
            update(distribuidor)
            .where(distribuidor.c.distribuidor_id == tenant_id)
            .values(values)
            .returning(distribuidor)
        )
        row = await self._one(stmt)
        return _tenant(row) if row else None

    async def delete(self, tenant_id: str) -> bool:
        return await self._delete(distribuidor, distribuidor.c.distribuidor_id == tenant_id)

    async def has_users(self, tenant_id: str) -> bool:
        stmt = select(exists().where(usuario.c.distribuidor_id == tenant_id))
        return bool((await self.conn.execute(stmt)).scalar())


# --- users ----------------------------------------------------------------------------

_USER_COLUMNS = {"name": "nome_usuario", "email": "email"}


def _user(row: Mapping[str, Any]) -> User:
    return User(
        user_id=row["usuario_id"],
        tenant_id=row["distribuidor_id"],
        name=row["nome_usuario"],
        email=row["email"] or "",
        create_time=row["criado_em"],
        update_time=row["atualizado_em"],
    )


class SqlUserRepository(SqlRepository, ports.UserRepository):
    def _where(self, tenant_id: str, user_id: str) -> Any:
        return and_(usuario.c.distribuidor_id == tenant_id, usuario.c.usuario_id == user_id)

    async def add(self, user: User) -> User:
        values: dict[str, Any] = {"usuario_id": user.user_id, "distribuidor_id": user.tenant_id}
        values |= {"nome_usuario": user.name, "email": user.email or None}
        row = await self._one(insert(usuario).values(values).returning(usuario))
        assert row is not None
        return _user(row)

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        row = await self._one(select(usuario).where(self._where(tenant_id, user_id)))
        return _user(row) if row else None

    async def list(self, tenant_id: str, after: ports.TimeKey | None, limit: int) -> list[User]:
        stmt = (
            select(usuario)
            .where(usuario.c.distribuidor_id == tenant_id, after_time(usuario, "usuario_id", after))
            .order_by(usuario.c.criado_em, usuario.c.usuario_id)
            .limit(limit)
        )
        return [_user(r) for r in await self._all(stmt)]

    async def update(self, tenant_id: str, user_id: str, changes: dict[str, Any]) -> User | None:
        values = {_USER_COLUMNS[k]: v or None for k, v in changes.items()}
        stmt = update(usuario).where(self._where(tenant_id, user_id)).values(values)
        row = await self._one(stmt.returning(usuario))
        return _user(row) if row else None

    async def delete(self, tenant_id: str, user_id: str) -> bool:
        return await self._delete(usuario, self._where(tenant_id, user_id))


# --- API keys -------------------------------------------------------------------------


def _key(row: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=row["chave_id"],
        role=Role(row["papel"]),
        prefix=row["prefixo"],
        tenant_id=row["distribuidor_id"] or "",
        user_id=row["usuario_id"] or "",
        display_name=row["nome"],
        create_time=row["criado_em"],
        expire_time=row["expira_em"],
        revoke_time=row["revogada_em"],
    )


class SqlApiKeyRepository(SqlRepository, ports.ApiKeyRepository):
    async def add(self, key: ApiKey, secret_hash: bytes) -> ApiKey:
        values: dict[str, Any] = {
            "chave_id": key.key_id,
            "distribuidor_id": key.tenant_id or None,
            "usuario_id": key.user_id or None,
            "papel": key.role.value,
            "prefixo": key.prefix,
            "hash": secret_hash,
            "nome": key.display_name,
            "expira_em": key.expire_time,
        }
        row = await self._one(insert(chave_acesso).values(values).returning(chave_acesso))
        assert row is not None
        return _key(row)

    async def get(self, key_id: str) -> ApiKey | None:
        row = await self._one(select(chave_acesso).where(chave_acesso.c.chave_id == key_id))
        return _key(row) if row else None

    async def by_prefix(self, prefix: str) -> StoredKey | None:
        stmt = (
            select(chave_acesso, distribuidor.c.fuso_horario)
            .outerjoin(
                distribuidor, distribuidor.c.distribuidor_id == chave_acesso.c.distribuidor_id
            )
            .where(chave_acesso.c.prefixo == prefix)
        )
        row = await self._one(stmt)
        if row is None:
            return None
        return StoredKey(_key(row), bytes(row["hash"]), row["fuso_horario"] or "UTC")

    async def list(
        self,
        tenant_id: str,
        user_id: str,
        include_revoked: bool,
        after: ports.TimeKey | None,
        limit: int,
    ) -> list[ApiKey]:
        c = chave_acesso.c
        where = [c.distribuidor_id == tenant_id if tenant_id else c.distribuidor_id.is_(None)]
        if user_id:
            where.append(c.usuario_id == user_id)
        if not include_revoked:
            where.append(c.revogada_em.is_(None))
        stmt = (
            select(chave_acesso)
            .where(*where, after_time(chave_acesso, "chave_id", after))
            .order_by(c.criado_em, c.chave_id)
            .limit(limit)
        )
        return [_key(r) for r in await self._all(stmt)]

    async def revoke(self, key_id: str) -> ApiKey | None:
        c = chave_acesso.c
        stmt = (
            update(chave_acesso)
            .where(c.chave_id == key_id)
            .values(revogada_em=func.coalesce(c.revogada_em, func.now()))
            .returning(chave_acesso)
        )
        row = await self._one(stmt)
        return _key(row) if row else None


# --- request log ----------------------------------------------------------------------


class SqlRequestLog(SqlRepository, ports.RequestLog):
    async def find(self, scope: str, kind: str, request_id: str) -> ports.RecordedRequest | None:
        t = requisicao_idempotente.c
        stmt = select(t.recurso_id, t.impressao).where(
            t.escopo == scope, t.tipo == kind, t.request_id == request_id
        )
        row = (await self.conn.execute(stmt)).first()
        return (str(row.recurso_id), row.impressao) if row is not None else None

    async def add(
        self, scope: str, kind: str, request_id: str, resource_id: str, fingerprint: str
    ) -> None:
        values = {"escopo": scope, "tipo": kind, "request_id": request_id, "impressao": fingerprint}
        async with translated():
            await self.conn.execute(
                insert(requisicao_idempotente).values(values | {"recurso_id": resource_id})
            )
