"""The built-in Parquet source: same events as the csv source, projection, partitions, time
types, the pushed-down window, chunking, bad rows, errors, side tables and a whole run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import penchant
from conftest import write_pipeline
from penchant.components import Context
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant_plugins.sources.csv import CsvSource
from penchant_plugins.sources.parquet import ParquetSource, window_filter

MAPPING = {"user": "user_id", "item": "item_id", "time": "ts"}
FULL = {**MAPPING, "event": "kind", "value": "price"}
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def events_frame(n: int = 12) -> pd.DataFrame:
    """``n`` events a minute apart, three users, four items, some prices missing."""
    return pd.DataFrame({
        "user_id": [f"u{i % 3}" for i in range(n)],
        "item_id": [f"i{i % 4}" for i in range(n)],
        "ts": np.arange(n, dtype=np.int64) * 60 + T0,
        "kind": ["view", "view", "purchase"] * (n // 3) + ["view"] * (n % 3),
        "price": [float(i) if i % 4 else np.nan for i in range(n)],
    })


def write(path: Path, data: pd.DataFrame | pa.Table, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data,
                                                                        preserve_index=False)
    pq.write_table(table, path, **options)
    return path


def load(folder: Path, ctx: Context | None = None, **params) -> penchant.Dataset:
    params.setdefault("columns", MAPPING)
    return ParquetSource(params, base_dir=folder).load(ctx or Context())


def utc(seconds: list[int] | np.ndarray) -> list[pd.Timestamp]:
    return [pd.Timestamp(int(s), unit="s", tz="UTC") for s in seconds]


def test_parquet_is_registered_through_the_entry_point() -> None:
    assert "parquet" in Registry().names("source")


def test_same_events_as_the_csv_source(tmp_path: Path) -> None:
    frame = events_frame()
    frame.to_csv(tmp_path / "e.csv", index=False)
    write(tmp_path / "e.parquet", frame)
    from_csv = CsvSource({"path": "e.csv", "columns": FULL}, base_dir=tmp_path)
    expected = from_csv.load(Context()).events.frame
    got = load(tmp_path, path="e.parquet", columns=FULL).events.frame
    assert got["row"].tolist() == list(range(1, 13))  # ordinals, where csv counts lines
    pd.testing.assert_frame_equal(got.assign(row=got["row"] + 1), expected)
    assert all(got[c].dtype == "category" for c in ("user", "item", "event"))
    assert str(got["time"].dtype) == "datetime64[ns, UTC]"


def corrupt_column(path: Path, column: str) -> None:
    """Overwrite every chunk of ``column`` with junk: decoding it fails, others still read."""
    meta = pq.ParquetFile(path).metadata
    index = meta.schema.names.index(column)
    with path.open("r+b") as file:
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group).column(index)
            start = (chunk.dictionary_page_offset if chunk.has_dictionary_page
                     else chunk.data_page_offset)
            file.seek(start)
            file.write(b"\xff" * chunk.total_compressed_size)


def test_only_mapped_columns_are_read(tmp_path: Path) -> None:
    frame = events_frame().assign(blob=["x" * 5000] * 12)
    path = write(tmp_path / "e.parquet", frame, compression="none", row_group_size=5)
    corrupt_column(path, "blob")
    with pytest.raises((OSError, pa.ArrowException)):
        pq.read_table(path)  # the damage is real: reading the blob fails
    events = load(tmp_path, path="e.parquet", columns=FULL, chunk_size=4).events
    assert len(events) == 12
    assert events.frame["item"].tolist() == events_frame()["item_id"].tolist()


def test_a_damaged_mapped_column_is_named_with_its_file(tmp_path: Path) -> None:
    path = write(tmp_path / "d" / "e.parquet", events_frame(), compression="none")
    corrupt_column(path, "item_id")
    with pytest.raises(penchant.DataError, match=r"e\.parquet: cannot be read as Parquet"):
        load(tmp_path, path="d")


def test_a_hive_partitioned_folder_maps_its_partition_column(tmp_path: Path) -> None:
    frame = events_frame()
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "log",
                        partition_cols=["kind"])
    (tmp_path / "log" / "_SUCCESS").write_text("")  # what Spark leaves: ignored
    source = ParquetSource({"path": "log", "columns": FULL}, base_dir=tmp_path)
    assert set(source.available_columns()) == {"user_id", "item_id", "ts", "price", "kind"}
    got = source.load(Context()).events.frame
    # files in path order: kind=purchase/ before kind=view/, rows numbered across both
    purchases = frame[frame["kind"] == "purchase"]
    assert got["event"].tolist() == ["purchase"] * 4 + ["view"] * 8
    assert got["row"].tolist() == list(range(1, 13))
    assert got["time"].tolist()[:4] == utc(purchases["ts"])
    whole = load(tmp_path / "flat", columns=FULL,
                 path=str(write(tmp_path / "flat" / "e.parquet", frame))).events.frame
    key = ["time", "user", "item"]
    pd.testing.assert_frame_equal(
        got.drop(columns="row").astype({"event": str, "user": str, "item": str})
        .sort_values(key, ignore_index=True),
        whole.drop(columns="row").astype({"event": str, "user": str, "item": str})
        .sort_values(key, ignore_index=True))


SECONDS = np.array([T0, T0 + 60, T0 + 3600], dtype=np.int64)


@pytest.mark.parametrize(("array", "unit"), [
    (pa.array(SECONDS * 1000, pa.timestamp("ms", tz="UTC")), "auto"),
    (pa.array(SECONDS * 10**6, pa.timestamp("us")), "auto"),  # naive means UTC
    (pa.array(SECONDS, pa.timestamp("s", tz="Europe/Paris")), "auto"),
    (pa.array(SECONDS, pa.int64()), "auto"),
    (pa.array(SECONDS, pa.int64()), "s"),
    (pa.array(SECONDS * 1000, pa.int64()), "auto"),
    (pa.array(SECONDS * 1000, pa.int64()), "ms"),
    (pa.array(SECONDS.astype(np.float64)), "auto"),
    (pa.array(SECONDS.astype(np.int32)), "auto"),
    (pa.array([pd.Timestamp(s, unit="s", tz="UTC").isoformat() for s in SECONDS]), "auto"),
    (pa.array(["2023-11-15T00:13:20+02:00", "2023-11-14T22:14:20Z", "2023-11-14 23:13:20"]),
     "iso"),
    (pa.array([str(s) for s in SECONDS]).dictionary_encode(), "auto"),
])
def test_time_types_become_utc(tmp_path: Path, array: pa.Array, unit: str) -> None:
    write(tmp_path / "e.parquet", pa.table({"user_id": ["u1", "u2", "u3"],
                                            "item_id": ["i1", "i2", "i3"], "ts": array}))
    frame = load(tmp_path, path="e.parquet", time_unit=unit).events.frame
    assert frame["time"].tolist() == utc(SECONDS)
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"


def window_file(folder: Path, times: pa.Array, user_ids: list | None = None) -> Path:
    """12 rows in row groups of 4; the first group (before the window) has a null user."""
    users = user_ids or [None, *[f"u{i % 3}" for i in range(1, 12)]]
    table = pa.table({"user_id": users, "item_id": [f"i{i % 4}" for i in range(12)],
                      "ts": times})
    return write(folder / "e.parquet", table, row_group_size=4)


MINUTES = np.arange(12, dtype=np.int64) * 60 + T0
#: Rows 5-10 of 12: times T0+4min up to (not including) T0+10min.
SINCE, UNTIL = "2023-11-14T22:17:20Z", "2023-11-14T22:23:20Z"


@pytest.mark.parametrize("array", [
    pa.array(MINUTES, pa.int64()),
    pa.array(MINUTES * 1000, pa.int64()),
    pa.array(MINUTES.astype(np.float64)),
    pa.array(MINUTES * 1000, pa.timestamp("ms", tz="UTC")),
    pa.array(MINUTES * 10**6, pa.timestamp("us")),
], ids=["seconds", "ms", "float", "ts-utc", "ts-naive"])
def test_the_window_skips_row_groups_and_is_exact(tmp_path: Path, array: pa.Array) -> None:
    window_file(tmp_path, array)
    ctx = Context()
    events = load(tmp_path, ctx, path="e.parquet", since=SINCE, until=UNTIL).events
    assert events.frame["row"].tolist() == [5, 6, 7, 8, 9, 10]
    assert events.frame["time"].tolist() == utc(MINUTES[4:10])
    # the first row group was never read (its null user in row 1 went unseen); the last
    # overlaps the window, so it was read and its rows 11-12 kept out by the builder
    assert ctx.report["rows_read"] == 8
    assert ctx.report["outside_window"] == 2


def test_row_groups_skipped_between_kept_ones_keep_the_ordinals_right(tmp_path: Path) -> None:
    inside, before = T0 + 300, T0 - 86_400
    times = [inside, inside + 1, before, before, inside + 2, inside + 3]
    write(tmp_path / "e.parquet", pa.table({"user_id": ["u1", "u2", None, None, "u3", "u4"],
                                            "item_id": ["i"] * 6, "ts": times}),
          row_group_size=2)
    ctx = Context()
    events = load(tmp_path, ctx, path="e.parquet", since="2023-11-14", chunk_size=5).events
    assert events.frame["row"].tolist() == [1, 2, 5, 6]
    assert events.frame["user"].tolist() == ["u1", "u2", "u3", "u4"]
    assert ctx.report["rows_read"] == 4


def test_without_statistics_the_first_values_settle_the_unit(tmp_path: Path) -> None:
    write(tmp_path / "e.parquet", pa.table({"user_id": ["u1", "u2", "u3"],
                                            "item_id": ["i1", "i2", "i3"],
                                            "ts": pa.array(SECONDS * 1000)}),
          write_statistics=False)
    frame = load(tmp_path, path="e.parquet", since="2023-01-01").events.frame
    assert frame["time"].tolist() == utc(SECONDS)


def test_string_times_are_not_pushed_down_but_filtered_exactly(tmp_path: Path) -> None:
    iso = [t.isoformat() for t in utc(MINUTES)]
    window_file(tmp_path, pa.array(iso))
    with pytest.raises(penchant.DataError, match=r"1 with null user id \(row 1\)"):
        load(tmp_path, path="e.parquet", since=SINCE, until=UNTIL)
    ctx = Context()
    events = load(tmp_path, ctx, path="e.parquet", since=SINCE, until=UNTIL,
                  on_error="drop").events
    assert events.frame["row"].tolist() == [5, 6, 7, 8, 9, 10]
    assert ctx.report["rows_read"] == 12


def test_the_window_matches_the_csv_source(tmp_path: Path) -> None:
    frame = events_frame(30).assign(ts=lambda f: f["ts"] + 30)  # half-minute times
    frame.to_csv(tmp_path / "e.csv", index=False)
    write(tmp_path / "e.parquet", frame, row_group_size=7)
    window = {"since": "2023-11-14T22:20:00Z", "until": "2023-11-14T22:31:50Z"}
    expected = CsvSource({"path": "e.csv", "columns": FULL, **window},
                         base_dir=tmp_path).load(Context()).events.frame
    got = load(tmp_path, path="e.parquet", columns=FULL, chunk_size=3, **window).events.frame
    assert got["row"].tolist() == list(range(8, 19))  # 22:20:50 … 22:30:50
    # categories may still list ids seen outside the window: compare the values
    pd.testing.assert_frame_equal(got.assign(row=got["row"] + 1), expected,
                                  check_categorical=False)


@pytest.mark.parametrize(("kind", "since", "until", "values", "kept"), [
    # bounds round outwards: a coarser column never loses a row of the window
    (pa.timestamp("s", tz="UTC"), "2023-11-14T22:13:20.5Z", "2023-11-14T22:13:30.5Z",
     [T0 - 1, T0, T0 + 10, T0 + 11], [T0, T0 + 10]),
    (pa.int64(), "2023-11-14T22:13:20.5Z", "2023-11-14T22:13:30.5Z",
     [T0 - 1, T0, T0 + 10, T0 + 11], [T0, T0 + 10]),
    (pa.float64(), "2023-11-14T22:13:20Z", "2023-11-14T22:13:30Z",
     [T0 - 2, T0 - 1, T0 + 10, T0 + 11], [T0 - 1, T0 + 10]),
    # out of the type's range: clamped, not overflowed
    (pa.int32(), "1900-01-01", "2200-01-01", [-(2**31), 0, 2**31 - 2], [-(2**31), 0, 2**31 - 2]),
])
def test_pushed_down_bounds_never_shrink_the_window(kind, since, until, values, kept) -> None:
    expression = window_filter(pa.field("ts", kind), "s", pd.Timestamp(since),
                               pd.Timestamp(until))
    table = pa.table({"ts": pa.array(values, pa.int64()).cast(kind)})
    assert table.filter(expression)["ts"].cast(pa.int64()).to_pylist() == kept


def test_nothing_is_pushed_down_for_strings_or_unsettled_units() -> None:
    since = pd.Timestamp("2024-01-01", tz="UTC")
    assert window_filter(pa.field("ts", pa.string()), "iso", since, None) is None
    assert window_filter(pa.field("ts", pa.int64()), "auto", since, None) is None
    assert window_filter(pa.field("ts", pa.int64()), "s", None, None) is None


def test_mixed_seconds_and_ms_are_read_value_by_value(tmp_path: Path) -> None:
    write(tmp_path / "e.parquet", pa.table({"user_id": ["u1", "u2"], "item_id": ["i", "i"],
                                            "ts": [T0, (T0 + 60) * 1000]}))
    frame = load(tmp_path, path="e.parquet", since="2023-01-01").events.frame
    assert frame["time"].tolist() == utc([T0, T0 + 60])


def test_small_chunks_give_the_same_events_and_report_progress(tmp_path: Path) -> None:
    frame = events_frame(30)
    write(tmp_path / "d" / "a.parquet", frame.iloc[:20], row_group_size=8)
    write(tmp_path / "d" / "b.parquet", frame.iloc[20:])
    whole = load(tmp_path, path="d", columns=FULL).events.frame
    progress, cancel_checks = [], []
    ctx = Context(progress=lambda stage, done, total: progress.append((stage, done, total)),
                  check_cancelled=lambda: cancel_checks.append(1))
    chunked = load(tmp_path, ctx, path="d", columns=FULL, chunk_size=3).events.frame
    pd.testing.assert_frame_equal(chunked, whole)
    assert whole["row"].tolist() == list(range(1, 31))
    assert whole["time"].tolist() == utc(frame["ts"])
    # a.parquet: row groups of 8, 8, 4 in batches of 3 → 3+3+2, 3+3+2, 3+1; b: 3+3+3+1
    assert [p[1] for p in progress] == [3, 6, 8, 11, 14, 16, 19, 20, 23, 26, 29, 30]
    assert len(cancel_checks) == len(progress)
    assert all(stage == "load" and total == 30 for stage, _, total in progress)


def test_a_cancelled_load_stops(tmp_path: Path) -> None:
    write(tmp_path / "e.parquet", events_frame())

    def cancel() -> None:
        raise penchant.PenchantError("stopped")

    with pytest.raises(penchant.PenchantError, match="stopped"):
        load(tmp_path, Context(check_cancelled=cancel), path="e.parquet")


def bad_rows_file(folder: Path) -> Path:
    frame = events_frame().astype({"ts": object, "price": object})
    frame.loc[2, "user_id"] = None  # row 3
    frame.loc[8, "user_id"] = None  # row 9
    frame.loc[4, "ts"] = "yesterday"  # row 5
    frame.loc[5, "price"] = "cheap"  # row 6
    frame["ts"] = [t if isinstance(t, str) else pd.Timestamp(t, unit="s").isoformat()
                   for t in frame["ts"]]
    frame["price"] = frame["price"].astype(str)
    return write(folder / "e.parquet", frame)


def test_bad_rows_stop_the_load_naming_their_rows(tmp_path: Path) -> None:
    bad_rows_file(tmp_path)
    with pytest.raises(penchant.DataError) as err:
        load(tmp_path, path="e.parquet", columns=FULL, chunk_size=4)
    message = str(err.value)
    assert "4 of 12 event row(s)" in message
    assert "2 with null user id (rows 3, 9)" in message
    assert "1 with unparseable time (row 5)" in message
    assert "1 with value that is not a number (row 6)" in message


def test_bad_rows_are_dropped_and_reported(tmp_path: Path) -> None:
    bad_rows_file(tmp_path)
    ctx = Context()
    events = load(tmp_path, ctx, path="e.parquet", columns=FULL, chunk_size=4,
                  on_error="drop").events
    assert events.frame["row"].tolist() == [1, 2, 4, 7, 8, 10, 11, 12]
    assert ctx.report["dropped"]["null user id"] == {"count": 2, "rows": [3, 9]}
    assert ctx.report["dropped"]["unparseable time"] == {"count": 1, "rows": [5]}


def test_large_integer_ids_with_nulls_stay_exact(tmp_path: Path) -> None:
    big = 2**60 + 1  # a float would make it 2**60
    write(tmp_path / "e.parquet", pa.table({"user_id": pa.array([big, None, big + 2]),
                                            "item_id": pa.array([1, 2, 3]),
                                            "ts": pa.array(SECONDS)}))
    frame = load(tmp_path, path="e.parquet", on_error="drop").events.frame
    assert frame["user"].tolist() == [str(big), str(big + 2)]
    assert frame["item"].tolist() == ["1", "3"]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(penchant.DataError, match=r"nope\.parquet.*does not exist"):
        load(tmp_path, path="nope.parquet")
    source = ParquetSource({"path": "nope.parquet", "columns": MAPPING}, base_dir=tmp_path)
    with pytest.raises(penchant.DataError, match=r"nope\.parquet.*does not exist"):
        source.available_columns()


def test_a_folder_without_parquet_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    with pytest.raises(penchant.DataError,
                       match=r"empty \(from 'empty'\): the folder holds no Parquet files"):
        load(tmp_path, path="empty")


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    (tmp_path / "e.parquet").write_text("user_id,item_id,ts\nu1,i1,1700000000\n")
    with pytest.raises(penchant.DataError, match=r"e\.parquet \(from 'e\.parquet'\): not a "
                                                 r"Parquet file.*plugin = \"csv\""):
        load(tmp_path, path="e.parquet")


def test_a_foreign_file_in_a_folder_is_named(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.parquet", events_frame())
    (tmp_path / "d" / "notes.txt").write_text("not parquet")
    with pytest.raises(penchant.DataError, match=r"d: .*notes\.txt is not a Parquet file"):
        load(tmp_path, path="d")


def test_missing_mapped_column_names_key_column_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "e.parquet", events_frame())
    with pytest.raises(penchant.DataError) as err:
        load(tmp_path, path="e.parquet", columns={**MAPPING, "value": "rating"})
    message = str(err.value)
    assert str(path) in message
    assert "columns.value = 'rating'" in message
    assert "'user_id', 'item_id', 'ts', 'kind', 'price'" in message


def test_side_tables_are_read_from_parquet_and_indexed_by_id(tmp_path: Path) -> None:
    write(tmp_path / "data" / "e.parquet", events_frame())
    write(tmp_path / "data" / "items.parquet",
          pa.table({"brand": ["acme", "zeta"], "item_id": [" i1 ", "i2"],
                    "price": [2.5, None]}))
    write(tmp_path / "data" / "users.parquet",
          pa.table({"uid": pa.array([1, 2], pa.int64()), "region": ["north", "south"]}))
    source = ParquetSource({"path": "data/e.parquet", "columns": MAPPING,
                            "items": {"path": "data/items.parquet"},
                            "users": {"path": "data/users.parquet", "id": "uid"}},
                           base_dir=tmp_path)
    assert source.describe_origin() == str(tmp_path / "data" / "e.parquet")
    data = source.load(Context())
    assert data.items.index.tolist() == ["i1", "i2"]
    assert data.items.index.name == "item" and data.items.index.dtype == "string"
    assert data.items.columns.tolist() == ["brand", "price"]
    assert data.items.loc["i1", "price"] == 2.5
    assert data.users.index.tolist() == ["1", "2"]
    assert data.users.loc["2", "region"] == "south"


def test_side_table_errors(tmp_path: Path) -> None:
    write(tmp_path / "e.parquet", events_frame())
    write(tmp_path / "sku.parquet", pa.table({"sku": ["i1"], "price": [2.0]}))
    write(tmp_path / "twice.parquet", pa.table({"item_id": ["i1", "i1"], "price": [2.0, 3.0]}))
    with pytest.raises(penchant.DataError, match=r"gone\.parquet.*does not exist"):
        load(tmp_path, path="e.parquet", items={"path": "gone.parquet"})
    with pytest.raises(penchant.DataError, match=r"sku\.parquet: no id column 'item_id'.*'sku'"):
        load(tmp_path, path="e.parquet", items={"path": "sku.parquet"})
    with pytest.raises(penchant.DataError, match=r"twice\.parquet: 1 id\(s\).*'i1'"):
        load(tmp_path, path="e.parquet", items={"path": "twice.parquet"})
    with pytest.raises(penchant.PipelineError, match="Parquet files only"):
        ParquetSource({"path": "e.parquet", "columns": MAPPING, "items": {"path": "items.csv"}})
    with pytest.raises(penchant.PipelineError, match="from Parquet files"):
        ParquetSource({"path": "e.parquet", "columns": MAPPING, "users": {"table": "users"}})


# -- a whole run: the demo shop as Parquet scores exactly as it does as CSV ----------------

def shop_as_parquet(shop: Path, folder: Path) -> Path:
    """The demo shop's files as Parquet, events split into two month-partitioned folders."""
    events = pd.read_csv(shop / "events.csv.gz", dtype={"user_id": str, "item_id": str})
    events["half"] = np.where(np.arange(len(events)) < len(events) // 2, "a", "b")
    pq.write_to_dataset(pa.Table.from_pandas(events, preserve_index=False),
                        folder / "events", partition_cols=["half"])
    for name in ("items", "users"):
        table = pd.read_csv(shop / f"{name}.csv", dtype={f"{name[:-1]}_id": str})
        write(folder / f"{name}.parquet", table)
    return folder


def test_a_run_on_the_shop_as_parquet_matches_the_csv_run(shop: Path, store,
                                                          tmp_path: Path) -> None:
    registry = Registry()
    data = shop_as_parquet(shop, tmp_path / "pq")
    fast = ["model.epochs=1", "model.hidden=8", "model.latent=4"]
    csv_file = write_pipeline(shop, tmp_path, epochs=1)
    text = csv_file.read_text()
    source = text[text.index("[source]"):text.index("[[preprocess]]")]
    parquet_source = (f'[source]\nplugin = "parquet"\npath = "{data}/events"\n'
                      'columns = { user = "user_id", item = "item_id", time = "timestamp", '
                      'event = "event_type" }\n'
                      f'items = {{ path = "{data}/items.parquet", id = "item_id" }}\n'
                      f'users = {{ path = "{data}/users.parquet", id = "user_id" }}\n\n')
    (tmp_path / "pq.toml").write_text(text.replace(source, parquet_source))
    results = []
    for name, path in (("csv", csv_file), ("parquet", tmp_path / "pq.toml")):
        pipeline = load_pipeline(path, registry, fast)
        Runner(pipeline, registry, store, tmp_path / name).run()
        results.append(json.loads((tmp_path / name / "metrics.json").read_text())["results"])
    assert results[0] == results[1]
    assert results[0]["vae"]["30d"]["users"] > 0
