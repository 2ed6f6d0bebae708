"""The audit trail through the outbox: quota's admin mutations write their audit event as an
``outbox`` row (topic ``audit``) in the change's transaction, delivered to history's
historico_ajustes by gateway_common.audit_outbox's relay. The table is the settlement's
(0002): one mechanism.

historico_plano gives way to it: it stays only as the request log that makes
ChangeSubscriptionPlan/EndSubscription idempotent (its unique request_id index); the trail of
plan changes is historico_ajustes. The plan changes and ends logged before this revision
are copied into the outbox here, so history holds them too (their plans' names and limits
as they are now; the author's key id, role unknown).

Revision ID: 0005_audit_outbox
Revises: 0004_plan_limits
"""

from __future__ import annotations

from alembic import op

revision = "0005_audit_outbox"
down_revision = "0004_plan_limits"
branch_labels = None
depends_on = None

_UTC = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''


def _plan(alias: str, column: str) -> str:
    return (
        f"json_build_object('plan_id', h.{column}::text, 'name', {alias}.nome_plano,"
        f" 'monthly_request_limit', {alias}.limite_requisicoes_mes)"
    )


BACKFILL = f"""
INSERT INTO outbox (id, topic, payload)
SELECT h.historico_id::text, 'audit', convert_to(json_build_object(
    'adjustmentId', h.historico_id::text,
    'tenantId', h.distribuidor_id::text,
    'service', 'quota',
    'resource', 'subscription',
    'resourceId', h.assinatura_id::text,
    'action', CASE h.evento WHEN 'change_plan' THEN 'plan_changed' ELSE 'ended' END,
    'userId', s.usuario_id::text,
    'actor', json_build_object('keyId', h.alterado_por),
    'changes', CASE h.evento
        WHEN 'change_plan' THEN json_build_array(
            json_build_object('field', 'plan', 'before', {_plan("a", "plano_anterior_id")},
                              'after', {_plan("b", "plano_novo_id")}),
            json_build_object('field', 'requests_used', 'before', h.requisicoes_no_momento,
                              'after', h.requisicoes_no_momento))
        ELSE json_build_array(
            json_build_object('field', 'end_time',
                              'after', to_char(h.data_fim AT TIME ZONE 'UTC', {_UTC})),
            json_build_object('field', 'requests_used', 'before', h.requisicoes_no_momento,
                              'after', h.requisicoes_no_momento))
        END,
    'time', to_char(h.criado_em AT TIME ZONE 'UTC', {_UTC}),
    'requestId', coalesce(h.request_id, '')
)::text, 'UTF8')
FROM historico_plano h
JOIN assinatura_plano s ON s.assinatura_id = h.assinatura_id
LEFT JOIN plano_de_uso a ON a.plano_id = h.plano_anterior_id
LEFT JOIN plano_de_uso b ON b.plano_id = h.plano_novo_id
ON CONFLICT (id) DO NOTHING
"""  # noqa: S608 - built from constants only


def upgrade() -> None:
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE topic = 'audit'")
