"""Fuzzing feedback imports: whatever file a shop sends, ``import_file`` either stores it or
raises a ``PenchantError`` naming the file and the line (and column, for a bad value), and
the store afterwards holds exactly what the import's batch semantics promise: everything
stored before, plus whole batches before the one that failed, each event once.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import event, example, given
from hypothesis import strategies as st

from penchant import feedback
from penchant.errors import PenchantError
from penchant.feedback_import import import_file
from penchant.store import RunStore

COLUMNS = ["run_id", "user", "item", "time", "kind", "rank", "note"]
#: Columns that identify a stored event, and what else it holds; ``recorded_at`` and ``id``
#: differ between imports by design.
STORED = [*feedback.COLUMNS, "origin"]

numbers = st.one_of(st.integers(-2, 3), st.integers(-2**70, 2**70), st.floats(),
                    st.sampled_from(["1", "2", " 1 ", "1.0", "1.5", "0", "-1", "inf", "nan",
                                     "1e30", "Infinity", "", "x", "0x1"]))
cells: dict[str, st.SearchStrategy[Any]] = {
    "run_id": numbers,
    "user": st.one_of(st.sampled_from(["u1", "u2", " u1 ", "", "x" * 201, "\x00", None]),
                      st.text(max_size=6), st.integers()),
    "item": st.one_of(st.sampled_from(["i1", "i2", "", "é", "\ud800", None]),
                      st.text(max_size=6)),
    "time": st.one_of(st.sampled_from(["1717200000", "1717200000000", "2024-06-01T12:00:00Z",
                                       "2024-06-01", "0000-01-01", "-0", "yesterday", "",
                                       "nan", "inf", "1e400", None]),
                      st.integers(-2**70, 2**70), st.floats(), st.text(max_size=6)),
    "kind": st.one_of(st.sampled_from([*feedback.KINDS, "Add_To_Cart", " CLICK ", "clik",
                                       "", None]), st.text(max_size=6)),
    "rank": numbers,
    "note": st.one_of(st.text(max_size=10), st.just("n" * 70_000), st.none()),
}
#: JSON values that are no CSV cell: nesting, booleans, objects.
json_only = st.recursive(st.one_of(st.booleans(), st.none(), st.integers(), st.text(max_size=3)),
                         lambda inner: st.lists(inner, max_size=2)
                         | st.dictionaries(st.text(max_size=3), inner, max_size=2),
                         max_leaves=4)


@st.composite
def records(draw: st.DrawFn, json_values: bool) -> dict[str, Any]:
    """One event; columns may be missing, extra, or hold values of the wrong kind."""
    present = draw(st.sets(st.sampled_from(COLUMNS), min_size=3)) | {"user", "item"}
    record = {}
    for column in COLUMNS:
        if column in present:
            cell = st.one_of(cells[column], json_only) if json_values else cells[column]
            record[column] = draw(cell)
    if draw(st.booleans()):
        record[draw(st.sampled_from(["extra", "", "Kind"]))] = draw(st.text(max_size=3))
    return record


def as_csv(rows: list[dict[str, Any]], delimiter: str, draw: st.DrawFn) -> str:
    header = list(dict.fromkeys(key for row in rows for key in row)) or ["user"]
    if draw(st.booleans()):
        header.append(draw(st.sampled_from(header)))  # a repeated column
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter,
                        lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    for row in rows:
        line = ["" if row.get(c) is None else str(row.get(c)) for c in header]
        writer.writerow(line + draw(st.lists(st.just("surplus"), max_size=1)))
    return buffer.getvalue()


def as_json_lines(rows: list[dict[str, Any]], draw: st.DrawFn) -> str:
    lines = [json.dumps(row) for row in rows]
    for _ in range(draw(st.integers(0, 2))):
        junk = draw(st.sampled_from(["", "   ", "[1, 2]", "42", "{", '{"user": }', "null",
                                     "[" * 5000, '{"user": "\\ud800"}']))
        lines.insert(draw(st.integers(0, len(lines))), junk)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def feedback_files(draw: st.DrawFn) -> dict[str, Any]:
    """A feedback file's name and bytes, and how it is imported."""
    kind = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    rows = draw(st.lists(records(json_values=kind == "jsonl"), max_size=8))
    if kind == "jsonl":
        text = as_json_lines(rows, draw)
    else:
        text = as_csv(rows, "\t" if kind == "tsv" else ",", draw)
    try:
        data = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])),
                           errors="replace")
    except UnicodeEncodeError:  # a lone surrogate escapes "replace" only in UTF-8
        data = text.encode("utf-8", errors="surrogatepass")
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    data = data if cut is None else data[:cut]
    name = f"feedback.{kind}"
    if draw(st.booleans()):
        name, data = name + ".gz", gzip.compress(data, mtime=0)
        cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
        data = data if cut is None else data[:cut]
    return {"name": name, "data": data, "batch": draw(st.integers(1, 4)),
            "run": draw(st.sampled_from([None, None, 1, 2, 99]))}


