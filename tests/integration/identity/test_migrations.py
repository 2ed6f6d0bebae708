"""Alembic owns the schema: upgrade an empty database, twice, and from two replicas."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from identity_svc import migrate
from tests.support import fresh_pg_database, sqlalchemy_url

TABLES = {
    "distribuidor",
    "usuario",
    "llm_modelo",
    "configuracao_llm",
    "implantacao_llm",
    "chave_acesso",
    "evento_revogacao",
    "requisicao_idempotente",
}


def test_upgrade_on_an_empty_database_concurrently_and_again():
    with fresh_pg_database("identity_mig") as dsn:
        url = sqlalchemy_url(dsn)
        # Two replicas starting at once (processes: Alembic's context is process-global).
        env = {**os.environ, "IDENTITY_DATABASE_URL": url}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "identity_svc.migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out.decode()
        migrate.upgrade(url)  # nothing left to do
        with psycopg.connect(dsn) as conn:
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            indexes = {
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'usuario'"
                )
            }
            tenant = conn.execute(
                "INSERT INTO distribuidor (nome_distribuidor) VALUES ('t') "
                "RETURNING distribuidor_id, criado_em, atualizado_em, fuso_horario"
            ).fetchone()
            conn.commit()  # the update below is a later transaction: a later now()
            # The client asks for an old atualizado_em: the trigger must overwrite it.
            conn.execute(
                "UPDATE distribuidor SET contato = 'c', atualizado_em = '2000-01-01T00:00:00Z' "
                "WHERE distribuidor_id = %s",
                (tenant[0],),
            )
            conn.commit()
            after = conn.execute("SELECT atualizado_em FROM distribuidor").fetchone()
        assert tables >= TABLES
        assert version == ("0006_audit_outbox",)
        assert "ix_usuario_distribuidor" in indexes
        assert tenant[3] == "UTC" and tenant[1] is not None
        assert after[0] > tenant[2]  # strictly: set by the trigger at the update


def test_0004_moves_each_configurations_provider_into_one_deployment():
    """A configuration written before 0004 keeps its URL and credential, as a deployment;
    the downgrade puts them back."""
    with fresh_pg_database("identity_mig4") as dsn:
        url = sqlalchemy_url(dsn)
        migrate.upgrade(url, "0003")
        with psycopg.connect(dsn) as conn:
            (tenant,) = conn.execute(
                "INSERT INTO distribuidor (nome_distribuidor) VALUES ('t')"
                " RETURNING distribuidor_id"
            ).fetchone()
            (model,) = conn.execute(
                "INSERT INTO llm_modelo (nome_modelo, fornecedor, tipo_acesso)"
                " VALUES ('m', 'p', 'cloud') RETURNING llm_id"
            ).fetchone()
            (config,) = conn.execute(
                "INSERT INTO configuracao_llm (distribuidor_id, llm_id, url_base, chave_api)"
                " VALUES (%s, %s, 'http://p.test/v1', 'v1:k:sealed') RETURNING config_llm_id",
                (tenant, model),
            ).fetchone()
            conn.commit()
        migrate.upgrade(url)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT distribuidor_id, url_base, chave_api, prioridade, peso, modelo_fornecedor"
                " FROM implantacao_llm WHERE config_llm_id = %s",
                (config,),
            ).fetchall()
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'configuracao_llm'"
                )
            }
        assert rows == [(tenant, "http://p.test/v1", "v1:k:sealed", 0, 1, None)]
        assert "url_base" not in columns and "chave_api" not in columns
        assert {"modelos_reserva", "reserva_contexto"} <= columns
        _downgrade(url, "0003")
        with psycopg.connect(dsn) as conn:
            back = conn.execute("SELECT url_base, chave_api FROM configuracao_llm").fetchall()
        assert back == [("http://p.test/v1", "v1:k:sealed")]


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from gateway_common.migrations import sync_url

    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(migrate.RUNNER.folder))
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
    finally:
        engine.dispose()
