"""request_id scoped by tenant and method, and bound to the request's content.

Before: request_id was UNIQUE across the whole table, so one tenant's id blocked
another's (PERMISSION_DENIED or "already used"). Now it is unique per tenant (plans:
per plan tenant, global plans together) and, in the plan log, per tenant and event kind;
impressao_requisicao keeps the fingerprint of the first request
(gateway_common.idempotency), so a replay with other content is refused. Rows written
before this revision keep a NULL fingerprint and replay as before.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_GLOBAL = "'00000000-0000-0000-0000-000000000000'::uuid"

UPGRADE = [
    "ALTER TABLE plano_de_uso DROP CONSTRAINT plano_de_uso_request_id_key",
    "ALTER TABLE plano_de_uso ADD COLUMN impressao_requisicao VARCHAR(64) NULL",
    f"""
    CREATE UNIQUE INDEX plano_de_uso_requisicao_uq
        ON plano_de_uso (COALESCE(distribuidor_id, {_GLOBAL}), request_id)
        WHERE request_id IS NOT NULL
    """,
    "ALTER TABLE assinatura_plano DROP CONSTRAINT assinatura_plano_request_id_key",
    "ALTER TABLE assinatura_plano ADD COLUMN impressao_requisicao VARCHAR(64) NULL",
    """
    CREATE UNIQUE INDEX assinatura_plano_requisicao_uq
        ON assinatura_plano (distribuidor_id, request_id) WHERE request_id IS NOT NULL
    """,
    "ALTER TABLE historico_plano DROP CONSTRAINT historico_plano_request_id_key",
    "ALTER TABLE historico_plano ADD COLUMN impressao_requisicao VARCHAR(64) NULL",
    """
    CREATE UNIQUE INDEX historico_plano_requisicao_uq
        ON historico_plano (distribuidor_id, evento, request_id) WHERE request_id IS NOT NULL
    """,
]

# Downgrading needs the ids to be globally unique again: it fails if tenants reused one.
DOWNGRADE = [
    "DROP INDEX historico_plano_requisicao_uq",
    "ALTER TABLE historico_plano DROP COLUMN impressao_requisicao",
    "ALTER TABLE historico_plano ADD CONSTRAINT historico_plano_request_id_key UNIQUE (request_id)",
    "DROP INDEX assinatura_plano_requisicao_uq",
    "ALTER TABLE assinatura_plano DROP COLUMN impressao_requisicao",
    """ALTER TABLE assinatura_plano
        ADD CONSTRAINT assinatura_plano_request_id_key UNIQUE (request_id)""",
    "DROP INDEX plano_de_uso_requisicao_uq",
    "ALTER TABLE plano_de_uso DROP COLUMN impressao_requisicao",
    "ALTER TABLE plano_de_uso ADD CONSTRAINT plano_de_uso_request_id_key UNIQUE (request_id)",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
