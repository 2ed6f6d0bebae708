"""Deployments: a tenant's model configuration served by several provider deployments.

- implantacao_llm: child rows of configuracao_llm, each a provider deployment (base URL,
  encrypted credential, the provider's own model name, priority, weight, optional
  per-attempt timeout). The credential keeps configuracao_llm's associated data
  (``configuracao_llm:<tenant>:<model>``), so the values moved here still decrypt.
- configuracao_llm keeps the per-model settings and gains the ordered fallback models
  (modelos_reserva) and whether a context-length refusal also falls back
  (reserva_contexto). Its url_base and chave_api move into one deployment per row (the
  only path to a provider is a deployment now) and are dropped.

Revision ID: 0004_deployments
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0004_deployments"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE configuracao_llm ADD CONSTRAINT uq_configuracao_llm_distribuidor_id"
    " UNIQUE (distribuidor_id, config_llm_id)",
    """
    CREATE TABLE implantacao_llm (
        implantacao_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        distribuidor_id UUID NOT NULL,
        config_llm_id UUID NOT NULL,
        url_base VARCHAR(2048),
        chave_api TEXT,
        modelo_fornecedor VARCHAR(200),
        prioridade INTEGER NOT NULL DEFAULT 0
            CONSTRAINT ck_implantacao_llm_prioridade CHECK (prioridade >= 0),
        peso INTEGER NOT NULL DEFAULT 1
            CONSTRAINT ck_implantacao_llm_peso CHECK (peso BETWEEN 1 AND 1000),
        tempo_limite_ms INTEGER
            CONSTRAINT ck_implantacao_llm_tempo CHECK (tempo_limite_ms > 0),
        criado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        atualizado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT fk_implantacao_llm_config FOREIGN KEY (distribuidor_id, config_llm_id)
            REFERENCES configuracao_llm (distribuidor_id, config_llm_id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_implantacao_llm_criado ON implantacao_llm"
    " (config_llm_id, criado_em, implantacao_id)",
    """CREATE TRIGGER tg_implantacao_llm_atualizado_em BEFORE UPDATE ON implantacao_llm
        FOR EACH ROW EXECUTE FUNCTION definir_atualizado_em()""",
    # Every configuration keeps serving as before: its URL and credential, one deployment.
    """
    INSERT INTO implantacao_llm (distribuidor_id, config_llm_id, url_base, chave_api, criado_em)
    SELECT distribuidor_id, config_llm_id, url_base, chave_api, criado_em FROM configuracao_llm
    """,
    "ALTER TABLE configuracao_llm DROP COLUMN url_base, DROP COLUMN chave_api",
    "ALTER TABLE configuracao_llm ADD COLUMN modelos_reserva TEXT[] NOT NULL DEFAULT '{}',"
    " ADD COLUMN reserva_contexto BOOLEAN NOT NULL DEFAULT false",
]

DOWNGRADE = [
    "ALTER TABLE configuracao_llm DROP COLUMN modelos_reserva, DROP COLUMN reserva_contexto",
    "ALTER TABLE configuracao_llm ADD COLUMN url_base VARCHAR(2048), ADD COLUMN chave_api TEXT",
    # The first deployment (lowest priority, oldest) becomes the configuration's provider.
    """
    UPDATE configuracao_llm c SET url_base = i.url_base, chave_api = i.chave_api
    FROM (SELECT DISTINCT ON (config_llm_id) config_llm_id, url_base, chave_api
          FROM implantacao_llm ORDER BY config_llm_id, prioridade, criado_em, implantacao_id) i
    WHERE c.config_llm_id = i.config_llm_id
    """,
    "DROP TABLE implantacao_llm",
    "ALTER TABLE configuracao_llm DROP CONSTRAINT uq_configuracao_llm_distribuidor_id",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
