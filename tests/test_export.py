"""``penchant export``: a run's recommendations into a SQL table, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import penchant
from penchant import export
from penchant.cli import main
from penchant.export import export_recommendations
from pipelines import quick_pipeline


@pytest.fixture(scope="module")
def finished_run(shop: Path, tmp_path_factory) -> tuple[str, int, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("export")
    path = folder / "p.toml"
    path.write_text(quick_pipeline(f"""
plugin = "csv"
path = "{shop}/events.csv.gz"
columns = {{ user = "user_id", item = "item_id", time = "timestamp" }}"""))
    store = f"sqlite:///{folder / 'runs.sqlite'}"
    assert main(["--store", store, "run", str(path), "--out", str(folder / "out")]) == 0
    recs = pd.read_csv(folder / "out" / "recommendations.csv", dtype={"user": str,
                                                                       "item": str})
    return store, 1, recs


def table(url: str, name: str = "recs") -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql_table(name, conn)
    engine.dispose()
    return frame


def test_cli_exports_replaces_and_appends(finished_run, tmp_path, capsys) -> None:
    store, run_id, recs = finished_run
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    for _ in range(2):  # replace twice: the second leaves one copy, not two
        assert main(["--store", store, "export", str(run_id), "--to", url,
                     "--table", "recs"]) == 0
    got = table(url)
    assert len(got) == len(recs) > 0
    assert list(got.columns) == list(export.COLUMNS)
    first = got[got["user_id"] == recs["user"].iloc[0]].sort_values("position")
    assert first["item_id"].tolist() == recs[recs["user"] == recs["user"].iloc[0]]["item"]\
        .tolist()
    assert main(["--store", store, "export", str(run_id), "--to", url, "--table", "recs",
                 "--mode", "append"]) == 0
    assert len(table(url)) == 2 * len(recs)
    assert f"exported {len(recs)} recommendations of run 1" in capsys.readouterr().out


def test_a_failure_midway_leaves_the_old_rows(finished_run, tmp_path, monkeypatch) -> None:
    _, run_id, recs = finished_run
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    export_recommendations(recs.head(7), run_id, url, "recs")
    monkeypatch.setattr(export, "BATCH", 100)
    calls = {"n": 0}
    original = export._batches

    def failing(rows):
        for batch in original(rows):
            calls["n"] += 1
            if calls["n"] == 3:
                batch[0]["position"] = None  # NOT NULL: the database refuses batch 3
            yield batch

    monkeypatch.setattr(export, "_batches", failing)
    with pytest.raises(penchant.DataError, match=r"table recs: .*nothing was written"):
        export_recommendations(recs, run_id, url, "recs")
    assert len(table(url)) == 7


def test_a_table_of_another_shape_is_refused(finished_run, tmp_path) -> None:
    _, run_id, recs = finished_run
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE recs (user_id TEXT, item_id TEXT)")
    engine.dispose()
    with pytest.raises(penchant.DataError, match="exists without the columns exported_at, "
                                                 "position, run_id, score"):
        export_recommendations(recs, run_id, url, "recs")


def test_an_unfinished_run_or_a_missing_url_is_refused(finished_run, monkeypatch) -> None:
    store, run_id, _ = finished_run
    monkeypatch.delenv("NO_SUCH_URL", raising=False)
    assert main(["--store", store, "export", str(run_id), "--to-env", "NO_SUCH_URL",
                 "--table", "t"]) != 0


@pytest.mark.mysql
def test_export_to_mariadb(finished_run, mariadb, monkeypatch, capsys) -> None:
    store, run_id, recs = finished_run
    mariadb.sql("CREATE DATABASE IF NOT EXISTS shop_export")
    monkeypatch.setenv("SHOP_DB_URL", mariadb.url("shop_export"))
    assert main(["--store", store, "export", str(run_id), "--to-env", "SHOP_DB_URL",
                 "--table", "recommendations"]) == 0
    assert len(table(mariadb.url("shop_export"), "recommendations")) == len(recs)
    out = capsys.readouterr().out
    assert "penchant:***@127.0.0.1" in out and "s3cret" not in out


@pytest.mark.mongo
def test_export_to_mongodb_replaces_whole_and_appends(finished_run, mongo_uri, capsys
                                                      ) -> None:
    import pymongo

    store, run_id, recs = finished_run
    for _ in range(2):
        assert main(["--store", store, "export", str(run_id), "--to", mongo_uri,
                     "--database", "shop_export", "--table", "recs"]) == 0
    with pymongo.MongoClient(mongo_uri) as client:
        db = client["shop_export"]
        assert db["recs"].count_documents({}) == len(recs)
        assert len(db["recs"].distinct("export_id")) == 1
        doc = db["recs"].find_one({"user_id": recs["user"].iloc[0], "position": 1})
        assert doc["item_id"] == recs["item"].iloc[0] and doc["run_id"] == run_id
        assert main(["--store", store, "export", str(run_id), "--to", mongo_uri,
                     "--database", "shop_export", "--table", "recs", "--mode",
                     "append"]) == 0
        assert db["recs"].count_documents({}) == 2 * len(recs)
        client.drop_database("shop_export")


@pytest.mark.mongo
def test_a_failed_mongodb_append_takes_back_what_it_wrote(finished_run, mongo_uri,
                                                          monkeypatch) -> None:
    import pymongo

    _, run_id, recs = finished_run
    monkeypatch.setattr(export, "BATCH", 50)
    original = export._batches

    def failing(rows):
        for i, batch in enumerate(original(rows)):
            if i == 2:
                raise pymongo.errors.WriteError("disk full")
            yield batch

    monkeypatch.setattr(export, "_batches", failing)
    with pytest.raises(penchant.DataError, match="disk full; nothing was written"):
        export_recommendations(recs, run_id, mongo_uri, "recs", "append", "shop_fail")
    with pymongo.MongoClient(mongo_uri) as client:
        assert client["shop_fail"]["recs"].count_documents({}) == 0
        client.drop_database("shop_fail")
