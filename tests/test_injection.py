"""Injection through a source's parameters: every attempt is refused with a clear
PenchantError, and the database is intact afterwards. SQLite always; MariaDB (``mysql``)
and MongoDB (``mongo``) against real servers."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import penchant
from penchant import Context
from penchant_plugins.sources.sql import SqlSource
from test_sql_source import MAPPING, ratings, shop_db, sqlite_db  # noqa: F401 (a fixture)

#: (what is attacked, parameters over a plain table read, the error, what it says).
SQL_ATTEMPTS: list[tuple[str, dict[str, Any], type[penchant.PenchantError], str]] = [
    ("table", {"table": "events; DROP TABLE events"}, penchant.DataError, "no table"),
    # MariaDB names a backquote an "Incorrect table name", SQLite finds no such table.
    ("table", {"table": "events`; DROP TABLE events; -- "}, penchant.DataError,
     "(no|Incorrect) table"),
    ("table", {"table": 'events"; DROP TABLE events; --'}, penchant.DataError,
     "(no|Incorrect) table"),
    ("schema", {"table": "x; DROP TABLE events.events"}, penchant.DataError,
     "(?i)x; DROP TABLE events"),
    ("column", {"columns": {**MAPPING, "user": "user_id) FROM events; DROP TABLE events; --"}},
     penchant.DataError, "no column for columns.user"),
    ("column", {"columns": {**MAPPING, "time": "ts FROM events; DELETE FROM events; --"}},
     penchant.DataError, "no column for columns.time"),
    ("key", {"key": "id; DROP TABLE events"}, penchant.DataError, "key column"),
    ("side table", {"items": {"table": "events; DROP TABLE events", "id": "item_id"}},
     penchant.DataError, "no table"),
    ("window", {"since": "2023-01-01'; DROP TABLE events; --"}, penchant.PipelineError,
     "key 'since'"),
    ("window", {"until": "1 OR 1=1"}, penchant.PipelineError, "key 'until'"),
    ("query", {"table": None, "query": "SELECT * FROM events; DROP TABLE events"},
     penchant.PipelineError, "must be one SELECT"),
    ("query", {"table": None, "query": "SELECT 1; SELECT 2"}, penchant.PipelineError,
     "a second statement"),
    ("query", {"table": None, "query": "DELETE FROM events"}, penchant.PipelineError,
     "must be one SELECT"),
    ("query", {"table": None, "query": "WITH x AS (SELECT 1) DELETE FROM events"},
     penchant.PipelineError, "it has 'DELETE'"),
    ("query", {"table": None, "query": "SELECT * FROM events INTO OUTFILE '/tmp/p.csv'"},
     penchant.PipelineError, "it has 'INTO'"),
    ("query", {"table": None, "query": "SELECT * FROM events FOR UPDATE"},
     penchant.PipelineError, "it has 'UPDATE'"),
    ("query", {"table": None, "query": "SELECT 1 -- it's\n; DROP TABLE events"},
     penchant.PipelineError, "it has 'DROP'"),
    ("query", {"table": None, "query": "SELECT 'a\\' ; DROP TABLE events; --'"},
     penchant.PipelineError, "not with a backslash"),
]


def attempt(url: str, params: dict[str, Any], error: type[Exception], match: str) -> None:
    base = {"url": url, "table": "events", "columns": MAPPING}
    with pytest.raises(error, match=match):
        SqlSource({k: v for k, v in {**base, **params}.items() if v is not None}).load(
            Context())


@pytest.mark.parametrize(("target", "params", "error", "match"), SQL_ATTEMPTS,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(SQL_ATTEMPTS)])
def test_sqlite_injection_is_refused_and_the_database_intact(
        tmp_path: Path, target, params, error, match) -> None:
    path = tmp_path / "shop.db"
    url = sqlite_db(path, ratings())
    attempt(url, params, error, match)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (60,)


def test_values_that_look_like_sql_are_data(tmp_path: Path) -> None:
    """The same characters inside literals and quoted names are no attack and are read."""
    url = sqlite_db(tmp_path / "shop.db", ratings())
    got = SqlSource({"url": url, "columns": {**MAPPING, "value": "delete"}, "query":
                     "SELECT user_id, item_id, ts, rating AS \"delete\" FROM events "
                     "WHERE 'a;b' <> '; DROP TABLE events; --'"}).load(Context())
    assert len(got.events) == 60


@pytest.mark.mysql
def test_mariadb_injection_is_refused_and_the_database_intact(mariadb, shop_db  # noqa: F811
                                                              ) -> None:
    name, frame = shop_db
    url = mariadb.url(name)
    engine = sa.create_engine(url)
    for target, params, error, match in SQL_ATTEMPTS:
        attempt(url, params, error, match)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
        assert rows == len(frame), f"{target} {params}"
    engine.dispose()


# -- MongoDB --------------------------------------------------------------------------------

MONGO_ATTEMPTS: list[tuple[str, dict[str, Any], str]] = [
    ("filter", {"filter": '{"$where": "db.events.drop() || true"}'}, "runs JavaScript"),
    ("filter", {"filter": '{"$expr": {"$function": {"body": "function() {return true}", '
                          '"args": [], "lang": "js"}}}'}, "uses \\$function"),
    ("filter", {"filter": '{"$or": [{"user_id": 1}, {"$where": "sleep(10000)"}]}'},
     "uses \\$where"),
    ("collection", {"collection": "system.js"}, "key 'collection'"),
    ("collection", {"collection": "events.$cmd"}, "key 'collection'"),
    ("database", {"database": "admin/../shop"}, "key 'database'"),
    ("database", {"database": "shop.$cmd"}, "key 'database'"),
    ("projection", {"columns": {"user": "$where", "item": "item_id", "time": "ts"}},
     "key 'columns.user'"),
    ("projection", {"columns": {"user": "user_id.$", "item": "item_id", "time": "ts"}},
     "key 'columns.user'"),
    ("side table", {"users": {"table": "system.users", "id": "user_id"}},
     "key 'users.table'"),
]


@pytest.fixture
def mongo_events(mongo_uri: str) -> Iterator[Any]:
    """A fresh database holding an ``events`` collection of ten documents."""
    pymongo = pytest.importorskip("pymongo")
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=2000) as client:
        db = client[f"penchant_injection_{uuid.uuid4().hex[:10]}"]
        db.events.insert_many([{"user_id": u % 3, "item_id": u, "ts": 1_700_000_000 + u}
                               for u in range(10)])
        yield db
        client.drop_database(db.name)


@pytest.mark.mongo
@pytest.mark.parametrize(("target", "params", "match"), MONGO_ATTEMPTS,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(MONGO_ATTEMPTS)])
def test_mongodb_injection_is_refused_and_the_collection_intact(
        mongo_uri, mongo_events, target, params, match) -> None:
    from penchant_plugins.sources.mongodb import MongoSource

    base = {"uri": mongo_uri, "database": mongo_events.name, "collection": "events",
            "columns": {"user": "user_id", "item": "item_id", "time": "ts"}}
    with pytest.raises(penchant.PipelineError, match=match):
        MongoSource({**base, **params}).load(Context())
    assert mongo_events.events.count_documents({}) == 10
    assert mongo_events.name in mongo_events.client.list_database_names()
