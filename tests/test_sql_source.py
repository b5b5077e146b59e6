"""The sql source: SQLite here, MariaDB for real (tests marked mysql), against the CSV source."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import penchant
from penchant import Context
from penchant.increments import Increments
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.store import RunStore
from penchant_plugins.sources.csv import CsvSource
from penchant_plugins.sources.sql import SqlSource
from servers import MARIADB_PASSWORD

MAPPING = {"user": "user_id", "item": "item_id", "time": "ts", "value": "rating"}


def ratings(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """ml-100k-shaped: integer ids, epoch seconds, ratings 1-5."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(1, n + 1),
                         "user_id": rng.integers(1, 9, n), "item_id": rng.integers(1, 15, n),
                         "rating": rng.integers(1, 6, n),
                         "ts": 1_700_000_000 + np.sort(rng.integers(0, 90 * 86400, n))})


def sqlite_db(path: Path, frame: pd.DataFrame, table: str = "events") -> str:
    with sqlite3.connect(path) as conn:
        frame.to_sql(table, conn, index=False, dtype={"id": "INTEGER PRIMARY KEY"})
    return f"sqlite:///{path}"


def load(ctx: Context | None = None, **params) -> penchant.Dataset:
    params.setdefault("columns", MAPPING)
    return SqlSource(params).load(ctx or Context())


def same_events(a: penchant.Events, b: penchant.Events) -> None:
    left, right = a.frame.drop(columns="row"), b.frame.drop(columns="row")
    for col in ("user", "item", "event"):
        left[col], right[col] = left[col].astype("string"), right[col].astype("string")
    pd.testing.assert_frame_equal(left, right)


def test_a_table_reads_like_the_same_rows_from_csv(tmp_path: Path) -> None:
    frame = ratings()
    url = sqlite_db(tmp_path / "shop.db", frame)
    frame.drop(columns="id").to_csv(tmp_path / "r.csv", index=False)
    from_sql = load(url=url, table="events")
    from_csv = CsvSource({"path": str(tmp_path / "r.csv"), "columns": MAPPING}).load(Context())
    same_events(from_sql.events, from_csv.events)
    # Rows are named by the primary key, which orders the read.
    assert from_sql.events.frame["row"].tolist() == list(range(1, 61))
    assert "sql: 60 events from sqlite:///" in from_sql.provenance[0]


def test_small_chunks_give_the_same_events_and_report_progress(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "shop.db", ratings())
    seen: list[int] = []
    ctx = Context(progress=lambda stage, done, total: seen.append(done))
    chunked = load(ctx, url=url, table="events", chunk_size=7)
    pd.testing.assert_frame_equal(chunked.events.frame, load(url=url, table="events")
                                  .events.frame)
    assert seen == [*range(7, 60, 7), 60]


def test_a_read_only_query_is_read_and_anything_else_refused(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "shop.db", ratings())
    got = load(url=url, query="SELECT user_id, item_id, ts, rating FROM events "
                              "WHERE rating >= 4;")
    assert len(got.events) == int((ratings()["rating"] >= 4).sum())
    with_cte = load(url=url, query="WITH r AS (SELECT * FROM events) SELECT * FROM r")
    assert len(with_cte.events) == 60
    for bad in ("DELETE FROM events", "SELECT 1; DROP TABLE events",
                "UPDATE events SET rating = 0"):
        with pytest.raises(penchant.PipelineError, match="must be one SELECT"):
            SqlSource({"url": url, "query": bad, "columns": MAPPING})
    assert len(load(url=url, table="events").events) == 60  # nothing was touched


def test_the_session_is_read_only(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "shop.db", ratings())
    src = SqlSource({"url": url, "table": "events", "columns": MAPPING})
    with pytest.raises(penchant.DataError, match="readonly"), src._connect() as conn:
        conn.exec_driver_sql("DELETE FROM events")


def test_table_or_query_exactly_one_and_side_tables_by_table(tmp_path: Path) -> None:
    with pytest.raises(penchant.PipelineError, match="exactly one of `table` or `query`"):
        SqlSource({"url": "sqlite://", "columns": MAPPING})
    with pytest.raises(penchant.PipelineError, match=r"items = \{ table = \"items\""):
        SqlSource({"url": "sqlite://", "table": "t", "columns": MAPPING,
                   "items": {"path": "items.csv"}})


