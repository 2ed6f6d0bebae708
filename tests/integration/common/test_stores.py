"""Real round trips to the PostgreSQL and the FerretDB/MongoDB the setup started."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from gateway_common import db, mongo
from tests.support import MONGO_URL, fresh_mongo_database, fresh_pg_database, sqlalchemy_url


async def test_postgresql_round_trip():
    with fresh_pg_database("roundtrip") as dsn:
        engine = db.make_engine(sqlalchemy_url(dsn), pool_size=1)
        try:
            await db.ping(engine)
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE probe (id uuid PRIMARY KEY, body jsonb)"))
                key = uuid.uuid4()
                await conn.execute(
                    text("INSERT INTO probe VALUES (:id, CAST(:body AS jsonb))"),
                    {"id": key, "body": '{"olá": "mundo ✓"}'},
                )
            async with engine.connect() as conn:
                row = (await conn.execute(text("SELECT id, body FROM probe"))).one()
                version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        finally:
            await engine.dispose()
    assert row.id == key and row.body == {"olá": "mundo ✓"}
    assert version.split(".")[0].isdigit()


async def test_mongodb_wire_round_trip():
    client = mongo.make_client(MONGO_URL)
    name = fresh_mongo_database("roundtrip")
    try:
        await mongo.ping(client)
        coll = client[name]["probe"]
        await coll.create_index([("k", 1)], unique=True)
        await coll.insert_many([{"k": i, "texto": f"pergunta {i} ✓"} for i in range(5)])
        found = [d["k"] async for d in coll.find({"k": {"$gte": 2}}).sort("k", -1)]
        total = await (
            await coll.aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}])
        ).to_list()
    finally:
        await client.drop_database(name)
        await client.close()
    assert found == [4, 3, 2]
    assert total[0]["n"] == 5
