"""The checks every source's rows go through (penchant.loading.EventsBuilder)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import penchant
from penchant import Context
from penchant.cli import main
from penchant.loading import EventsBuilder
from penchant.store import RunStore
from pipelines import quick_pipeline


def chunk(rows: list[tuple], start: int = 1) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user", "item", "time", "value"])
    frame["row"] = np.arange(start, start + len(frame))
    return frame


GOOD = [("u1", "i1", "1700000000", "1"), ("u2", "i2", "1700000100", "2.5")]
BAD = [(None, "i1", "1700000000", "1"),          # null user
       ("u1", "  ", "1700000000", "1"),          # blank item
       ("u1", "i1", "", "1"),                    # missing time
       ("u1", "i1", "last tuesday", "1"),        # unparseable time
       ("u1", "i1", "1700000000", "lots"),       # value that is not a number
       ("u1", "i1", "1700000000", "inf"),        # infinite value
       ("u1", "i1", "1700000000", "")]           # absent value: fine, fill-missing's job


def test_stop_names_every_kind_of_problem_with_counts_and_rows() -> None:
    builder = EventsBuilder("shop.events", Context(), time_unit="s")
    builder.add(chunk(GOOD))
    builder.add(chunk(BAD, start=3))
    with pytest.raises(penchant.DataError) as err:
        builder.finish()
    message = str(err.value)
    assert message.startswith("shop.events: 6 of 9 event row(s) cannot be used: ")
    for part in ("1 with null user id (row 3)", "1 with null item id (row 4)",
                 "1 with missing time (row 5)", "1 with unparseable time (row 6)",
                 "1 with value that is not a number (row 7)", "1 with infinite value (row 8)",
                 'on_error = "drop"'):
        assert part in message


def test_drop_keeps_the_good_rows_and_records_what_went() -> None:
    logged: list[str] = []
    ctx = Context(log=logged.append)
    builder = EventsBuilder("shop.events", ctx, time_unit="s", on_error="drop")
    builder.add(chunk(GOOD))
    builder.add(chunk(BAD, start=3))
    events = builder.finish()
    assert events.frame["row"].tolist() == [1, 2, 9]
    assert np.isnan(events.frame["value"].iloc[2])
    assert ctx.report["rows_read"] == 9
    assert ctx.report["dropped"]["unparseable time"] == {"count": 1, "rows": [6]}
    assert sum(d["count"] for d in ctx.report["dropped"].values()) == 6
    assert "dropped 6 of 9 row(s) from shop.events" in logged[0]


def test_many_bad_rows_are_counted_in_full_but_shown_in_part() -> None:
    rows = [(None, "i1", "1700000000", "1")] * 250
    builder = EventsBuilder("t", Context(), on_error="drop")
    builder.add(chunk(rows))
    builder.finish()
    tally = builder.tallies["user"]
    assert tally.count == 250 and len(tally.rows) == 100
    assert "(rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 …)" in builder.describe()


def test_labels_name_rows_by_document_id() -> None:
    builder = EventsBuilder("orders", Context(), row_name="_id")
    builder.add(chunk([("u1", "i1", "bad", "1")]), labels=pd.Series(["65f0a1"]))
    with pytest.raises(penchant.DataError, match=r"unparseable time \(_id 65f0a1\)"):
        builder.finish()


def test_the_window_keeps_since_inclusive_and_until_exclusive() -> None:
    ctx = Context()
    since, until = pd.Timestamp(1700000100, unit="s", tz="UTC"), \
        pd.Timestamp(1700000300, unit="s", tz="UTC")
    builder = EventsBuilder("t", ctx, time_unit="s", since=since, until=until)
    builder.add(chunk([("u", "i", str(1700000000 + 100 * k), "1") for k in range(5)]))
    events = builder.finish()
    assert events.frame["row"].tolist() == [2, 3]
    assert ctx.report["outside_window"] == 3


def test_progress_counts_what_was_consumed_and_cancel_is_checked() -> None:
    seen: list[tuple[int, int]] = []
    stops: list[int] = []
    ctx = Context(progress=lambda stage, done, total: seen.append((done, total)),
                  check_cancelled=lambda: stops.append(1))
    builder = EventsBuilder("t", ctx, total=10)
    builder.add(chunk(GOOD), consumed=3)
    builder.add(chunk(GOOD))
    assert seen == [(3, 10), (5, 10)] and len(stops) == 2


def test_a_run_records_what_its_source_dropped(tmp_path, shop) -> None:
    text = gzip.decompress((shop / "events.csv.gz").read_bytes()).decode().splitlines()
    text[5] = ",".join(["", *text[5].split(",")[1:]])          # line 6: no user
    (tmp_path / "events.csv").write_text("\n".join(text) + "\n")
    (tmp_path / "p.toml").write_text(quick_pipeline("""
plugin = "csv"
path = "events.csv"
on_error = "drop"
columns = { user = "user_id", item = "item_id", time = "timestamp" }"""))
    store = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    assert main(["--store", store, "run", str(tmp_path / "p.toml"), "--out",
                 str(tmp_path / "out")]) == 0
    load = RunStore(store).run(1).summary["stages"]["load"]
    assert load["dropped"] == {"null user id": {"count": 1, "rows": [6]}}
    assert load["rows_read"] == len(text) - 1
