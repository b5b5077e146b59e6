"""``penchant sources test`` and the probe behind it (the app shows the same probe)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import penchant
from penchant.cli import main
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.probe import probe_source
from pipelines import quick_pipeline

EVENTS = ("user_id,item_id,ts\nu1,i1,1700000000\n,i2,1700000060\nu2,i1,yesterday\n"
          "u2,i3,1700000180\n")


def write(tmp_path: Path, source: str) -> Path:
    (tmp_path / "e.csv").write_text(EVENTS)
    path = tmp_path / "p.toml"
    path.write_text(quick_pipeline(source + '\ncolumns = { user = "user_id", '
                                   'item = "item_id", time = "ts" }'))
    return path


def test_probe_shows_mapped_rows_the_count_and_what_the_checks_would_drop(tmp_path) -> None:
    registry = Registry()
    path = write(tmp_path, 'plugin = "csv"\npath = "e.csv"')
    probe = probe_source(load_pipeline(path, registry), registry, rows=3)
    assert probe.count == 4 and probe.missing == {}
    assert probe.sample["user"].tolist() == ["u1"]  # the 2 bad rows of 3 are left out
    assert probe.sample["time"].tolist() == ["2023-11-14T22:13:20Z"]
    assert probe.problems == {"null user id": {"count": 1, "rows": [3]},
                              "unparseable time": {"count": 1, "rows": [4]}}
    text = probe.render()
    assert "rows: 4" in text and "problem in the sample: 1 with null user id (3)" in text


def test_cli_reports_a_missing_column_and_fails(tmp_path, capsys) -> None:
    path = write(tmp_path, 'plugin = "csv"\npath = "e.csv"')
    assert main(["sources", "test", str(path), "--set", "source.columns.time=when"]) == 1
    out = capsys.readouterr().out
    assert "time = 'when' (missing)" in out and "no sample" in out


def test_cli_probes_a_database_table(tmp_path, capsys) -> None:
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        pd.read_csv(pd.io.common.StringIO(EVENTS)).dropna().to_sql("events", conn,
                                                                   index=False)
    path = write(tmp_path, 'plugin = "sql"\nurl = "sqlite:///shop.db"\ntable = "events"')
    assert main(["sources", "test", str(path), "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "source: sql — sqlite:///shop.db table events" in out
    assert "rows: 3" in out and "first 1 events after mapping" in out


def test_a_connection_error_is_raised_as_in_a_run(tmp_path) -> None:
    registry = Registry()
    path = write(tmp_path, 'plugin = "sql"\nurl = "sqlite:///shop.db"\ntable = "events"')
    with pytest.raises(penchant.DataError, match="no table 'events'"):
        probe_source(load_pipeline(path, registry), registry)


def test_preview_steps_follow_the_sample_through_each_preprocessor(tmp_path) -> None:
    from penchant.probe import preview_steps

    (tmp_path / "e.csv").write_text("user_id,item_id,ts\n" + "u1,i1,1700000000\n" * 3
                                    + "u2,i2,1700000100\n,i3,1700000200\n")
    path = tmp_path / "p.toml"
    path.write_text(quick_pipeline('plugin = "csv"\npath = "e.csv"\ncolumns = { user = '
                                   '"user_id", item = "item_id", time = "ts" }')
                    + '\n[[preprocess]]\nplugin = "dedup"\n')
    registry = Registry()
    steps = preview_steps(load_pipeline(path, registry), registry, rows=2)
    assert [(s.label, s.rows, s.dropped) for s in steps] == [
        ("source: csv", 4, 1), ("preprocess 1: dedup", 2, 2)]
    assert len(steps[0].head) == 2 and steps[1].error is None
