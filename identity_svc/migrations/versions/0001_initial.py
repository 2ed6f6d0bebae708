"""identity schema: distribuidor, usuario, llm_modelo, configuracao_llm, chave_acesso,
requisicao_idempotente; atualizado_em kept by a trigger.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIMES = """
    criado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    atualizado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
"""

_UPGRADE = [
    """
    CREATE FUNCTION definir_atualizado_em() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.atualizado_em := now();
        RETURN NEW;
    END $$
    """,
    f"""
    CREATE TABLE distribuidor (
        distribuidor_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        nome_distribuidor VARCHAR(200) NOT NULL,
        contato VARCHAR(200),
        fuso_horario VARCHAR(64) NOT NULL DEFAULT 'UTC',
        {_TIMES}
    )
    """,
    "CREATE UNIQUE INDEX uq_distribuidor_nome ON distribuidor (lower(nome_distribuidor))",
    "CREATE INDEX ix_distribuidor_criado ON distribuidor (criado_em, distribuidor_id)",
    f"""
    CREATE TABLE usuario (
        usuario_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        distribuidor_id UUID NOT NULL
            CONSTRAINT fk_usuario_distribuidor REFERENCES distribuidor ON DELETE CASCADE,
        nome_usuario VARCHAR(200) NOT NULL,
        email VARCHAR(254),
        {_TIMES}
    )
    """,
    # The index of the data model; unique so chave_acesso can reference (tenant, user).
    "CREATE UNIQUE INDEX ix_usuario_distribuidor ON usuario (distribuidor_id, usuario_id)",
    "CREATE INDEX ix_usuario_criado ON usuario (distribuidor_id, criado_em, usuario_id)",
    """CREATE UNIQUE INDEX uq_usuario_email ON usuario (distribuidor_id, lower(email))
       WHERE email IS NOT NULL""",
    f"""
    CREATE TABLE llm_modelo (
        llm_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        distribuidor_id UUID
            CONSTRAINT fk_llm_modelo_distribuidor REFERENCES distribuidor ON DELETE CASCADE,
        nome_modelo VARCHAR(200) NOT NULL,
        descricao_modelo TEXT,
        fornecedor VARCHAR(100) NOT NULL,
        tipo_acesso VARCHAR(20) NOT NULL
            CONSTRAINT ck_llm_modelo_tipo CHECK (tipo_acesso IN ('cloud', 'on-premise')),
        {_TIMES},
        CONSTRAINT uq_llm_modelo_nome UNIQUE NULLS NOT DISTINCT (distribuidor_id, nome_modelo)
    )
    """,
    "CREATE INDEX ix_llm_modelo_nome ON llm_modelo (nome_modelo, llm_id)",
    f"""
    CREATE TABLE configuracao_llm (
        config_llm_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        distribuidor_id UUID NOT NULL
            CONSTRAINT fk_configuracao_llm_distribuidor REFERENCES distribuidor ON DELETE CASCADE,
        llm_id UUID NOT NULL
            CONSTRAINT fk_configuracao_llm_modelo REFERENCES llm_modelo ON DELETE CASCADE,
        chave_api TEXT,
        limite_tokens INTEGER CONSTRAINT ck_configuracao_llm_limite CHECK (limite_tokens > 0),
        parametros_extras JSONB,
        url_base VARCHAR(2048),
        {_TIMES},
        CONSTRAINT uq_configuracao_llm_modelo UNIQUE (distribuidor_id, llm_id)
    )
    """,
    "CREATE INDEX ix_configuracao_llm_criado ON configuracao_llm"
    " (distribuidor_id, criado_em, config_llm_id)",
    """
    CREATE TABLE chave_acesso (
        chave_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
        distribuidor_id UUID
            CONSTRAINT fk_chave_acesso_distribuidor REFERENCES distribuidor ON DELETE CASCADE,
        usuario_id UUID,
        papel VARCHAR(20) NOT NULL,
        prefixo VARCHAR(16) NOT NULL CONSTRAINT uq_chave_acesso_prefixo UNIQUE,
        hash BYTEA NOT NULL,
        nome VARCHAR(200) NOT NULL DEFAULT '',
        criado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        expira_em TIMESTAMP WITH TIME ZONE,
        revogada_em TIMESTAMP WITH TIME ZONE,
        CONSTRAINT fk_chave_acesso_usuario FOREIGN KEY (distribuidor_id, usuario_id)
            REFERENCES usuario (distribuidor_id, usuario_id) ON DELETE CASCADE,
        CONSTRAINT ck_chave_acesso_papel CHECK (
            (papel = 'platform_admin' AND distribuidor_id IS NULL AND usuario_id IS NULL)
            OR (papel = 'tenant_admin' AND distribuidor_id IS NOT NULL AND usuario_id IS NULL)
            OR (papel = 'user' AND distribuidor_id IS NOT NULL AND usuario_id IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_chave_acesso_criado ON chave_acesso (distribuidor_id, criado_em, chave_id)",
    """
    CREATE TABLE requisicao_idempotente (
        escopo VARCHAR(64) NOT NULL,
        tipo VARCHAR(32) NOT NULL,
        request_id VARCHAR(100) NOT NULL,
        recurso_id UUID NOT NULL,
        criado_em TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT pk_requisicao_idempotente PRIMARY KEY (escopo, tipo, request_id)
    )
    """,
    *(
        f"""CREATE TRIGGER tg_{table}_atualizado_em BEFORE UPDATE ON {table}
            FOR EACH ROW EXECUTE FUNCTION definir_atualizado_em()"""
        for table in ("distribuidor", "usuario", "llm_modelo", "configuracao_llm")
    ),
]


def upgrade() -> None:
    for statement in _UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "requisicao_idempotente",
        "chave_acesso",
        "configuracao_llm",
        "llm_modelo",
        "usuario",
        "distribuidor",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS definir_atualizado_em()")