def test_side_tables_come_from_the_same_database(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    url = sqlite_db(path, ratings())
    with sqlite3.connect(path) as conn:
        pd.DataFrame({"sku": np.arange(1, 15), "category": list("ab") * 7,
                      "price": np.linspace(1, 14, 14)}).to_sql("products", conn, index=False)
    got = load(url=url, table="events", items={"table": "products", "id": "sku"})
    assert got.items.index.name == "item"
    assert got.items.loc["3", "category"] == "a"
    assert got.items["price"].dtype == np.float64


def test_the_time_window_goes_into_the_query(tmp_path: Path, monkeypatch) -> None:
    frame = ratings()
    url = sqlite_db(tmp_path / "shop.db", frame)
    statements: list[str] = []
    original = SqlSource._select

    def spy(self, *args, **kwargs):
        statement = original(self, *args, **kwargs)
        statements.append(str(statement.compile(compile_kwargs={"literal_binds": True})))
        return statement

    monkeypatch.setattr(SqlSource, "_select", spy)
    since, until = "2023-11-20", "2023-12-10T12:00:00"
    got = load(url=url, table="events", since=since, until=until)
    lo = pd.Timestamp(since, tz="UTC").timestamp()
    hi = pd.Timestamp(until, tz="UTC").timestamp()
    assert f"events.ts >= {lo}" in statements[0] and f"events.ts < {hi}" in statements[0]
    expected = frame[(frame["ts"] >= lo) & (frame["ts"] < hi)]
    assert got.events.frame["row"].tolist() == expected["id"].tolist()


def test_datetime_columns_are_compared_as_datetimes(tmp_path: Path) -> None:
    frame = ratings()
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s")  # naive: stored as UTC
    path = tmp_path / "shop.db"
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")
    frame.to_sql("events", engine, index=False, dtype={"ts": sa.DateTime()})
    engine.dispose()
    got = load(url=f"sqlite:///{path}", table="events", since="2023-12-01")
    assert (got.events.frame["time"] >= pd.Timestamp("2023-12-01", tz="UTC")).all()
    assert len(got.events) == int((frame["ts"] >= "2023-12-01").sum()) > 0


def test_bad_rows_are_named_by_key_then_stopped_or_dropped(tmp_path: Path) -> None:
    frame = ratings(10)
    frame["user_id"] = frame["user_id"].astype(object)
    frame.loc[2, "user_id"] = None
    frame["ts"] = frame["ts"].astype(object)
    frame.loc[6, "ts"] = "not a time"
    url = sqlite_db(tmp_path / "shop.db", frame)
    with pytest.raises(penchant.DataError) as err:
        load(url=url, table="events")
    assert "1 with null user id (id 3)" in str(err.value)
    assert "1 with unparseable time (id 7)" in str(err.value)
    ctx = Context()
    got = load(ctx, url=url, table="events", on_error="drop")
    assert 3 not in got.events.frame["row"].tolist() and len(got.events) == 8
    assert ctx.report["dropped"]["null user id"] == {"count": 1, "rows": [3]}


def test_wrong_names_get_clear_errors(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "shop.db", ratings())
    with pytest.raises(penchant.DataError, match=r"no table 'evnets'; it has 'events'"):
        load(url=url, table="evnets")
    with pytest.raises(penchant.DataError, match=r"no column for columns.value = 'score'"):
        load(url=url, table="events", columns={**MAPPING, "value": "score"})
    with pytest.raises(penchant.PipelineError, match="not a SQLAlchemy URL"):
        load(url="not a url", table="events")
    with pytest.raises(penchant.PipelineError, match="no database driver"):
        load(url="mysql+nosuchdriver://u:pw@h/db", table="events")
    with pytest.raises(penchant.DataError, match="syntax error"):
        load(url=url, query="SELECT FROM WHERE")


def new_run(store: RunStore) -> int:
    return store.start_run("test", "none", "", {}, None)


def test_incremental_reads_only_new_rows_and_adds_them(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    frame = ratings(80)
    url = sqlite_db(path, frame.iloc[:50])
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    params = {"url": url, "table": "events", "columns": MAPPING, "incremental": True}

    def read(run_id: int) -> tuple[penchant.Dataset, Context]:
        assert new_run(store) == run_id
        ctx = Context(increments=Increments(store, tmp_path / "sources", run_id))
        return SqlSource(params).load(ctx), ctx

    first, ctx1 = read(1)
    assert len(first.events) == 50 and "incremental" not in ctx1.report
    with sqlite3.connect(path) as conn:
        frame.iloc[50:].to_sql("events", conn, index=False, if_exists="append")
    second, ctx2 = read(2)
    assert ctx2.report["incremental"] == {"read_before": 50, "new": 30, "run": 1}
    full = load(url=url, table="events")
    pd.testing.assert_frame_equal(second.events.frame.astype({"user": str, "item": str}),
                                  full.events.frame.astype({"user": str, "item": str}))
    third, ctx3 = read(3)  # nothing new
    assert ctx3.report["incremental"]["new"] == 0 and len(third.events) == 80
    # One events file is kept per source, the latest.
    assert len(list((tmp_path / "sources").rglob("*.parquet"))) == 1
    # A different mapping is a different source: a full read.
    params["columns"] = {**MAPPING, "event": "rating"}
    _, ctx4 = read(4)
    assert "incremental" not in ctx4.report


def test_incremental_refuses_text_times(tmp_path: Path) -> None:
    frame = ratings(5)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    url = sqlite_db(tmp_path / "shop.db", frame)
    store = RunStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    ctx = Context(increments=Increments(store, tmp_path, new_run(store)))
    with pytest.raises(penchant.PipelineError, match="'ts' holds text"):
        load(ctx, url=url, table="events", incremental=True)


# -- MariaDB, for real ----------------------------------------------------------------------

ML100K_LIKE_PIPELINE = """
[pipeline]
name = "sql-vs-csv"
seed = 0

[source]
{source}
columns = {{ user = "user_id", item = "item_id", time = "ts", value = "rating" }}

[[features]]
plugin = "interactions"

[model]
plugin = "ease"

[recommender]
plugin = "top-k"

[evaluation]
horizons = ["7d", "30d"]
k = [5]
recommend_k = 5
baselines = ["popularity"]
"""


def run_pipeline(path: Path, source: str, tmp_path: Path, store: RunStore,
                 log: list[str] | None = None):
    path.write_text(ML100K_LIKE_PIPELINE.format(source=source))

    class Logger:
        @penchant.hookimpl
        def penchant_on_log(self, run, message):
            if log is not None:
                log.append(message)

    registry = Registry()
    return Runner(load_pipeline(path, registry), registry, store, tmp_path / path.stem,
                  observers=[Logger()]).run()


@pytest.fixture
def shop_db(mariadb, request):
    """A fresh database on the session's MariaDB, filled with ml-100k-shaped ratings."""
    import sqlalchemy as sa

    name = f"shop_{request.node.name[-20:].replace('[', '_').replace(']', '')}".lower()
    mariadb.sql(f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")
    engine = sa.create_engine(mariadb.url(name))
    frame = ratings(3000, seed=1)
    frame["user_id"] = frame["user_id"] * 7 % 97
    frame["item_id"] = np.random.default_rng(2).integers(1, 120, len(frame))
    frame.to_sql("events", engine, index=False, chunksize=1000,
                 dtype={"id": sa.Integer(), "ts": sa.BigInteger()})
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE events ADD PRIMARY KEY (id)")
    engine.dispose()
    yield name, frame
    mariadb.sql(f"DROP DATABASE {name}")


@pytest.mark.mysql
def test_mariadb_run_has_the_same_metrics_as_csv(mariadb, shop_db, tmp_path, monkeypatch
                                                  ) -> None:
    name, frame = shop_db
    frame.drop(columns="id").to_csv(tmp_path / "ratings.csv", index=False)
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    from_csv = run_pipeline(tmp_path / "csv.toml", 'plugin = "csv"\npath = "ratings.csv"',
                            tmp_path, store)
    monkeypatch.setenv("SHOP_DB_PASSWORD", MARIADB_PASSWORD)
    url = mariadb.url(name, password="${env:SHOP_DB_PASSWORD}")
    from_db = run_pipeline(tmp_path / "db.toml",
                           f'plugin = "sql"\nurl = "{url}"\ntable = "events"\nchunk_size = 500',
                           tmp_path, store)
    assert from_db.metrics == from_csv.metrics
    assert from_db.metrics["results"]["ease"]["7d"]["ndcg@5"] > 0


@pytest.mark.mysql
def test_mariadb_window_and_incremental(mariadb, shop_db, tmp_path) -> None:
    name, frame = shop_db
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    params = {"url": mariadb.url(name), "table": "events", "columns": MAPPING,
              "since": "2023-12-01", "incremental": True, "chunk_size": 256}
    ctx = Context(increments=Increments(store, tmp_path / "sources", new_run(store)))
    first = SqlSource(params).load(ctx)
    since = pd.Timestamp("2023-12-01", tz="UTC").timestamp()
    assert len(first.events) == int((frame["ts"] >= since).sum())
    import sqlalchemy as sa

    engine = sa.create_engine(mariadb.url(name))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO events (id, user_id, item_id, rating, ts) VALUES "
                             "(90001, 5, 6, 4, :t)"), {"t": int(frame["ts"].max()) + 10})
    engine.dispose()
    ctx = Context(increments=Increments(store, tmp_path / "sources", new_run(store)))
    second = SqlSource(params).load(ctx)
    assert ctx.report["incremental"]["new"] == 1
    assert second.events.frame["row"].iloc[-1] == 90001
    with pytest.raises(penchant.DataError, match="READ ONLY"), \
            SqlSource(params)._connect() as conn:
        conn.exec_driver_sql("DELETE FROM events")


@pytest.mark.mysql
def test_the_password_is_nowhere_a_run_writes_or_says(mariadb, shop_db, tmp_path,
                                                      monkeypatch) -> None:
    name, _ = shop_db
    monkeypatch.setenv("SHOP_DB_URL", mariadb.url(name))
    store_path = tmp_path / "runs.sqlite"
    store = RunStore(f"sqlite:///{store_path}")
    log: list[str] = []
    run_pipeline(tmp_path / "ok.toml",
                 'plugin = "sql"\nurl = "${env:SHOP_DB_URL}"\ntable = "events"',
                 tmp_path, store, log)
    # A failing run: wrong table, then wrong password.
    with pytest.raises(penchant.DataError) as wrong_table:
        run_pipeline(tmp_path / "bad.toml",
                     'plugin = "sql"\nurl = "${env:SHOP_DB_URL}"\ntable = "nope"',
                     tmp_path, store, log)
    monkeypatch.setenv("SHOP_DB_URL", mariadb.url(name, password=MARIADB_PASSWORD + "x"))
    with pytest.raises(penchant.DataError) as wrong_password:
        run_pipeline(tmp_path / "badpw.toml",
                     'plugin = "sql"\nurl = "${env:SHOP_DB_URL}"\ntable = "events"',
                     tmp_path, store, log)
    assert "Access denied" in str(wrong_password.value)
    said = [str(wrong_table.value), str(wrong_password.value), *log]
    assert log and all(MARIADB_PASSWORD not in text for text in said)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert store_path in written
    for path in written:
        assert MARIADB_PASSWORD.encode() not in path.read_bytes(), path
    for run in store.runs():
        assert MARIADB_PASSWORD not in f"{run.params} {run.summary} {run.error} {run.pipeline}"


def test_datetime_mark_round_trips(tmp_path: Path) -> None:
    from penchant_plugins.sources.sql import _Mark

    mark = _Mark("datetime", None).after(pd.Series([datetime(2024, 1, 2, 3, 4, 5)]))
    assert mark.value == "2024-01-02T03:04:05+00:00"
    assert mark.bound(datetime(2024, 1, 1)) == datetime(2024, 1, 2, 3, 4, 5)
    assert mark.bound(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(2024, 1, 2, 3, 4, 5,
                                                                    tzinfo=UTC)
