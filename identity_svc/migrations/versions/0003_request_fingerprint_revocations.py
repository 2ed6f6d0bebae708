"""Idempotency bound to content, and the revocation feed.

- requisicao_idempotente.impressao: the fingerprint of the first request with a request_id
  (gateway_common.idempotency); a replay with other content is refused. NULL on rows
  recorded before this revision (they replay as before).
- evento_revogacao: one row per key revoked, user deleted or tenant deleted, written in the
  change's transaction. Every identity replica and every identity client polls it by
  sequencia (keyset) and forgets the principals it names (gateway_common.revocation).
  Writers take an EXCLUSIVE lock on the table until commit, so sequences become visible
  in increasing order and a poller that read up to N never misses a later commit below N.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE requisicao_idempotente ADD COLUMN impressao VARCHAR(64) NULL",
    """
    CREATE TABLE evento_revogacao (
        sequencia BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alvo VARCHAR(8) NOT NULL CHECK (alvo IN ('key', 'user', 'tenant')),
        alvo_id UUID NOT NULL,
        criado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX ix_evento_revogacao_criado ON evento_revogacao (criado_em)",
]

DOWNGRADE = [
    "DROP TABLE evento_revogacao",
    "ALTER TABLE requisicao_idempotente DROP COLUMN impressao",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
