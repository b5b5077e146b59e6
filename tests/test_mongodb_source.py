"""The ``mongodb`` source against a real wire-protocol server: nx-27017 started here, or the
MongoDB that ``PENCHANT_MONGO_URI`` names. Each test writes to a fresh database of its own
and drops it afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

import penchant
from penchant.components import Context
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.testing import run_checks
from penchant_plugins.sources.csv import CsvSource
from penchant_plugins.sources.mongodb import MongoSource
from pipelines import quick_pipeline
from servers import free_port, missing
from test_conformance import KIT_COLUMNS, csv_params, kit_frame

pytestmark = pytest.mark.mongo


try:
    import pymongo
except ImportError:  # pragma: no cover - the test extra installs it
    missing("pymongo is not installed")

NESTED_COLUMNS = {"user": "customer.id", "item": "product.sku", "time": "event.ts",
                  "event": "event.kind", "value": "value"}


@pytest.fixture
def db(mongo_uri: str) -> Iterator[Any]:
    """A fresh database; its name is ``db.name``."""
    with pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=2000) as client:
        name = f"penchant_test_{uuid.uuid4().hex[:10]}"
        yield client[name]
        client.drop_database(name)


def source(uri: str, db: Any, collection: str = "events", **params: Any) -> MongoSource:
    return MongoSource({"uri": uri, "database": db.name, "collection": collection, **params})


def canonical(events: penchant.Events) -> pd.DataFrame:
    """Events in an order that does not depend on how they were read."""
    frame = events.frame.drop(columns="row").astype({"user": str, "item": str,
                                                     "event": str})
    return frame.sort_values(["user", "item", "time", "event", "value"]).reset_index(drop=True)


def kit_documents(nested: bool) -> list[dict[str, Any]]:
    """The conformance kit's events as documents: flat with ISO text times, or nested with
    BSON dates. A missing value is a missing field."""
    docs = []
    for row in kit_frame().to_dict("records"):
        if nested:
            ts = pd.Timestamp(row["ts"]).tz_convert("UTC").tz_localize(None).to_pydatetime()
            doc = {"customer": {"id": row["user_id"]}, "product": {"sku": row["item_id"]},
                   "event": {"ts": ts, "kind": row["kind"]}}
        else:
            doc = {k: row[k] for k in ("user_id", "item_id", "ts", "kind")}
        if not np.isnan(row["value"]):
            doc["value"] = row["value"]
        docs.append(doc)
    return docs


def csv_events(tmp_path: Path, **params: Any) -> penchant.Events:
    return CsvSource({**csv_params(tmp_path), **params}).load(Context()).events


def test_mongodb_is_registered_through_the_entry_point() -> None:
    assert "mongodb" in Registry().names("source")


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_documents_load_as_the_same_events_as_the_csv(mongo_uri, db, tmp_path,
                                                      nested) -> None:
    db.events.insert_many(kit_documents(nested))
    columns = NESTED_COLUMNS if nested else KIT_COLUMNS
    dataset = source(mongo_uri, db, columns=columns).load(Context())
    pd.testing.assert_frame_equal(canonical(dataset.events), canonical(csv_events(tmp_path)))
    assert dataset.events.frame["row"].tolist() == list(range(1, len(dataset.events) + 1))
    assert f"{db.name}.events" in dataset.provenance[0]


def test_available_columns_lists_dotted_paths_of_nested_fields(mongo_uri, db) -> None:
    db.events.insert_many(kit_documents(nested=True))
    fields = source(mongo_uri, db, columns=NESTED_COLUMNS).available_columns()
    assert {"_id", "customer", "customer.id", "event", "event.ts", "event.kind",
            "product.sku", "value"} <= set(fields)


def test_the_filter_runs_on_the_server(mongo_uri, db, tmp_path) -> None:
    db.events.insert_many(kit_documents(nested=False))
    ctx = Context()
    loaded = source(mongo_uri, db, columns=KIT_COLUMNS,
                    filter='{"kind": "purchase"}').load(ctx).events
    expected = canonical(csv_events(tmp_path))
    expected = expected[expected["event"] == "purchase"].reset_index(drop=True)
    pd.testing.assert_frame_equal(canonical(loaded), expected)
    assert ctx.report["rows_read"] == len(expected)  # the others never left the server


def test_a_filter_that_is_not_a_json_object_is_refused_naming_the_key() -> None:
    params = {"uri": "mongodb://127.0.0.1:1", "database": "d", "collection": "c",
              "columns": KIT_COLUMNS}
    for bad in ("{kind: purchase}", "[1, 2]"):
        with pytest.raises(penchant.PipelineError, match="key 'filter'"):
            MongoSource({**params, "filter": bad})
    with pytest.raises(penchant.PipelineError, match="key 'uri'"):
        MongoSource({**params, "uri": "postgresql://db/shop"})


DAY = pd.Timestamp("2024-01-01", tz="UTC")


def stored_time(day: int, storage: str) -> Any:
    t = DAY + pd.Timedelta(days=day)
    return {"date": t.tz_localize(None).to_pydatetime(), "s": int(t.timestamp()),
            "ms": int(t.timestamp() * 1000), "iso": t.isoformat()}[storage]


@pytest.mark.parametrize(("storage", "unit", "pushed"), [
    ("date", "auto", True), ("date", "s", True), ("s", "auto", True), ("s", "s", True),
    ("ms", "auto", True), ("ms", "ms", True), ("iso", "auto", False), ("iso", "iso", False)])
def test_the_time_window_goes_to_the_server_when_times_are_dates_or_numbers(
        mongo_uri, db, storage, unit, pushed) -> None:
    docs = [{"_id": f"d{day}", "u": "u1", "i": f"i{day}", "t": stored_time(day, storage)}
            for day in range(10)]
    docs += [{"_id": "no-time", "u": "u1", "i": "i98"},
             {"_id": "null-time", "u": "u1", "i": "i99", "t": None}]
    db.events.insert_many(docs)
    ctx = Context()
    events = source(mongo_uri, db, columns={"user": "u", "item": "i", "time": "t"},
                    time_unit=unit, since="2024-01-03", until="2024-01-07",
                    on_error="drop").load(ctx).events
    assert events.frame["item"].astype(str).tolist() == ["i2", "i3", "i4", "i5"]
    assert events.frame["time"].iloc[0] == DAY + pd.Timedelta(days=2)
    # documents without a time are still read, and reported, whatever was pushed down
    assert ctx.report["dropped"] == {"missing time": {"count": 2,
                                                      "rows": ["no-time", "null-time"]}}
    assert ctx.report["rows_read"] == (6 if pushed else 12)
    assert ctx.report.get("outside_window", 0) == (0 if pushed else 6)


def test_sample_reads_the_first_documents_and_count_counts_the_window(mongo_uri,
                                                                       db) -> None:
    db.events.insert_many([{"_id": f"d{day}", "u": "u1", "i": f"i{day}",
                            "t": stored_time(day, "date")} for day in range(10)])
    windowed = source(mongo_uri, db, columns={"user": "u", "item": "i", "time": "t"},
                      since="2024-01-03", filter='{"i": {"$ne": "i9"}}')
    assert windowed.count() == 7
    first = windowed.sample(Context(), 3).events.frame
    assert first["item"].astype(str).tolist() == ["i2", "i3", "i4"]
    assert first["row"].tolist() == [1, 2, 3]
    assert len(windowed.sample(Context(), 0).events) == 0


def test_chunks_of_three_give_the_same_events_as_one_chunk(mongo_uri, db) -> None:
    db.events.insert_many(kit_documents(nested=True))
    whole = source(mongo_uri, db, columns=NESTED_COLUMNS).load(Context()).events
    seen: list[tuple[int, int]] = []
    ctx = Context(progress=lambda stage, done, total: seen.append((done, total)))
    small = source(mongo_uri, db, columns=NESTED_COLUMNS, chunk_size=3).load(ctx).events
    # rows in the same order; categories may be listed in another order, which is no matter
    pd.testing.assert_frame_equal(small.frame, whole.frame, check_categorical=False)
    assert len(seen) == -(-len(whole) // 3)
    assert seen[-1] == (len(whole), len(whole))


BAD_DOCS = [
    {"_id": "ok-1", "c": {"id": "u1"}, "p": "i1", "t": "2024-01-01T00:00:00Z"},
    {"_id": "bad-user", "c": {"id": None}, "p": "i2", "t": "2024-01-02T00:00:00Z"},
    {"_id": "bad-time", "c": {"id": "u2"}, "p": "i3", "t": "the day after"},
    {"_id": "ok-2", "c": {"id": "u3"}, "p": "i4", "t": "2024-01-04T00:00:00Z"},
]
BAD_COLUMNS = {"user": "c.id", "item": "p", "time": "t"}


def test_a_bad_document_stops_the_load_naming_its_id(mongo_uri, db) -> None:
    db.events.insert_many(BAD_DOCS)
    with pytest.raises(penchant.DataError) as info:
        source(mongo_uri, db, columns=BAD_COLUMNS).load(Context())
    message = str(info.value)
    assert f"{penchant.mask_url(mongo_uri)} {db.name}.events: 2 of 4" in message
    assert "null user id (_id bad-user)" in message
    assert "unparseable time (_id bad-time)" in message


def test_on_error_drop_drops_bad_documents_and_reports_them(mongo_uri, db) -> None:
    db.events.insert_many(BAD_DOCS)
    ctx = Context()
    events = source(mongo_uri, db, columns=BAD_COLUMNS, on_error="drop").load(ctx).events
    assert sorted(events.frame["user"].astype(str)) == ["u1", "u3"]
    assert ctx.report["dropped"] == {"null user id": {"count": 1, "rows": ["bad-user"]},
                                     "unparseable time": {"count": 1, "rows": ["bad-time"]}}


def test_a_field_holding_a_document_is_named_with_its_id(mongo_uri, db) -> None:
    db.events.insert_many(BAD_DOCS)
    with pytest.raises(penchant.DataError) as info:
        source(mongo_uri, db, columns={**BAD_COLUMNS, "user": "c"}).load(Context())
    assert "field 'c' (columns.user) holds a document" in str(info.value)
    assert "_id bad-time" in str(info.value) and "'c.<field>'" in str(info.value)


def test_a_missing_mapped_field_is_caught_before_reading(mongo_uri, db) -> None:
    db.events.insert_many(BAD_DOCS)
    typo = source(mongo_uri, db, columns={**BAD_COLUMNS, "time": "ts"})
    assert "ts" not in typo.available_columns()
    with pytest.raises(penchant.DataError, match=r"no field for columns.time = 'ts'"):
        typo.load(Context())
    with pytest.raises(penchant.DataError, match="no collection 'evnts'"):
        source(mongo_uri, db, "evnts", columns=BAD_COLUMNS).available_columns()


def test_side_tables_come_from_collections_with_nested_fields_flattened(mongo_uri,
                                                                        db) -> None:
    db.events.insert_many(BAD_DOCS[:1] + BAD_DOCS[3:])
    added = datetime(2023, 5, 1, 12, 0)
    db.products.insert_many([
        {"sku": "i1", "details": {"category": "c1", "brand": "b"}, "price": 5.0,
         "added": added},
        {"sku": "i4", "details": {"category": "c2"}, "price": 7.5, "added": added}])
    db.people.insert_many([{"_id": "u1", "age": 31}, {"_id": "u3", "age": 42}])
    dataset = source(mongo_uri, db, columns=BAD_COLUMNS,
                     items={"table": "products", "id": "sku"},
                     users={"table": "people", "id": "_id"}).load(Context())
    items, users = dataset.items, dataset.users
    assert items.index.name == "item" and list(items.index) == ["i1", "i4"]
    assert "_id" not in items.columns
    assert items.loc["i4", "details.category"] == "c2"
    assert pd.isna(items.loc["i4", "details.brand"])
    assert items.loc["i1", "added"] == pd.Timestamp("2023-05-01 12:00", tz="UTC")
    assert users.index.name == "user" and users.loc["u3", "age"] == 42
    with pytest.raises(penchant.DataError, match="no collection 'nothing'"):
        source(mongo_uri, db, columns=BAD_COLUMNS,
               items={"table": "nothing", "id": "sku"}).load(Context())
    with pytest.raises(penchant.PipelineError, match="table = "):
        source(mongo_uri, db, columns=BAD_COLUMNS, items={"path": "items.csv"})


def test_an_unreachable_server_is_a_data_error_without_the_password() -> None:
    uri = f"mongodb://shop:s3cret-pw@127.0.0.1:{free_port()}"
    broken = MongoSource({"uri": uri, "database": "shop", "collection": "events",
                          "columns": KIT_COLUMNS, "timeout_ms": 150})
    for call in (broken.available_columns, lambda: broken.load(Context())):
        with pytest.raises(penchant.DataError) as info:
            call()
        message = str(info.value)
        assert "s3cret-pw" not in message
        assert "mongodb://shop:***@127.0.0.1" in message and "shop.events" in message
        assert "cannot reach the server" in message
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_refused_login_is_a_data_error_without_the_password(mongo_uri) -> None:
    parts = urlsplit(mongo_uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    uri = f"mongodb://shop:s3cret-pw@{host}/?authSource=admin"
    broken = MongoSource({"uri": uri, "database": "shop", "collection": "events",
                          "columns": KIT_COLUMNS, "timeout_ms": 2000})
    with pytest.raises(penchant.DataError) as info:
        broken.available_columns()
    assert "s3cret-pw" not in str(info.value)
    assert f"mongodb://shop:***@{host}" in str(info.value)


def test_the_conformance_kit_passes(mongo_uri, db) -> None:
    db.events.insert_many(kit_documents(nested=False))
    params = {"uri": mongo_uri, "database": db.name, "collection": "events",
              "columns": KIT_COLUMNS}
    results = run_checks(MongoSource, params)
    assert [r for r in results if r.status != "passed"] == []
    assert {r.name for r in results} >= {"source_canonical_events", "pipeline_round_trip"}


SOURCE = """
plugin = "mongodb"
uri = "${{env:TEST_MONGO_URI}}"
database = "{database}"
collection = "events"
columns = {{ user = "customer.id", item = "product.sku", time = "event.ts", event = "event.kind" }}
items = {{ table = "products", id = "sku" }}
"""


def test_a_pipeline_reads_from_mongodb_end_to_end(mongo_uri, db, tmp_path, store,
                                                   monkeypatch) -> None:
    db.events.insert_many(kit_documents(nested=True))
    db.products.insert_many([{"sku": f"i{i}", "category": f"c{i % 4}"} for i in range(24)])
    monkeypatch.setenv("TEST_MONGO_URI", mongo_uri)
    path = tmp_path / "pipeline.toml"
    path.write_text(quick_pipeline(SOURCE.format(database=db.name), horizon="30d"))
    registry = Registry()
    pipeline = load_pipeline(path, registry)
    result = Runner(pipeline, registry, store, tmp_path / "out").run()
    assert store.run(result.run.id).status == "finished"
    assert "popularity" in result.metrics["results"]
    assert "${env:TEST_MONGO_URI}" in (tmp_path / "out" / "pipeline.toml").read_text()

    renamed = SOURCE.replace("customer.id", "customer.uid")
    path.write_text(quick_pipeline(renamed.format(database=db.name), horizon="30d"))
    with pytest.raises(penchant.PipelineError, match=r"user = 'customer\.uid' not found"):
        Runner(load_pipeline(path, registry), registry, store, tmp_path / "out2").preflight()
