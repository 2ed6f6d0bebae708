"""Plan limits beyond the monthly request count (issue 17).

plano_de_uso (spec columns untouched) gains optional limits, NULL meaning "none":
limite_requisicoes_minuto (requests per fixed UTC minute), limite_tokens_mes (tokens per
calendar month, the period of limite_requisicoes_mes) and modelos_permitidos (model names a
Chat may ask for; NULL or empty: all the tenant's models).

assinatura_plano keeps the counters beside requisicoes_utilizadas_mes, updated by the same
Reserve statement: minuto_inicio/requisicoes_minuto (the minute window), tokens_utilizados_mes
(for periodo_inicio: settled usage plus the holds of open reservations) and
tokens_max_reserva (the completion cap the last Reserve granted, read back by its RETURNING).

reserva_requisicao records each request's hold (tokens_reservados), its granted cap
(tokens_max), whether the hold is a true upper bound (tokens_limitado) and, once settled,
the tokens charged (tokens_cobrados), and what Reserve answered about the other windows
(limite_minuto, usado_minuto, minuto_fim, limite_tokens, tokens_usados), so that a replay
answers the same.

Revision ID: 0004_plan_limits
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004_plan_limits"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = [
    """ALTER TABLE plano_de_uso
        ADD COLUMN limite_requisicoes_minuto INTEGER NULL
            CHECK (limite_requisicoes_minuto >= 0),
        ADD COLUMN limite_tokens_mes BIGINT NULL CHECK (limite_tokens_mes >= 0),
        ADD COLUMN modelos_permitidos TEXT[] NULL""",
    """ALTER TABLE assinatura_plano
        ADD COLUMN minuto_inicio TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01T00:00:00Z',
        ADD COLUMN requisicoes_minuto INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN tokens_utilizados_mes BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN tokens_max_reserva BIGINT NOT NULL DEFAULT 0""",
    """ALTER TABLE reserva_requisicao
        ADD COLUMN tokens_reservados BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN tokens_max BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN tokens_limitado BOOLEAN NOT NULL DEFAULT false,
        ADD COLUMN tokens_cobrados BIGINT NULL,
        ADD COLUMN limite_minuto INTEGER NULL,
        ADD COLUMN usado_minuto INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN minuto_fim TIMESTAMPTZ NULL,
        ADD COLUMN limite_tokens BIGINT NULL,
        ADD COLUMN tokens_usados BIGINT NOT NULL DEFAULT 0""",
]

DOWNGRADE = [
    """ALTER TABLE reserva_requisicao DROP COLUMN tokens_usados, DROP COLUMN limite_tokens,
        DROP COLUMN minuto_fim, DROP COLUMN usado_minuto, DROP COLUMN limite_minuto,
        DROP COLUMN tokens_cobrados,
        DROP COLUMN tokens_limitado, DROP COLUMN tokens_max, DROP COLUMN tokens_reservados""",
    """ALTER TABLE assinatura_plano DROP COLUMN tokens_max_reserva,
        DROP COLUMN tokens_utilizados_mes, DROP COLUMN requisicoes_minuto,
        DROP COLUMN minuto_inicio""",
    """ALTER TABLE plano_de_uso DROP COLUMN modelos_permitidos,
        DROP COLUMN limite_tokens_mes, DROP COLUMN limite_requisicoes_minuto""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
