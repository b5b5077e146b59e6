"""``penchant runs delete``: a run forgotten whole, its files removed, nothing else lost."""

from __future__ import annotations

import pandas as pd
import pytest

from penchant import feedback
from penchant.cli import main
from penchant.errors import StoreError
from penchant.store import RunStore


@pytest.fixture
def two_runs(pipeline_file, tmp_path, store: RunStore, capsys) -> RunStore:
    """Runs 1 and 2 of the test shop, two epochs each, in their own folders."""
    for n in (1, 2):
        assert main(["--store", store.url, "run", str(pipeline_file), "--out",
                     str(tmp_path / f"run{n}"), "--set", "model.epochs=2"]) == 0
    capsys.readouterr()
    return store


def clicks(run: int) -> pd.DataFrame:
    frame = pd.DataFrame({"run_id": [run, run], "user": ["u1", "u2"], "item": ["i1", "i2"],
                          "time": ["2024-06-01T10:00:00Z", "2024-06-01T11:00:00Z"],
                          "kind": ["click", "purchase"], "rank": [1, 3]})
    return feedback.check(frame, "test feedback")


def test_a_deleted_run_leaves_no_record_and_no_files(two_runs, tmp_path, capsys) -> None:
    store = two_runs
    folder = tmp_path / "run1"
    assert (folder / "model.pt").exists() and (folder / "work").is_dir()
    assert main(["--store", store.url, "runs", "delete", "1"]) == 0
    assert f"removed its folder {folder}" in capsys.readouterr().out
    assert not folder.exists()
    assert store.run_ids([1, 2]) == {2}
    assert store.metrics(1) == {} and store.losses(1) == [] and store.artifacts(1) == {}
    # the other run is untouched and still serves its lists
    assert store.metrics(2) and (tmp_path / "run2" / "model.pt").exists()
    user = (tmp_path / "run2" / "recommendations.csv").read_text().splitlines()[1].split(",")[0]
    assert main(["--store", store.url, "recommend", "2", "--user", user, "-k", "2"]) == 0


def test_feedback_is_never_deleted_by_accident(two_runs, tmp_path, capsys) -> None:
    store = two_runs
    feedback.record(store, clicks(1), "test")
    assert main(["--store", store.url, "runs", "delete", "1"]) == 2
    err = capsys.readouterr().err
    assert "run 1 has 2 feedback event(s)" in err and "--with-feedback" in err
    assert store.run_ids([1]) == {1} and len(store.feedback([1])) == 2
    assert (tmp_path / "run1" / "model.pt").exists(), "a refused delete removes no file"
    assert main(["--store", store.url, "runs", "delete", "1", "--with-feedback"]) == 0
    assert store.run_ids([1]) == set() and store.feedback() == []


def test_files_the_run_did_not_write_stay(two_runs, tmp_path, capsys) -> None:
    store = two_runs
    mine = tmp_path / "run1" / "my-notes.txt"
    mine.write_text("keep me")
    assert main(["--store", store.url, "runs", "delete", "1"]) == 0
    assert "keeps 1 it did not write: my-notes.txt" in capsys.readouterr().out
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "run1").iterdir()) == ["my-notes.txt"]


def test_keep_files_forgets_the_run_only(two_runs, tmp_path) -> None:
    store = two_runs
    assert main(["--store", store.url, "runs", "delete", "2", "--keep-files"]) == 0
    assert store.run_ids([2]) == set()
    assert (tmp_path / "run2" / "model.pt").exists()


def test_a_running_run_or_an_unknown_one_is_refused(store: RunStore) -> None:
    run = store.start_run("live", "vae", "", {}, None)  # this process: alive
    with pytest.raises(StoreError, match=f"run {run} is still running"):
        store.delete_run(run)
    with pytest.raises(StoreError, match="run 99 is not in the run store"):
        store.delete_run(99)
    assert store.run_ids([run]) == {run}
