"""0005_audit_outbox: plan changes and ends logged in historico_plano before it are copied
into the outbox as audit events (topic "audit"), readable as history's Adjustment."""

from __future__ import annotations

import uuid

import psycopg

from gateway_common.audit_proto import adjustment_in, from_json
from llmgw.history.v1 import audit_pb2
from quota_svc import migrate
from tests.support import fresh_pg_database


def test_plan_history_before_the_outbox_is_backfilled() -> None:
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    with fresh_pg_database("quotaaudit") as dsn:
        migrate.upgrade(dsn, "0003")
        with psycopg.connect(dsn) as conn:
            a, b = (
                conn.execute(
                    "INSERT INTO plano_de_uso (distribuidor_id, nome_plano,"
                    " limite_requisicoes_mes) VALUES (%s, %s, %s) RETURNING plano_id",
                    (tenant, name, limit),
                ).fetchone()[0]  # type: ignore[index]
                for name, limit in (("A", 10), ("B", 99))
            )
            sub = conn.execute(
                "INSERT INTO assinatura_plano (usuario_id, plano_id, distribuidor_id,"
                " data_inicio, periodo_inicio) VALUES (%s, %s, %s, now(), now())"
                " RETURNING assinatura_id",
                (user, b, tenant),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO historico_plano (assinatura_id, distribuidor_id, evento,"
                " plano_anterior_id, plano_novo_id, requisicoes_no_momento, alterado_por,"
                " request_id) VALUES (%s, %s, 'change_plan', %s, %s, 3, 'key-1', 'r-1')",
                (sub, tenant, a, b),
            )
            conn.commit()
        migrate.upgrade(dsn)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT topic, payload FROM outbox").fetchall()
    assert [r[0] for r in rows] == ["audit"]
    event = adjustment_in(from_json(bytes(rows[0][1]), audit_pb2.Adjustment()))
    assert (event.service, event.resource, event.action) == (
        "quota",
        "subscription",
        "plan_changed",
    )
    assert (event.tenant_id, event.user_id, event.resource_id) == (tenant, user, str(sub))
    assert event.actor.key_id == "key-1" and event.request_id == "r-1"
    changes = {c.field: (c.before, c.after) for c in event.changes}
    assert changes["plan"][0] == {"plan_id": str(a), "name": "A", "monthly_request_limit": 10}
    assert changes["plan"][1] == {"plan_id": str(b), "name": "B", "monthly_request_limit": 99}
    assert changes["requests_used"] == (3, 3)
