"""Probe which MongoDB features a running FerretDB supports (findings: README.md).

Usage: python3 tools/ferretdb/probe.py [PORT]   (needs pymongo; uses db "ferretdb_probe")
"""

import sys

import pymongo
from pymongo.errors import OperationFailure

port = int(sys.argv[1]) if len(sys.argv) > 1 else 27017
client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=5000)
db = client["ferretdb_probe"]
col = db["items"]
col.drop()
col.insert_many([{"_id": i, "cat": "ab"[i % 2], "n": i, "txt": f"hello {i}"} for i in range(10)])


def probe(name, fn):
    try:
        print(f"OK    {name}: {fn()}")
    except OperationFailure as e:
        print(
            f"FAIL  {name}: code={e.code} ({e.details.get('codeName')}) {e.details.get('errmsg')!r}"
        )


def group(spec):
    return lambda: list(col.aggregate([{"$group": {"_id": "$cat", **spec}}, {"$sort": {"_id": 1}}]))


probe("insert/find", lambda: col.find_one({"_id": 3}))
probe("create_index", lambda: col.create_index([("cat", 1), ("n", -1)]))
probe("create_index unique", lambda: col.create_index("txt", unique=True))
probe("$group $sum", group({"total": {"$sum": "$n"}}))
probe("$group $sum:1 (count)", group({"cnt": {"$sum": 1}}))
probe(
    "$group two accumulators (expect a=20/25, cnt=5)",
    group({"a": {"$sum": "$n"}, "cnt": {"$sum": 1}}),
)
for op in ("$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet"):
    probe(f"$group {op}", group({"v": {op: "$n"}}))
probe("$group $count", group({"v": {"$count": {}}}))
probe("text index", lambda: col.create_index([("txt", "text")]))
probe("$text query", lambda: list(col.find({"$text": {"$search": "hello"}})))
probe(
    "$project field path (expect x=0)",
    lambda: list(col.aggregate([{"$project": {"x": "$n"}}, {"$limit": 1}])),
)
probe(
    "$project $add",
    lambda: list(col.aggregate([{"$project": {"x": {"$add": ["$n", 1]}}}, {"$limit": 1}])),
)
probe("$expr in find", lambda: list(col.find({"$expr": {"$gt": ["$n", 5]}})))
probe(
    "$lookup",
    lambda: list(
        col.aggregate(
            [{"$lookup": {"from": "items", "localField": "_id", "foreignField": "_id", "as": "x"}}]
        )
    ),
)
probe("TTL index", lambda: col.create_index("ts", expireAfterSeconds=60))
probe("partial index", lambda: col.create_index("n", partialFilterExpression={"n": {"$gt": 3}}))
probe(
    "transaction",
    lambda: client.start_session().with_transaction(
        lambda s: col.insert_one({"_id": 100}, session=s)
    ),
)
db.drop_collection("items")
