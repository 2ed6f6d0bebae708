"""Model prices (issue 17): llm_modelo gains the price per million input (prompt) and output
(completion) tokens, in the platform currency (GATEWAY_CURRENCY), as NUMERIC so that a
price such as 0.15 is exact. NULL: no price (its calls cost 0, and say so nowhere else).
llm writes each call's cost (metadados.custo_nanos) at the price resolved for the call.

Revision ID: 0005_model_prices
Revises: 0004_deployments
"""

from __future__ import annotations

from alembic import op

revision = "0005_model_prices"
down_revision = "0004_deployments"
branch_labels = None
depends_on = None

UPGRADE = [
    """ALTER TABLE llm_modelo
        ADD COLUMN preco_entrada_milhao NUMERIC(24, 9) NULL CHECK (preco_entrada_milhao >= 0),
        ADD COLUMN preco_saida_milhao NUMERIC(24, 9) NULL CHECK (preco_saida_milhao >= 0)""",
]
DOWNGRADE = [
    "ALTER TABLE llm_modelo DROP COLUMN preco_saida_milhao, DROP COLUMN preco_entrada_milhao",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
