"""Files and paths from records are not trusted: a path that leaves its folder (``..``, an
absolute path, a symlink) is neither read nor deleted, and a checkpoint holding a pickled
object is refused before it can run code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

import penchant
from penchant import Context
from penchant.artifacts import load_checkpoint
from penchant.cli import main
from penchant.components import Component
from penchant.increments import Increments
from penchant.paths import inside
from penchant.plugins import Registry
from penchant.store import RunStore
from penchant.testing import tiny_dataset, tiny_features
from penchant.trained import TrainedRun
from penchant_plugins.models.vae import MultVAE


def test_inside_keeps_paths_in_their_folder(tmp_path: Path) -> None:
    root = tmp_path / "runs" / "00001"
    root.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("not yours")
    assert inside(root, "model.pt", "x") == root.resolve() / "model.pt"
    assert inside(root, root / "work" / "vae", "x") == root.resolve() / "work" / "vae"
    for escape in ("../../secret.txt", str(tmp_path / "secret.txt"), "/etc/passwd",
                   "work/../../00002/model.pt"):
        with pytest.raises(penchant.StoreError, match=r"x: .* lies outside"):
            inside(root, escape, "x")
    (root / "link.pt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(penchant.StoreError, match="lies outside"):
        inside(root, "link.pt", "x")
    (root / "inner.pt").symlink_to(root / "model.pt")
    assert inside(root, "inner.pt", "x") == root.resolve() / "model.pt"


def finished_run(store: RunStore, folder: Path, artifacts: dict[str, Path]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    run_id = store.start_run("p", "vae", "", {}, str(folder.resolve()))
    store.add_artifacts(run_id, artifacts)
    store.finish_run(run_id, "finished")
    return run_id


def test_artifacts_outside_the_run_folder_are_refused_by_every_reader(tmp_path: Path
                                                                      ) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    outside = tmp_path / "elsewhere" / "recommendations.csv"
    outside.parent.mkdir()
    outside.write_text("user,item,rank,score\nu1,i1,1,1.0\n")
    run = tmp_path / "runs" / "00001"
    run_id = finished_run(store, run, {"recommendations": run / ".." / ".." / outside.name,
                                       "model": outside})
    with pytest.raises(penchant.StoreError, match=r"run 1 artifact '[a-z]+': .* lies outside"):
        store.artifacts(run_id)
    with pytest.raises(penchant.StoreError, match="lies outside"):
        TrainedRun(run_id, store, Registry())
    assert main(["--store", store.url, "export", str(run_id), "--to", "sqlite://",
                 "--table", "recs"]) == 2
    # A symlink planted in the folder counts where it points.
    planted = tmp_path / "runs" / "00002"
    planted.mkdir()
    (planted / "metrics.json").symlink_to(outside)
    run_id = finished_run(store, planted, {"metrics": planted / "metrics.json"})
    with pytest.raises(penchant.StoreError, match="artifact 'metrics'"):
        store.artifacts(run_id)


def test_an_incremental_copy_recorded_outside_its_folder_is_neither_read_nor_deleted(
        tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    folder = tmp_path / "sources"
    victim = tmp_path / "keep.parquet"
    tiny_dataset().events.frame.to_parquet(victim)
    increments = Increments(store, folder, None)
    identity = {"source": "sql", "table": "events"}
    from penchant.increments import identity_key

    store.save_source_mark(identity_key(identity), None, {"value": 1}, str(victim), 3)
    assert increments.last(identity) is None  # not read: the source reads everything again
    increments.save(identity, tiny_dataset().events, {"value": 2})
    assert victim.is_file()  # not deleted when the record moves on
    assert increments.last(identity).mark == {"value": 2}


def test_component_names_cannot_carry_path_parts() -> None:
    """A model's name becomes its work folder (``work/<name>``): the contract keeps it a
    plain name."""
    for name in ("../evil", "a/b", "/abs", "..", ""):
        cls = type("Bad", (Component,), {"kind": "model", "name": name,
                                         "description": "d"})
        assert any("name" in p for p in cls.contract_problems()), name


class Payload:
    """What a hostile checkpoint carries: unpickling it would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return subprocess.call, (["touch", str(self.marker)],)


def hostile(path: Path, marker: Path, wrap) -> Path:
    torch.save(wrap(Payload(marker)), path)
    return path


def test_a_checkpoint_with_a_pickled_object_is_refused_before_it_runs(tmp_path: Path
                                                                     ) -> None:
    marker = tmp_path / "code-ran"
    model_file = hostile(tmp_path / "model.pt", marker,
                         lambda obj: {"format": 1, "plugin": "vae", "state": obj})
    with pytest.raises(penchant.StoreError, match=r"model\.pt: not a loadable Penchant "
                                                  r"checkpoint"):
        load_checkpoint(model_file, Registry())
    # The training loop's own checkpoint, read when a fit resumes.
    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    hostile(work / "checkpoints" / "last.pt", marker, lambda obj: {"model": obj})
    model = MultVAE({"epochs": 1, "hidden": 8, "latent": 4, "resume": True,
                     "device": "cpu"})
    with pytest.raises(penchant.StoreError, match=r"last\.pt: not a loadable"):
        model.fit(tiny_features(), None, Context(work_dir=str(work)))
    assert not marker.exists()
    torch.load(model_file, weights_only=False)  # what the refusal prevents
    assert marker.exists()
