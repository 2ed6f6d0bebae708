"""The audit outbox: identity's admin mutations write their audit event (and identity its
system events) as an ``outbox`` row in the change's transaction, the shared outbox of
gateway_common.outbox (the settlement's), delivered to history's historico_ajustes /
logs_sistema by gateway_common.audit_outbox's relays.

Revision ID: 0006_audit_outbox
Revises: 0005_model_prices
"""

from __future__ import annotations

from alembic import op

from gateway_common import outbox

revision = "0006_audit_outbox"
down_revision = "0005_model_prices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox.DDL:
        op.execute(statement)


def downgrade() -> None:
    for statement in outbox.DROP:
        op.execute(statement)
