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
