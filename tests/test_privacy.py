"""Personal side fields (age, gender, region) feed a model without reaching a log line, the
run store or any file a run writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import torch

from conftest import write_pipeline
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.store import RunStore
from pipelines import Said

#: The shop pipeline (conftest) with user and item attributes feeding a conditional VAE.
OVERRIDES = ["features.1.plugin=user-features", "features.2.plugin=item-features",
             "model.plugin=cvae", "model.embedding=8", "model.epochs=2",
             "evaluation.baselines=[]"]


def distinctive_users(shop: Path, folder: Path) -> tuple[Path, list[str]]:
    """The shop's users.csv with values no other text could hold by chance; returns the
    file and those values as they would be written."""
    users = pd.read_csv(shop / "users.csv", dtype={"user_id": str})
    users["region"] = "Zorblax-" + users["region"].str.title()
    users["gender"] = "Qwyx" + users["gender"]
    users["age"] = users["age"] + 0.4711
    path = folder / "users.csv"
    users.to_csv(path, index=False)
    values = [str(v) for column in ("region", "gender", "age")
              for v in users[column].dropna().unique()]
    return path, values


def test_side_fields_feed_the_model_but_reach_no_log_store_or_file(
        tmp_path: Path, shop: Path) -> None:
    users, values = distinctive_users(shop, tmp_path)
    said = Said()
    registry = Registry()
    store = RunStore(f"sqlite:///{tmp_path / 'store' / 'runs.sqlite'}")
    out = tmp_path / "out"
    users_table = f"source.users={{ path = \"{users}\", id = \"user_id\" }}"
    pipeline = load_pipeline(write_pipeline(shop, tmp_path), registry,
                             [*OVERRIDES, users_table])
    Runner(pipeline, registry, store, out, observers=[said]).run()
    assert said.lines
    # The values searched for are those the source read, and they did feed the model.
    assert all(value.encode() in users.read_bytes() for value in values)
    state = torch.load(out / "model.pt", weights_only=True)["state"]
    assert state["dims"][2] > 0, "no user side block reached the model"
    # Every text column of every table of the run store.
    with sqlite3.connect(tmp_path / "store" / "runs.sqlite") as conn:
        stored = [" ".join(map(str, row)) for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")
            for row in conn.execute(f"SELECT * FROM {table}")]
    written = {f: f.read_bytes() for f in out.rglob("*") if f.is_file()}
    assert {f.name for f in written} >= {"model.pt", "features.npz", "metrics.json",
                                          "recommendations.csv", "pipeline.toml"}
    for value in values:
        assert not [line for line in said.lines if value in line], value
        assert not [row for row in stored if value in row], value
        assert not [f for f, data in written.items() if value.encode() in data], value
