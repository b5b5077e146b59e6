"""A run killed mid-training is recorded as interrupted, never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from penchant.store import RunStore

pytestmark = pytest.mark.slow


def start_long_run(pipeline_file: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "PENCHANT_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "penchant.cli", "run", str(pipeline_file),
         "--set", "model.epochs=100000", "--set", "model.patience=0",
         "--out", str(home / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_training(store: RunStore, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        runs = store.runs()
        if runs and store.losses(runs[0].id):
            return runs[0].id
        time.sleep(0.2)
    raise AssertionError("training never started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_training_records_interrupted(pipeline_file, tmp_path, sig) -> None:
    home = tmp_path / "home"
    proc = start_long_run(pipeline_file, home)
    store = RunStore(f"sqlite:///{home / 'runs.sqlite'}")
    run_id = wait_for_training(store, proc)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    record = store.run(run_id)
    assert record.status == "interrupted"
    assert record.finished_at is not None
    assert store.losses(run_id), "what was recorded before the signal is kept"


def test_sigkill_mid_training_is_found_interrupted_on_next_open(pipeline_file,
                                                                tmp_path) -> None:
    home = tmp_path / "home"
    proc = start_long_run(pipeline_file, home)
    url = f"sqlite:///{home / 'runs.sqlite'}"
    run_id = wait_for_training(RunStore(url), proc)
    proc.kill()
    proc.wait(timeout=30)
    record = RunStore(url).run(run_id)
    assert record.status == "interrupted"
    assert "killed" in record.error
