"""The built-in CSV source: reading, typing, line numbers, side tables and error messages."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

import penchant
from penchant.components import Context
from penchant.plugins import Registry
from penchant_plugins.sources.csv import CsvSource

MAPPING = {"user": "user_id", "item": "item_id", "time": "ts"}
EVENTS = "user_id,item_id,ts\nu1,i1,1700000000\nu2,i2,1700000060\nu1,i3,1700000120\n"


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def load(folder: Path, ctx: Context | None = None, **params) -> penchant.Dataset:
    params.setdefault("columns", MAPPING)
    return CsvSource(params, base_dir=folder).load(ctx or Context())


def utc(*texts: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(t, tz="UTC") for t in texts]


def test_csv_is_registered_through_the_entry_point():
    assert "csv" in Registry().names("source")


def test_header_file_maps_columns_types_them_and_numbers_lines(tmp_path):
    write(tmp_path, "e.csv", "ts,item_id,user_id,kind,stars\n"
                             "1700000000,i1,u1,view,\n"
                             "1700000060,i2,u2,buy,4.5\n")
    columns = {**MAPPING, "event": "kind", "value": "stars"}
    frame = load(tmp_path, path="e.csv", columns=columns).events.frame
    assert frame["user"].tolist() == ["u1", "u2"]
    assert frame["item"].tolist() == ["i1", "i2"]
    assert frame["event"].tolist() == ["view", "buy"]
    assert frame["value"].isna().tolist() == [True, False]
    assert frame["value"].iloc[1] == 4.5
    assert frame["time"].tolist() == utc("2023-11-14 22:13:20", "2023-11-14 22:14:20")
    assert frame["row"].tolist() == [2, 3]
    assert all(frame[c].dtype == "category" for c in ("user", "item", "event"))


def test_headerless_file_takes_names_and_counts_from_line_one(tmp_path):
    write(tmp_path, "e.csv", EVENTS.split("\n", 1)[1])
    source = CsvSource({"path": "e.csv", "columns": MAPPING, "header": False,
                        "names": ["user_id", "item_id", "ts"]}, base_dir=tmp_path)
    assert source.available_columns() == ["user_id", "item_id", "ts"]
    frame = source.load(Context()).events.frame
    assert frame["user"].tolist() == ["u1", "u2", "u1"]
    assert frame["row"].tolist() == [1, 2, 3]


def test_names_replace_a_header(tmp_path):
    write(tmp_path, "e.csv", "a,b,c\nu1,i1,1700000000\n")
    frame = load(tmp_path, path="e.csv", names=["user_id", "item_id", "ts"]).events.frame
    assert frame["item"].tolist() == ["i1"]
    assert frame["row"].tolist() == [2]


def test_a_column_named_twice_is_refused_naming_both(tmp_path):
    write(tmp_path, "e.csv", "user_id,item_id,user_id,ts\nu1,i1,u2,1700000000\n")
    with pytest.raises(penchant.DataError, match=r"e.csv: line 1 names the same column more "
                                                 r"than once: 'user_id' \(columns 1, 3\)"):
        load(tmp_path, path="e.csv")
    assert load(tmp_path, path="e.csv", names=["user_id", "item_id", "other", "ts"]
                ).events.frame["user"].tolist() == ["u1"]


def test_headerless_file_without_names_is_refused():
    with pytest.raises(penchant.PipelineError, match="names"):
        CsvSource({"path": "e.csv", "columns": MAPPING, "header": False})


@pytest.mark.parametrize(("delimiter", "char"), [("\t", "\t"), ("tab", "\t"), ("\\t", "\t"),
                                                 (";", ";")])
def test_delimiters(tmp_path, delimiter, char):
    write(tmp_path, "e.txt", EVENTS.replace(",", char))
    frame = load(tmp_path, path="e.txt", delimiter=delimiter).events.frame
    assert frame["item"].tolist() == ["i1", "i2", "i3"]


def test_a_long_delimiter_is_refused():
    with pytest.raises(penchant.PipelineError, match="delimiter"):
        CsvSource({"path": "e.csv", "columns": MAPPING, "delimiter": "::"})


@pytest.mark.parametrize(("unit", "times"), [
    ("s", ["1700000000", "1700000060"]),
    ("auto", ["1700000000", "1700000060"]),
    ("ms", ["1700000000000", "1700000060000"]),
    ("iso", ["2023-11-15T00:13:20+02:00", "2023-11-14T22:14:20Z"]),
    ("auto", ["2023-11-14T17:13:20-05:00", "2023-11-14 22:14:20"]),
])
def test_time_units(tmp_path, unit, times):
    write(tmp_path, "e.csv", "user_id,item_id,ts\n" + "".join(f"u,i,{t}\n" for t in times))
    frame = load(tmp_path, path="e.csv", time_unit=unit).events.frame
    assert frame["time"].tolist() == utc("2023-11-14 22:13:20", "2023-11-14 22:14:20")
    assert str(frame["time"].dtype) == "datetime64[ns, UTC]"


def test_gzip_is_read_by_file_name(tmp_path):
    (tmp_path / "e.csv.gz").write_bytes(gzip.compress(EVENTS.encode()))
    frame = load(tmp_path, path="e.csv.gz").events.frame
    assert frame["item"].tolist() == ["i1", "i2", "i3"]
    assert frame["row"].tolist() == [2, 3, 4]


def test_small_chunks_give_the_same_events_and_report_progress(tmp_path):
    lines = "".join(f"u{i % 7},i{i % 5},{1700000000 + i}\n" for i in range(50))
    write(tmp_path, "e.csv", "user_id,item_id,ts\n" + lines + "\n" + lines)
    whole = load(tmp_path, path="e.csv").events.frame
    progress, cancel_checks = [], []
    ctx = Context(progress=lambda stage, done, total: progress.append((stage, done, total)),
                  check_cancelled=lambda: cancel_checks.append(1))
    chunked = load(tmp_path, ctx, path="e.csv", chunk_size=7).events.frame
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(whole) == 100
    assert whole["row"].tolist() == [*range(2, 52), *range(53, 103)]  # line 52 is blank
    assert len(progress) == len(cancel_checks) == 15  # 101 lines in chunks of 7
    assert [p[1] for p in progress] == [*range(7, 101, 7), 101]
    assert all(stage == "load" and done <= total for stage, done, total in progress)


def test_a_cancelled_load_stops(tmp_path):
    write(tmp_path, "e.csv", EVENTS)

    def cancel():
        raise penchant.PenchantError("stopped")

    with pytest.raises(penchant.PenchantError, match="stopped"):
        load(tmp_path, Context(check_cancelled=cancel), path="e.csv")


def test_a_bad_time_stops_the_load_naming_its_line_and_spoils_no_other(tmp_path):
    write(tmp_path, "e.csv", EVENTS.replace("1700000060", "yesterday") + "u3,i1,1700000180\n")
    with pytest.raises(penchant.DataError,
                       match=r"e\.csv: 1 of 4 event row\(s\).*1 with unparseable time \(line 3\)"):
        load(tmp_path, path="e.csv", chunk_size=2)
    ctx = Context()
    events = load(tmp_path, ctx, path="e.csv", chunk_size=2, on_error="drop").events
    assert events.frame["row"].tolist() == [2, 4, 5]
    assert events.frame["time"].notna().all()
    assert ctx.report["dropped"] == {"unparseable time": {"count": 1, "rows": [3]}}


def test_missing_mapped_column_names_key_column_file_and_columns(tmp_path):
    path = write(tmp_path, "e.csv", EVENTS)
    with pytest.raises(penchant.DataError) as err:
        load(tmp_path, path="e.csv", columns={**MAPPING, "value": "rating"})
    message = str(err.value)
    assert str(path) in message
    assert "columns.value = 'rating'" in message
    assert "'user_id', 'item_id', 'ts'" in message


def test_missing_file(tmp_path):
    with pytest.raises(penchant.DataError, match=r"nope\.csv.*does not exist"):
        load(tmp_path, path="nope.csv")


def test_ragged_line_is_named(tmp_path):
    path = write(tmp_path, "e.csv", EVENTS + "u4,i4,1700000300,extra\n")
    with pytest.raises(penchant.DataError, match=r"line 5 has 4 fields where the header has 3"):
        load(tmp_path, path="e.csv")
    assert path.exists()


def test_rows_longer_than_the_header_are_refused(tmp_path):
    write(tmp_path, "e.csv", "user_id,item_id,ts\nu1,i1,1700000000,\nu2,i2,1700000060,\n")
    with pytest.raises(penchant.DataError, match="line 2 has 4 fields where the header names 3"):
        load(tmp_path, path="e.csv")


def test_wrong_encoding_is_named_and_the_right_one_reads(tmp_path):
    write(tmp_path, "e.csv", EVENTS.replace("u2", "ü2"), encoding="latin-1")
    with pytest.raises(penchant.DataError, match=r"e\.csv: cannot be read as utf-8"):
        load(tmp_path, path="e.csv")
    frame = load(tmp_path, path="e.csv", encoding="latin-1").events.frame
    assert frame["user"].tolist() == ["u1", "ü2", "u1"]


def test_unknown_encoding_is_a_pipeline_error(tmp_path):
    write(tmp_path, "e.csv", EVENTS)
    with pytest.raises(penchant.PipelineError, match="unknown encoding 'klingon'"):
        load(tmp_path, path="e.csv", encoding="klingon")


def test_relative_paths_resolve_against_the_pipeline_folder(tmp_path):
    write(tmp_path, "data/e.csv", EVENTS)
    write(tmp_path, "data/items.csv", "item_id,price\ni1,2.5\n")
    source = CsvSource({"path": "data/e.csv", "columns": MAPPING,
                        "items": {"path": "data/items.csv"}}, base_dir=tmp_path)
    assert source.describe_origin() == str(tmp_path / "data" / "e.csv")
    assert source.available_columns() == ["user_id", "item_id", "ts"]
    assert source.load(Context()).items["price"].tolist() == [2.5]


def test_side_tables_are_indexed_by_id_with_sniffed_delimiters(tmp_path):
    write(tmp_path, "e.csv", EVENTS)
    write(tmp_path, "items.csv", "brand;item_id;price\nacme; i1 ;2.5\nzeta;i2;\n")
    write(tmp_path, "users.tsv", "uid\tregion\n1\tnorth\nu2\tsouth\n")
    data = load(tmp_path, path="e.csv", items={"path": "items.csv"},
                users={"path": "users.tsv", "id": "uid"})
    assert data.items.index.tolist() == ["i1", "i2"]
    assert data.items.index.name == "item"
    assert data.items.index.dtype == "string"
    assert data.items.columns.tolist() == ["brand", "price"]
    assert data.items.loc["i1", "price"] == 2.5
    assert data.users.index.tolist() == ["1", "u2"]
    assert data.users.loc["u2", "region"] == "south"


def test_side_table_errors_name_the_file(tmp_path):
    write(tmp_path, "e.csv", EVENTS)
    write(tmp_path, "items.csv", "sku,price\ni1,2\n")
    write(tmp_path, "twice.csv", "item_id,price\ni1,2\ni1,3\n")
    with pytest.raises(penchant.DataError, match=r"gone\.csv.*does not exist"):
        load(tmp_path, path="e.csv", items={"path": "gone.csv"})
    with pytest.raises(penchant.DataError, match=r"items\.csv: no id column 'item_id'.*'sku'"):
        load(tmp_path, path="e.csv", items={"path": "items.csv"})
    with pytest.raises(penchant.DataError, match=r"twice\.csv: 1 id\(s\).*'i1'"):
        load(tmp_path, path="e.csv", items={"path": "twice.csv"})
    with pytest.raises(penchant.PipelineError, match="from files"):
        CsvSource({"path": "e.csv", "columns": MAPPING, "users": {"table": "users"}})


def test_a_header_only_file_loads_no_events(tmp_path):
    write(tmp_path, "e.csv", "user_id,item_id,ts\n")
    events = load(tmp_path, path="e.csv").events
    assert len(events) == 0
    with pytest.raises(penchant.DataError, match="no events left"):
        events.check("e.csv")


def test_an_empty_file_is_named(tmp_path):
    write(tmp_path, "e.csv", "")
    with pytest.raises(penchant.DataError, match=r"e\.csv: the file is empty"):
        load(tmp_path, path="e.csv")
