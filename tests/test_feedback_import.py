"""Importing feedback files: checked per batch, stored once, safe to re-run after a crash."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import penchant
from penchant import feedback
from penchant.cli import main
from penchant.errors import DataError
from penchant.feedback_import import import_file
from penchant.plugins import Registry


@pytest.fixture
def run_id(store) -> int:
    """A run for feedback to be about (feedback belongs to a recorded run)."""
    run = store.start_run("shop", "popularity", "", {}, None)
    store.finish_run(run, "finished", {})
    return run


def rows(n: int, run: int | None = None, start: int = 1_717_200_000) -> list[dict]:
    kinds = ["impression", "click", "add-to-cart", "purchase", "dismiss", "thumbs-up"]
    out = [{"user": f"u{i % 7}", "item": f"i{i:03d}", "rank": i % 10 + 1,
            "time": start + 60 * i, "kind": kinds[i % len(kinds)], "note": ""}
           for i in range(n)]
    if run is not None:
        for row in out:
            row["run_id"] = run
    return out


def write_csv(path: Path, records: list[dict]) -> Path:
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def test_import_twice_stores_each_event_once(store, run_id, tmp_path) -> None:
    path = write_csv(tmp_path / "feedback.csv", rows(12))
    first = import_file(path, store, run_id, batch=5)
    assert (first.rows, first.batches, first.recorded.stored) == (12, 3, 12)
    again = import_file(path, store, run_id, batch=5)
    assert (again.recorded.stored, again.recorded.skipped) == (0, 12)
    stored = feedback.read(store, [run_id])
    assert len(stored) == 12
    assert str(stored["time"].dt.tz) == "UTC"
    assert stored["rank"].tolist() == [i % 10 + 1 for i in range(12)]
    assert stored["note"].isna().all(), "an empty note is no note"


def test_json_lines_gzip_with_run_ids_in_the_file(store, run_id, tmp_path) -> None:
    records = rows(4, run_id, start=0)
    records[0]["time"] = "2024-06-01T12:00:00+02:00"
    records[1]["kind"] = "Add_To_Cart"
    records[2]["note"] = "liked the colour"
    records[3]["extra"] = "ignored"
    path = tmp_path / "feedback.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in records) + "\n\n")
    result = import_file(path, store)
    assert result.recorded.stored == 4 and result.ignored_columns == ["extra"]
    stored = feedback.read(store).set_index("item")
    assert stored.loc["i000", "time"] == pd.Timestamp("2024-06-01T10:00:00Z")
    assert stored.loc["i001", "kind"] == "add-to-cart"
    assert stored.loc["i002", "note"] == "liked the colour"


def test_json_booleans_are_neither_ranks_nor_run_ids(store, run_id, tmp_path) -> None:
    records = rows(2, run_id)
    records[0]["rank"] = True
    records[1]["run_id"] = False
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(DataError) as caught:
        import_file(path, store)
    message = str(caught.value)
    assert f"{path} line 1, column 'rank': True is not a position" in message
    assert f"{path} line 2, column 'run_id': False is not a run id" in message
    assert feedback.read(store).empty


def test_bad_rows_name_file_line_and_column_and_keep_earlier_batches(store, run_id,
                                                                     tmp_path) -> None:
    records = rows(10)
    records[5]["kind"] = "clik"        # line 7 (the header is line 1)
    records[7]["time"] = "yesterday"   # line 9
    records[6]["user"] = ""            # line 8
    path = write_csv(tmp_path / "feedback.csv", records)
    with pytest.raises(DataError) as caught:
        import_file(path, store, run_id, batch=4)
    message = str(caught.value)
    assert f"{path} line 7, column 'kind': 'clik' is not a feedback kind" in message
    assert f"{path} line 8, column 'user': missing" in message
    assert f"{path} line 9, column 'time': 'yesterday' is not a time" in message
    assert "Nothing from lines 6–9 was stored" in message
    stored = feedback.read(store)
    assert sorted(stored["item"]) == [f"i{i:03d}" for i in range(4)], \
        "the first batch stays; nothing of the bad one, nor after it"


def test_the_cli_reports_bad_runs_and_bad_json(store, run_id, tmp_path, capsys) -> None:
    path = write_csv(tmp_path / "feedback.csv", rows(3, run_id + 1))
    assert main(["--store", store.url, "feedback", "import", str(path)]) == 2
    assert f"line 2, column 'run_id': run {run_id + 1} is not in the run store" \
        in capsys.readouterr().err
    broken = tmp_path / "feedback.jsonl"
    broken.write_text(json.dumps(rows(1, run_id)[0]) + '\n{"user": "u1",, }\n')
    assert main(["--store", store.url, "feedback", "import", str(broken)]) == 2
    assert f"{broken} line 2, column 15: not valid JSON" in capsys.readouterr().err
    assert main(["--store", store.url, "feedback", "import", str(path), "--run",
                 str(run_id + 5)]) == 2
    assert "is not in the run store" in capsys.readouterr().err
    assert len(feedback.read(store)) == 0


def test_observers_hear_each_batch_once_with_only_new_events(store, run_id,
                                                             tmp_path) -> None:
    heard: list[tuple[int, str]] = []

    class Listener:
        @penchant.hookimpl
        def penchant_on_feedback(self, feedback, origin):
            heard.append((len(feedback), origin))

    registry = Registry(plugins=[Listener()], entry_points=False)
    path = write_csv(tmp_path / "part.csv", rows(6))
    import_file(path, store, run_id, batch=4, registry=registry)
    write_csv(path, rows(9))
    import_file(path, store, run_id, batch=4, registry=registry)
    # Second import, batches of rows 0–3 (all stored: no call), 4–7 (two new), 8 (new).
    assert heard == [(4, "import part.csv"), (2, "import part.csv"),
                     (2, "import part.csv"), (1, "import part.csv")]


KILLABLE = """
import sys, time
from pathlib import Path

import penchant
from penchant.cli import main
from penchant.plugins import default_registry


class PauseAfterThirdBatch:
    batches = 0

    @penchant.hookimpl
    def penchant_on_feedback(self, feedback):
        self.batches += 1
        if self.batches == 3:
            Path(sys.argv[1]).write_text("3 batches stored")
            time.sleep(600)


default_registry().pm.register(PauseAfterThirdBatch())
sys.exit(main(sys.argv[2:]))
"""


def test_an_import_killed_midway_completes_on_rerun_each_event_once(store, run_id,
                                                                    tmp_path) -> None:
    path = write_csv(tmp_path / "feedback.csv", rows(40))
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    marker = tmp_path / "paused"
    env = {**os.environ, feedback.BATCH_ENV: "5"}
    proc = subprocess.Popen([sys.executable, str(script), str(marker), "--store", store.url,
                             "feedback", "import", str(path), "--run", str(run_id)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the import never reached its third batch"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(feedback.read(store)) == 15, "three batches of five were committed"

    result = import_file(path, store, run_id, batch=5)
    assert (result.recorded.stored, result.recorded.skipped) == (25, 15)
    stored = feedback.read(store)
    assert len(stored) == 40
    assert not stored.duplicated(["run_id", "user", "item", "kind", "time"]).any()
    assert sorted(stored["item"]) == [f"i{i:03d}" for i in range(40)]
