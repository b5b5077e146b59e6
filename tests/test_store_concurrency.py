"""The run store under a reader and a writer at once, as when the app shows a run that is
training: no "database is locked", and the reader sees each write whole or not at all."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from penchant import feedback
from penchant.plugins import Registry
from penchant.store import RunStore

EPOCHS = 30
BATCHES = 15
BATCH = 100
TERMS = {"loss", "kl", "seconds", "val_ndcg@20"}
METRICS = {"ndcg@10": 0.1, "recall@10": 0.2, "hr@10": 0.3, "users": 100.0}


def write(url: str, run_id: int) -> None:
    """What a run does to the store while it trains: losses per epoch, metrics, and
    feedback arriving in batches, each its own transaction."""
    store = RunStore(url)
    registry = Registry(entry_points=False)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for step in range(max(EPOCHS, BATCHES)):
        if step < EPOCHS:
            store.add_losses(run_id, "vae", step + 1,
                             {"loss": 1.0 / (step + 1), "kl": 0.1, "seconds": 0.01,
                              "val_ndcg@20": 0.05})
            store.add_metrics(run_id, {"vae": {"7d": METRICS, "30d": METRICS}})
        if step < BATCHES:
            rows = pd.DataFrame({"user": [f"u{step}-{i}" for i in range(BATCH)], "item": "i1",
                                 "time": [t0 + timedelta(seconds=i) for i in range(BATCH)],
                                 "kind": "click"})
            feedback.record(store, feedback.check(rows, "load test", run_id=run_id),
                            "load test", registry=registry, batch=BATCH)
    store.engine.dispose()


def read_until(store: RunStore, run_id: int, done: threading.Event | subprocess.Popen
               ) -> int:
    """Read as the app does until the writer ends; check each read is consistent."""
    reads, seen_feedback = 0, 0

    def finished() -> bool:
        return done.is_set() if isinstance(done, threading.Event) else done.poll() is not None

    while True:
        last = finished()
        by_epoch: dict[int, set[str]] = {}
        for row in store.losses(run_id):
            by_epoch.setdefault(row["epoch"], set()).add(row["term"])
        assert all(terms == TERMS for terms in by_epoch.values()), by_epoch
        assert sorted(by_epoch) == list(range(1, len(by_epoch) + 1))
        metrics = store.metrics(run_id)
        assert metrics in ({}, {"vae": {"7d": METRICS, "30d": METRICS}})
        count = len(store.feedback([run_id]))
        assert count % BATCH == 0 and count >= seen_feedback
        seen_feedback = count
        assert store.run(run_id).status == "running"
        reads += 1
        if last:
            return reads


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_a_reader_sees_whole_writes_and_never_a_locked_database(tmp_path: Path,
                                                                writer: str) -> None:
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    store = RunStore(url)
    run_id = store.start_run("load", "vae", "", {}, str(tmp_path))
    if writer == "thread":
        done = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                write(url, run_id)
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=target)
        thread.start()
        reads = read_until(store, run_id, done)
        thread.join()
        assert not errors, errors
    else:
        process = subprocess.Popen(
            [sys.executable, "-c", "from test_store_concurrency import write; "
                                   f"write({url!r}, {run_id})"],
            cwd=Path(__file__).parent, stderr=subprocess.PIPE, text=True)
        reads = read_until(store, run_id, process)
        assert process.wait() == 0, process.stderr.read()
    assert reads > 5, "the reader never overlapped the writer"
    assert len(store.losses(run_id)) == EPOCHS * len(TERMS)
    assert len(store.feedback([run_id])) == BATCHES * BATCH


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """SQLite commits each CREATE by itself, so processes creating a new store's tables
    at the same moment collide on "already exists" (the app and a headless run started
    together); every one of them must open it."""
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    code = f"from penchant.store import RunStore; RunStore({url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
