"""SIGKILL at random points of a run and of a feedback import loses nothing.

Each case kills a real ``penchant`` process (``tests/crash_driver.py``) at the N-th chunk
loaded, database commit, checkpoint write or artifact write, N drawn at random from how
often an undisturbed run reaches that point. Afterwards the run store opens, the run is
marked interrupted, every file in the run folder is whole (a crash mid-write leaves only a
hidden temporary file beside it), and ``penchant run --resume`` finishes the run with the
metrics and recommendations of the undisturbed run: training continued from the last
checkpoint with the same random state. Set ``PENCHANT_CRASH_SEED`` to draw other points.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tomllib
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import SHOP_PIPELINE
from penchant.store import RunStore

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("crash_driver.py")
SEED = int(os.environ.get("PENCHANT_CRASH_SEED", "0"))
#: Crash points of a run: a chunk while loading, any store transaction (losses, metrics,
#: artifacts, status), a checkpoint mid-write, and any run file mid-write.
POINTS = ("chunk", "commit", "write:last.pt", "write:*")


def penchant(home: Path, point: str, n: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PENCHANT_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(DRIVER), point, str(n), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def counts(done: subprocess.CompletedProcess) -> Counter[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return Counter(json.loads(done.stderr.strip().splitlines()[-1]))


def hits(reached: Counter[str], point: str) -> int:
    kind, _, pattern = point.partition(":")
    return sum(n for label, n in reached.items()
               if label.partition(":")[0] == kind and fnmatch(label.partition(":")[2],
                                                               pattern or "*"))


@pytest.fixture(scope="module")
def crash_pipeline(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # On the CPU even where a GPU is, since only CPU training repeats bit for bit; resuming
    # on CUDA is tested in test_models_autoencoders.py.
    text = SHOP_PIPELINE.format(shop=shop, epochs=6).replace(
        'plugin = "csv"', 'plugin = "csv"\nchunk_size = 3000', 1).replace(
        'plugin = "vae"', 'plugin = "vae"\ndevice = "cpu"', 1)
    path = tmp_path_factory.mktemp("crash") / "pipeline.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def reference(crash_pipeline: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, Counter[str]]:
    """An undisturbed run: its folder, and how often it reached each crash point."""
    home = tmp_path_factory.mktemp("reference")
    reached = counts(penchant(home, "count", 0, "run", str(crash_pipeline)))
    return home / "runs" / "00001", reached


def whole(path: Path) -> None:
    """Read ``path`` in full the way Penchant reads it back; raises if it is cut short."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".csv":
        pd.read_csv(path)
    elif path.suffix == ".pt":
        torch.load(path, weights_only=True)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            [arrays[k] for k in arrays.files]
    elif path.suffix == ".toml":
        tomllib.loads(path.read_text())
    else:
        raise AssertionError(f"unexpected file {path}")


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_anywhere_resumes_to_the_same_result(point, crash_pipeline, reference,
                                                          tmp_path) -> None:
    ref_dir, reached = reference
    assert hits(reached, point) > 0, f"the reference run never reached {point}"
    n = random.Random(f"{SEED}:{point}").randint(1, hits(reached, point))
    home = tmp_path / "home"
    killed = penchant(home, point, n, "run", str(crash_pipeline))
    assert killed.returncode == -9, f"{point} #{n} did not kill the run:\n{killed.stderr}"
    print(f"killed at {point} #{n} of {hits(reached, point)}")

    store = RunStore(f"sqlite:///{home / 'runs.sqlite'}")
    runs = store.runs()
    if not runs:  # killed in the very first transaction: nothing was recorded
        assert (point, n) == ("commit", 1)
        return
    (run,) = runs
    assert run.status == "interrupted", f"{point} #{n}"
    folder = home / "runs" / "00001"
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            whole(path)  # the old version or the new one, never a half-written one
    leftovers = [p.name for p in folder.rglob(".*") if p.is_file()]
    assert all(name.startswith((".last.pt.", ".metrics.json.", ".model.pt.",
                                ".recommendations.csv.", ".features.npz.", ".losses.csv.",
                                ".pipeline.toml.", ".trajectories.csv.", ".user_metrics.csv."))
               for name in leftovers)

    checkpoints = sorted(folder.rglob("last.pt"))
    resumed = penchant(home, "count", 0, "run", "--resume", str(run.id))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for checkpoint in checkpoints:
        assert f"resumed from {checkpoint}" in resumed.stdout + resumed.stderr, f"{point} #{n}"
    assert RunStore(f"sqlite:///{home / 'runs.sqlite'}").run(run.id).status == "finished"
    assert json.loads((folder / "metrics.json").read_text()) == \
        json.loads((ref_dir / "metrics.json").read_text()), f"{point} #{n}"
    pd.testing.assert_frame_equal(pd.read_csv(folder / "recommendations.csv"),
                                  pd.read_csv(ref_dir / "recommendations.csv"))
    epochs = pd.DataFrame(store.losses(run.id)).groupby("model")["epoch"].agg(
        lambda e: sorted(set(e)))
    for model, seen in epochs.items():
        assert seen == list(range(1, len(seen) + 1)), f"{model}: epochs {seen}"


def test_resuming_refuses_a_finished_run_and_extra_arguments(reference, crash_pipeline,
                                                             tmp_path) -> None:
    home = reference[0].parent.parent
    again = penchant(home, "count", 0, "run", "--resume", "1")
    assert again.returncode == 2 and "run 1 finished; there is nothing to resume" in again.stderr
    mixed = penchant(home, "count", 0, "run", str(crash_pipeline), "--resume", "1")
    assert mixed.returncode == 2 and "give no pipeline file" in mixed.stderr


def test_a_feedback_import_killed_mid_way_then_repeated_stores_each_row_once(
        reference, tmp_path) -> None:
    recs = pd.read_csv(reference[0] / "recommendations.csv")
    rows = recs.assign(time=pd.Timestamp("2026-01-01", tz="UTC")
                       + pd.to_timedelta(np.arange(len(recs)), unit="min"),
                       kind="impression")[["user", "item", "rank", "time", "kind"]]
    path = tmp_path / "feedback.csv"
    rows.to_csv(path, index=False)
    assert len(rows) > 300

    def home_with_a_run(name: str) -> tuple[Path, int]:
        home = tmp_path / name
        store = RunStore(f"sqlite:///{home / 'runs.sqlite'}")
        run_id = store.start_run("fed", "vae", "", {}, None)
        store.finish_run(run_id, "finished")
        return home, run_id

    dry_home, run_id = home_with_a_run("dry")
    args = ("feedback", "import", str(path), "--run", str(run_id), "--batch", "100")
    commits = counts(penchant(dry_home, "count", 0, *args))["commit"]
    n = random.Random(f"{SEED}:feedback").randint(1, commits)
    home, _ = home_with_a_run("home")
    killed = penchant(home, "commit", n, *args)
    assert killed.returncode == -9, killed.stderr

    def stored() -> pd.DataFrame:
        return pd.DataFrame(RunStore(f"sqlite:///{home / 'runs.sqlite'}").feedback([run_id]),
                            columns=["user", "item", "kind", "time"])

    assert len(stored()) % 100 == 0 and len(stored()) < len(rows), \
        f"commit #{n}: whole batches before the kill, none of the one killed"
    counts(penchant(home, "count", 0, *args))
    assert len(stored()) == len(rows)
    assert not stored().duplicated().any()
