"""Settlement: the outbox (interactions recorded in the same transaction as the ledger
transition) and idempotency keys leased in the ledger.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from gateway_common import outbox

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = [
    *outbox.DDL,
    # The client's idempotency key, leased to one open or served request per user: a
    # second Reserve with the key is refused (in progress) or replayed (served).
    "ALTER TABLE reserva_requisicao ADD COLUMN chave_idempotencia VARCHAR(200) NULL",
    """
    CREATE UNIQUE INDEX reserva_requisicao_chave_uq
        ON reserva_requisicao (distribuidor_id, usuario_id, chave_idempotencia)
        WHERE chave_idempotencia IS NOT NULL AND estado IN ('reserved', 'committed')
    """,
]

DOWNGRADE = [
    "DROP INDEX reserva_requisicao_chave_uq",
    "ALTER TABLE reserva_requisicao DROP COLUMN chave_idempotencia",
    *outbox.DROP,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
