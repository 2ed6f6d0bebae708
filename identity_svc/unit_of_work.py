"""identity's unit of work: the suite's one rule (gateway_common.unit_of_work), with
identity's repositories bound to its transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway_common.audit_outbox import SqlAuditLog
from gateway_common.unit_of_work import PostgresUnitOfWork
from identity_svc import ports
from identity_svc.postgres_accounts import (
    SqlApiKeyRepository,
    SqlRequestLog,
    SqlTenantRepository,
    SqlUserRepository,
)
from identity_svc.postgres_deployments import SqlDeploymentRepository
from identity_svc.postgres_llm_models import SqlModelConfigRepository, SqlModelRepository
from identity_svc.postgres_revocations import SqlRevocationLog


class SqlUnitOfWork(PostgresUnitOfWork, ports.UnitOfWork):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, "identity")

    async def bind(self, conn: AsyncConnection) -> None:
        self.tenants = SqlTenantRepository(conn)
        self.users = SqlUserRepository(conn)
        self.keys = SqlApiKeyRepository(conn)
        self.models = SqlModelRepository(conn)
        self.configs = SqlModelConfigRepository(conn)
        self.deployments = SqlDeploymentRepository(conn)
        self.requests = SqlRequestLog(conn)
        self.revocations = SqlRevocationLog(conn)
        self.audit = SqlAuditLog(conn)


def sql_uow_factory(engine: AsyncEngine) -> ports.UowFactory:
    return lambda: SqlUnitOfWork(engine)