def stored(store: RunStore) -> pd.DataFrame:
    return feedback.read(store)[STORED]


def check_import(case: dict[str, Any]) -> None:
    """Import into a store that already holds an event; check the outcome and the store."""
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(f"sqlite:///{folder}/runs.sqlite")
        for _ in range(2):
            store.finish_run(store.start_run("shop", "popularity", "", {}, None), "finished")
        earlier = pd.DataFrame({"run_id": [1], "user": ["u1"], "item": ["i1"], "time": [
            "1717200000"], "kind": ["click"]})
        feedback.record(store, feedback.check(earlier, "earlier"), "earlier")
        before = stored(store)
        path = Path(folder) / case["name"]
        path.write_bytes(case["data"])
        try:
            result = import_file(path, store, case["run"], batch=case["batch"])
        except PenchantError as error:
            event(f"refused: {type(error).__name__}")
            after = stored(store)
            assert_kept(before, after)
            assert_names_the_place(str(error), path, len(after) - len(before), case["batch"])
            return
        event("imported")
        after = stored(store)
        assert_kept(before, after)
        assert len(after) - len(before) == result.recorded.stored
        again = import_file(path, store, case["run"], batch=case["batch"])
        assert again.recorded.stored == 0, "every event of the file is stored already"
        assert len(stored(store)) == len(after)


def assert_kept(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Nothing stored earlier is lost or changed, and no event is stored twice."""
    kept = before.merge(after, how="left", indicator=True)
    assert (kept["_merge"] == "both").all(), kept
    assert not after.duplicated(["run_id", "user", "item", "kind", "time"]).any()


def assert_names_the_place(message: str, path: Path, new: int, batch: int) -> None:
    """Every problem names the file and its line (a value's column too); the summary says
    truthfully how many events the whole batches before the bad one stored."""
    assert str(path) in message or path.name in message, message
    for line in message.splitlines():
        if str(path) in line and "column '" in line:
            assert re.search(rf"{re.escape(str(path))} line \d+, column '", line), message
    assert re.search(r"\blines? \d+", message), message
    told = re.search(r"the (\d+) row\(s\) before it were \((\d+) new\)", message)
    rows, stored_new = (int(told.group(1)), int(told.group(2))) if told else (0, 0)
    assert rows % batch == 0 and new == stored_new, message


def case(name: str, text: str, run: int | None = None) -> dict[str, Any]:
    """An explicit input for ``check_import``: the regression examples below."""
    return {"name": name, "data": text.encode("utf-8", errors="surrogatepass"), "batch": 1,
            "run": run}


EVENT = '"user": "u1", "item": "i1", "time": 1717200000, "kind": "click"'


@given(feedback_files())
@example(case("f.csv", "run_id,user,item,time,kind\ninf,u1,i1,1717200000,click\n"))
@example(case("f.csv", "user,item,time,kind,rank\nu1,i1,1717200000,click,1e30\n", run=1))
@example(case("f.jsonl", f'{{"run_id": 1, {EVENT}}}\n{{"run_id": 1, "note": "\\ud800"}}\n'))
@example(case("f.jsonl", f'{{"run_id": 1, {EVENT}}}\n' + "[" * 5000))  # RecursionError
def test_any_feedback_file_imports_or_is_refused_keeping_whole_batches(
        case: dict[str, Any]) -> None:
    check_import(case)
