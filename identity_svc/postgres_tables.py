"""SQLAlchemy Core tables, named as in the shared data model. The migrations own the
schema (indexes, triggers, checks); these declarations only describe the columns."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()


def _times() -> list[Column[object]]:
    return [
        Column("criado_em", DateTime(timezone=True), nullable=False),
        Column("atualizado_em", DateTime(timezone=True), nullable=False),
    ]


distribuidor = Table(
    "distribuidor",
    metadata,
    Column("distribuidor_id", UUID(as_uuid=False), primary_key=True),
    Column("nome_distribuidor", String(200), nullable=False),
    Column("contato", String(200)),
    Column("fuso_horario", String(64), nullable=False),
    *_times(),
)

usuario = Table(
    "usuario",
    metadata,
    Column("usuario_id", UUID(as_uuid=False), primary_key=True),
    Column("distribuidor_id", UUID(as_uuid=False), ForeignKey(distribuidor.c.distribuidor_id)),
    Column("nome_usuario", String(200), nullable=False),
    Column("email", String(254)),
    *_times(),
)

llm_modelo = Table(
    "llm_modelo",
    metadata,
    Column("llm_id", UUID(as_uuid=False), primary_key=True),
    Column("distribuidor_id", UUID(as_uuid=False), ForeignKey(distribuidor.c.distribuidor_id)),
    Column("nome_modelo", String(200), nullable=False),
    Column("descricao_modelo", Text),
    Column("fornecedor", String(100), nullable=False),
    Column("tipo_acesso", String(20), nullable=False),
    *_times(),
    Column("preco_entrada_milhao", Numeric(24, 9)),
    Column("preco_saida_milhao", Numeric(24, 9)),
)

configuracao_llm = Table(
    "configuracao_llm",
    metadata,
    Column("config_llm_id", UUID(as_uuid=False), primary_key=True),
    Column("distribuidor_id", UUID(as_uuid=False), ForeignKey(distribuidor.c.distribuidor_id)),
    Column("llm_id", UUID(as_uuid=False), ForeignKey(llm_modelo.c.llm_id)),
    Column("limite_tokens", Integer),
    Column("parametros_extras", JSONB),
    Column("parametros_extras_permitidos", ARRAY(Text), nullable=False, server_default="{}"),
    Column("modelos_reserva", ARRAY(Text), nullable=False, server_default="{}"),
    Column("reserva_contexto", Boolean, nullable=False, server_default="false"),
    *_times(),
)

implantacao_llm = Table(
    "implantacao_llm",
    metadata,
    Column("implantacao_id", UUID(as_uuid=False), primary_key=True),
    Column("distribuidor_id", UUID(as_uuid=False), nullable=False),
    Column("config_llm_id", UUID(as_uuid=False), ForeignKey(configuracao_llm.c.config_llm_id)),
    Column("url_base", String(2048)),
    Column("chave_api", Text),  # encrypted: v1:<kid>:<b64>
    Column("modelo_fornecedor", String(200)),
    Column("prioridade", Integer, nullable=False),
    Column("peso", Integer, nullable=False),
    Column("tempo_limite_ms", Integer),
    *_times(),
)

chave_acesso = Table(
    "chave_acesso",
    metadata,
    Column("chave_id", UUID(as_uuid=False), primary_key=True),
    Column("distribuidor_id", UUID(as_uuid=False), ForeignKey(distribuidor.c.distribuidor_id)),
    Column("usuario_id", UUID(as_uuid=False), ForeignKey(usuario.c.usuario_id)),
    Column("papel", String(20), nullable=False),
    Column("prefixo", String(16), nullable=False, unique=True),
    Column("hash", LargeBinary, nullable=False),
    Column("nome", String(200), nullable=False),
    Column("criado_em", DateTime(timezone=True), nullable=False),
    Column("expira_em", DateTime(timezone=True)),
    Column("revogada_em", DateTime(timezone=True)),
)

requisicao_idempotente = Table(
    "requisicao_idempotente",
    metadata,
    Column("escopo", String(64), primary_key=True),
    Column("tipo", String(32), primary_key=True),
    Column("request_id", String(100), primary_key=True),
    Column("recurso_id", UUID(as_uuid=False), nullable=False),
    Column("impressao", String(64)),
    Column("criado_em", DateTime(timezone=True), nullable=False),
)

evento_revogacao = Table(
    "evento_revogacao",
    metadata,
    Column("sequencia", BigInteger, primary_key=True),
    Column("alvo", String(8), nullable=False),
    Column("alvo_id", UUID(as_uuid=False), nullable=False),
    Column("criado_em", DateTime(timezone=True), nullable=False),
)
