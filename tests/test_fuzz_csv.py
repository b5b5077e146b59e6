"""Fuzzing the CSV source: whatever bytes a shop exports, loading either gives events or a
``PenchantError`` naming the file, never a traceback from deep inside pandas.

The files are built from parts that real exports get wrong (delimiters, quoting, encodings
and byte-order marks, huge or empty fields, mixed time formats, NaN and infinity, repeated
or missing columns, truncation, binary junk, gzip), so shrinking ends at a readable file.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import penchant
from penchant.components import Context
from penchant_plugins.sources.csv import CsvSource

HEADER = ["user_id", "item_id", "ts", "kind", "stars"]
MAPPINGS = [
    {"user": "user_id", "item": "item_id", "time": "ts"},
    {"user": "user_id", "item": "item_id", "time": "ts", "event": "kind", "value": "stars"},
    {"user": "user_id", "item": "item_id", "time": "missing_column"},
]
DELIMITERS = [",", ";", "\t", "|", " ", ":", "\"", "'", "\\", "#", "\n", "\r", "x", "é"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32",
             "ascii"]

times = st.one_of(
    st.integers(-10**20, 10**20).map(str),                       # epoch s or ms, or absurd
    st.floats(allow_nan=True, allow_infinity=True).map(repr),      # 1.7e9, nan, inf
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "", " ",
                     "NULL", "None", "NaT", "0", "-0", "1700000000", "1700000000000",
                     "2024-02-30", "2024-06-01", "2024-06-01T12:00:00Z", "24:00",
                     "2024-06-01T12:00:00+25:00", "99999-01-01", "0000-01-01",
                     "2024-W01", "yesterday", "１７００", "\x00", "12:00"]),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=12),
)
values = st.one_of(st.sampled_from(["", "nan", "inf", "-inf", "1e999", "4.5", "-0", "x",
                                    "1,5", "0x1f"]),
                   st.floats().map(repr), st.text(max_size=6))
ids = st.one_of(st.sampled_from(["u1", "i1", "", " ", "NA", "null", "nan", "1.0", "007",
                                 "x" * 70_000]),
                st.text(max_size=8))
fields = st.one_of(ids, times, values)


@st.composite
def csv_files(draw: st.DrawFn) -> dict[str, Any]:
    """A file's bytes, its name, and the source parameters that read it."""
    header = draw(st.lists(st.sampled_from([*HEADER, "extra", ""]), min_size=0, max_size=7))
    if draw(st.booleans()):
        header = HEADER[:3] + header  # usually the mapped columns are there, maybe twice
    width = max(len(header), 1)
    row = st.lists(fields, min_size=max(0, width - 1), max_size=width + 1)
    rows = draw(st.lists(row, max_size=12))
    delimiter = draw(st.sampled_from(DELIMITERS))
    quoting = draw(st.sampled_from(["writer", "all", "raw"]))
    if quoting == "raw" or len(delimiter.encode("utf-8")) != 1 or delimiter in "\r\n\"":
        text = "".join(delimiter.join(line) + draw(st.sampled_from(["\n", "\r\n", "\r"]))
                       for line in [header, *rows])
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter,
                            quoting=csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL)
        writer.writerows([header, *rows])
        text = buffer.getvalue()
    written = draw(st.sampled_from(ENCODINGS))
    data = text.encode(written, errors="replace")
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    data += draw(st.sampled_from([b"", b"\x00\xff\xfe", b"\x1f\x8b\x08", bytes(range(256))]))
    name = draw(st.sampled_from(["e.csv", "e.tsv", "e.csv.gz", "e.csv.bz2"]))
    if name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
        cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
        data = data if cut is None else data[:cut]
    params: dict[str, Any] = {
        "path": name,
        "columns": draw(st.sampled_from(MAPPINGS)),
        "delimiter": draw(st.sampled_from([delimiter, ",", "tab"])),
        "encoding": draw(st.sampled_from([written, "utf-8", "latin-1"])),
        "time_unit": draw(st.sampled_from(["auto", "s", "ms", "iso"])),
        "on_error": draw(st.sampled_from(["stop", "drop"])),
        "chunk_size": draw(st.integers(1, 5)),
    }
    if draw(st.booleans()):
        params["header"] = False
        params["names"] = draw(st.lists(st.sampled_from(HEADER), min_size=1, max_size=6))
    items = draw(st.one_of(st.none(), side_tables))
    if items is not None:
        params["items"] = {"path": "items.csv", "id": "item_id"}
    return {"data": data, "params": params, "items": items}


#: An item side table: usually a header and a few ragged rows, sometimes junk.
side_tables = st.one_of(
    st.builds(lambda rows, sep: "\n".join(sep.join(r) for r in rows).encode(),
              st.lists(st.lists(st.one_of(st.just("item_id"), ids), max_size=3), max_size=4),
              st.sampled_from([",", ";", "\t", "|", " "])),
    st.binary(max_size=40),
)


def case(data: bytes, items: bytes | None = None, **params: Any) -> dict[str, Any]:
    """An explicit input for ``check_outcome``: the regression examples below."""
    return {"data": data, "items": items, "params": {
        "path": "e.csv", "columns": MAPPINGS[0], "chunk_size": 2, **params}}


