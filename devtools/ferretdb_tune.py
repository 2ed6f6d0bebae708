"""Tune FerretDB's PostgreSQL backend for history's queries (local stack and benchmarks).

FerretDB v1 keeps each collection as a PostgreSQL table of ``_jsonb`` documents and turns an
equality filter on a top-level field into ``_jsonb->'field' @> value``. Its own indexes are
btree on ``_jsonb->'field'``, which ``@>`` cannot use, so every filtered query scans the table.
A GIN index on the same expressions serves those filters: a user's page among 100,000
interactions drops from ~50 ms to ~6 ms (tools/ferretdb/README.md). This is what MongoDB's
compound index does natively; history_svc itself only speaks the wire protocol.

``python -m devtools.ferretdb_tune POSTGRES_DSN DATABASE [COLLECTION]``
(idempotent; a database or collection that does not exist yet is skipped).
"""

from __future__ import annotations

import argparse

import psycopg
from psycopg import sql

FIELDS = ("distribuidor_id", "usuario_id")


def tune(dsn: str, database: str, collection: str = "interacoes") -> str | None:
    """Create the GIN index; returns the backing table's name, None when absent."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        meta = sql.Identifier(database, "_ferretdb_database_metadata")
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = '_ferretdb_database_metadata'",
            (database,),
        ).fetchone()
        if exists is None:
            return None
        row = conn.execute(
            sql.SQL("SELECT _jsonb->>'table' FROM {} WHERE _jsonb->>'_id' = %s").format(meta),
            (collection,),
        ).fetchone()
        if row is None:
            return None
        table = str(row[0])
        columns = sql.SQL(", ").join(sql.SQL("(_jsonb->{})").format(sql.Literal(f)) for f in FIELDS)
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin ({})").format(
                sql.Identifier(f"{table}_llmgw_tenant_user_gin"),
                sql.Identifier(database, table),
                columns,
            )
        )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(database, table)))
        return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dsn")
    parser.add_argument("database")
    parser.add_argument("collection", nargs="?", default="interacoes")
    args = parser.parse_args()
    table = tune(args.dsn, args.database, args.collection)
    print(f"ferretdb_tune: {args.database}.{args.collection} -> {table or 'not created yet'}")


if __name__ == "__main__":
    main()
