"""configuracao_llm.parametros_extras_permitidos: the request parameters outside the chat
schema that llm_svc lets through for this configuration (empty: none).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE configuracao_llm "
        "ADD COLUMN parametros_extras_permitidos TEXT[] NOT NULL DEFAULT '{}'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE configuracao_llm DROP COLUMN parametros_extras_permitidos")
