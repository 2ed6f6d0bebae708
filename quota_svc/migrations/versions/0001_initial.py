"""Initial schema: plans, subscriptions, the reservation ledger, the plan log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = [
    # One active subscription per user is an exclusion on (user, validity range).
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """
    CREATE FUNCTION quota_touch_atualizado_em() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.atualizado_em := now(); RETURN NEW; END $$
    """,
    """
    CREATE TABLE plano_de_uso (
        plano_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        distribuidor_id UUID NULL,
        nome_plano VARCHAR(200) NOT NULL,
        limite_requisicoes_mes INTEGER NOT NULL CHECK (limite_requisicoes_mes >= 0),
        descricao_plano TEXT NULL,
        request_id VARCHAR(200) NULL UNIQUE,
        criado_em TIMESTAMPTZ NOT NULL DEFAULT now(),
        atualizado_em TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE UNIQUE INDEX plano_de_uso_nome_uq ON plano_de_uso
        (COALESCE(distribuidor_id, '00000000-0000-0000-0000-000000000000'::uuid), nome_plano)
    """,
    "CREATE INDEX plano_de_uso_lista_ix ON plano_de_uso (distribuidor_id, criado_em, plano_id)",
    """
    CREATE TABLE assinatura_plano (
        assinatura_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        usuario_id UUID NOT NULL,
        plano_id UUID NOT NULL REFERENCES plano_de_uso (plano_id) ON DELETE RESTRICT,
        distribuidor_id UUID NOT NULL,
        data_inicio TIMESTAMPTZ NOT NULL,
        data_fim TIMESTAMPTZ NULL,
        requisicoes_utilizadas_mes INTEGER NOT NULL DEFAULT 0
            CHECK (requisicoes_utilizadas_mes >= 0),
        periodo_inicio TIMESTAMPTZ NOT NULL,
        fuso_horario TEXT NOT NULL DEFAULT 'UTC',
        request_id VARCHAR(200) NULL UNIQUE,
        criado_em TIMESTAMPTZ NOT NULL DEFAULT now(),
        atualizado_em TIMESTAMPTZ NOT NULL DEFAULT now(),
        CHECK (data_fim IS NULL OR data_fim >= data_inicio),
        CONSTRAINT assinatura_plano_uma_ativa EXCLUDE USING gist
            (usuario_id WITH =, tstzrange(data_inicio, data_fim, '[)') WITH &&)
    )
    """,
    """
    CREATE INDEX assinatura_plano_usuario_ix
        ON assinatura_plano (usuario_id, distribuidor_id, data_inicio)
    """,
    """
    CREATE INDEX assinatura_plano_lista_ix
        ON assinatura_plano (distribuidor_id, criado_em, assinatura_id)
    """,
    "CREATE INDEX assinatura_plano_plano_ix ON assinatura_plano (plano_id)",
    """
    CREATE TABLE reserva_requisicao (
        request_id VARCHAR(200) PRIMARY KEY,
        assinatura_id UUID NULL REFERENCES assinatura_plano (assinatura_id),
        distribuidor_id UUID NOT NULL,
        usuario_id UUID NOT NULL,
        periodo_inicio TIMESTAMPTZ NOT NULL,
        periodo_fim TIMESTAMPTZ NOT NULL,
        estado VARCHAR(16) NOT NULL
            CHECK (estado IN ('reserved', 'committed', 'released', 'expired', 'refused')),
        usado INTEGER NOT NULL DEFAULT 0,
        limite INTEGER NOT NULL DEFAULT 0,
        motivo TEXT NULL,
        criado_em TIMESTAMPTZ NOT NULL DEFAULT now(),
        expira_em TIMESTAMPTZ NULL,
        liquidado_em TIMESTAMPTZ NULL
    )
    """,
    """
    CREATE INDEX reserva_requisicao_abertas_ix ON reserva_requisicao (expira_em)
        WHERE estado = 'reserved'
    """,
    """
    CREATE INDEX reserva_requisicao_periodo_ix
        ON reserva_requisicao (assinatura_id, periodo_inicio)
        WHERE estado IN ('reserved', 'committed')
    """,
    """
    CREATE TABLE historico_plano (
        historico_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        assinatura_id UUID NOT NULL REFERENCES assinatura_plano (assinatura_id),
        distribuidor_id UUID NOT NULL,
        evento VARCHAR(16) NOT NULL CHECK (evento IN ('change_plan', 'end')),
        plano_anterior_id UUID NOT NULL,
        plano_novo_id UUID NULL,
        data_fim TIMESTAMPTZ NULL,
        requisicoes_no_momento INTEGER NOT NULL,
        alterado_por TEXT NOT NULL DEFAULT '',
        request_id VARCHAR(200) NULL UNIQUE,
        criado_em TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX historico_plano_assinatura_ix ON historico_plano (assinatura_id, criado_em)",
    """
    CREATE TRIGGER plano_de_uso_touch BEFORE UPDATE ON plano_de_uso
        FOR EACH ROW EXECUTE FUNCTION quota_touch_atualizado_em()
    """,
    """
    CREATE TRIGGER assinatura_plano_touch BEFORE UPDATE ON assinatura_plano
        FOR EACH ROW EXECUTE FUNCTION quota_touch_atualizado_em()
    """,
]

DOWNGRADE = [
    "DROP TABLE historico_plano",
    "DROP TABLE reserva_requisicao",
    "DROP TABLE assinatura_plano",
    "DROP TABLE plano_de_uso",
    "DROP FUNCTION quota_touch_atualizado_em()",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