def check_outcome(case: dict[str, Any]) -> None:
    """Load, sample, count and read the header: results, or a PenchantError naming the file
    (the events' or the side table's) or, for bad parameters, the table and key."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / case["params"]["path"]
        path.write_bytes(case["data"])
        files = [str(path)]
        if case["items"] is not None:
            items = Path(folder) / "items.csv"
            items.write_bytes(case["items"])
            files.append(str(items))
        operations = [
            lambda source: source.load(Context()),
            lambda source: source.sample(Context(), 3),
            lambda source: source.count(),
            lambda source: source.available_columns(),
        ]
        for operation in operations:
            try:
                source = CsvSource(case["params"], base_dir=folder)
                operation(source)
            except penchant.PenchantError as error:
                message = str(error)
                assert any(f in message for f in files) or "[csv]" in message, message


GOOD = b"user_id,item_id,ts\nu1,i1,1700000000\n"


@given(csv_files())
@example(case(b"user_id,item_id,ts\n\xff\xfe\n"))  # count() decoded the bytes it counts
@example(case(GOOD, delimiter="\n"))  # pandas refused a line break as a delimiter
@example(case(gzip.compress(GOOD)[:20], path="e.csv.gz"))  # truncated: EOFError
@example(case(b"not bzip2", path="e.csv.bz2"))  # OSError: Invalid data stream
@example(case(b"u1,i1,1\n", header=False, names=["user_id", "user_id", "item_id", "ts"]))
@example(case(b"\x00\xff\xfe", encoding="utf-16"))  # UnicodeError: no BOM
def test_any_csv_file_loads_or_is_refused_naming_the_file(case: dict[str, Any]) -> None:
    check_outcome(case)


#: Cells of well-formed files: whatever is in them, a writer quotes it properly.
awkward = st.text(alphabet=st.sampled_from(',;|\t"\'\n\r x1é\x00'), max_size=5)


@st.composite
def tidy_files(draw: st.DrawFn) -> dict[str, Any]:
    """A file a CSV writer produced, every column present, the cells anything at all."""
    extras = draw(st.lists(st.sampled_from([*HEADER[3:], "note"]), unique=True))
    header = draw(st.permutations(HEADER[:3] + extras))
    cell = {"ts": times, "stars": values}
    rows = draw(st.lists(st.fixed_dictionaries(
        {col: st.one_of(cell.get(col, ids), awkward) for col in header}), max_size=12))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, delimiter=delimiter,
                            lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writeheader()
    writer.writerows(rows)
    written = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    data = buffer.getvalue().encode(written, errors="replace")
    name = "e.csv"
    if draw(st.booleans()):
        name, data = "e.csv.gz", gzip.compress(data, mtime=0)
    columns = dict(MAPPINGS[0])
    columns.update({key: col for key, col in (("event", "kind"), ("value", "stars"))
                    if col in header and draw(st.booleans())})
    params = {"path": name, "columns": columns, "delimiter": delimiter,
              "encoding": "utf-8" if written == "utf-8-sig" else written,
              "time_unit": draw(st.sampled_from(["auto", "s", "ms", "iso"])),
              "on_error": draw(st.sampled_from(["stop", "drop"]))}
    return {"data": data, "params": params, "chunk_size": draw(st.integers(1, 5))}


@given(tidy_files())
def test_a_well_formed_file_loads_its_usable_rows_or_names_the_bad_lines(
        case: dict[str, Any]) -> None:
    """Dropping always works and keeps only usable events; stopping names file and lines;
    reading in small chunks gives exactly what one chunk gives."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / case["params"]["path"]
        path.write_bytes(case["data"])
        whole = CsvSource(case["params"], base_dir=folder)
        chunked = CsvSource({**case["params"], "chunk_size": case["chunk_size"]},
                            base_dir=folder)
        try:
            events = whole.load(Context()).events.frame
        except penchant.DataError as error:
            assert case["params"]["on_error"] == "stop", error
            assert str(error).startswith(f"{path}: "), error
            assert re.search(r"\blines? \d", str(error)), error
            return
        frame = chunked.load(Context()).events.frame
    pd.testing.assert_frame_equal(frame, events, check_categorical=False)
    assert not events[["user", "item", "time"]].isna().any().any()
    assert not np.isinf(events["value"]).any()
    assert str(events["time"].dtype) == "datetime64[ns, UTC]"
    assert events["row"].is_monotonic_increasing and (events["row"] >= 2).all()


@pytest.mark.parametrize(("unit", "far"), [("iso", "0000-01-01"), ("iso", "-0"),
                                           ("s", "9223372037"), ("ms", "-1e20")])
def test_times_beyond_the_nanosecond_range_are_bad_rows_named_by_line(tmp_path: Path,
                                                                      unit: str,
                                                                      far: str) -> None:
    """Found by the fuzzing above: pandas parsed these in a coarser unit and overflowed
    converting them (OutOfBoundsDatetime) instead of reporting the line."""
    good = "2023-11-14T22:13:20Z" if unit == "iso" else "1700000000"
    (tmp_path / "e.csv").write_text(f"user_id,item_id,ts\nu1,i1,{good}\nu1,i2,{far}\n")
    params = {"path": "e.csv", "columns": MAPPINGS[0], "time_unit": unit}
    with pytest.raises(penchant.DataError, match=r"1 with unparseable time \(line 3\)"):
        CsvSource(params, base_dir=tmp_path).load(Context())
    kept = CsvSource({**params, "on_error": "drop"}, base_dir=tmp_path).load(Context())
    assert kept.events.frame["row"].tolist() == [2]
