"""Recommending from a stored run: known users, and new users given only a history."""

from __future__ import annotations

import pandas as pd
import pytest

from penchant.errors import DataError, StoreError
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner
from penchant.trained import TrainedRun


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


@pytest.fixture
def finished(pipeline_file, store, registry, tmp_path):
    result = Runner(load_pipeline(pipeline_file, registry), registry, store,
                    tmp_path / "out").run()
    return result, TrainedRun(result.run.id, store, registry)


def test_known_user_gets_the_lists_the_run_wrote(finished) -> None:
    result, trained = finished
    user = result.recommendations.frame["user"].iloc[0]
    again = trained.recommend(user, k=10)
    stored = result.recommendations.for_user(user)
    assert again["item"].tolist() == stored["item"].tolist()
    assert again["rank"].tolist() == list(range(1, 11))


def test_within_the_stored_depth_lists_are_served_beyond_it_scored(finished, monkeypatch
                                                                    ) -> None:
    result, trained = finished
    user = result.recommendations.frame["user"].iloc[0]
    deeper = trained.recommend(user, k=15)  # recommend_k is 10: the model scores it
    assert len(deeper) == 15 and deeper["rank"].tolist() == list(range(1, 16))
    monkeypatch.setattr(trained.model, "score", None)  # a lookup never touches the model
    served = trained.recommend(user, k=4)
    assert served["item"].tolist() == deeper["item"].tolist()[:4]
    assert served["score"].to_numpy() == pytest.approx(deeper["score"].to_numpy()[:4],
                                                       rel=1e-6)


def test_a_user_given_only_a_history_is_folded_in(finished, shop) -> None:
    result, trained = finished
    known = result.recommendations.frame["user"].iloc[0]
    events = pd.read_csv(shop / "events.csv.gz", dtype={"user_id": str, "item_id": str})
    events["time"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    mine = events[(events["user_id"] == known) & (events["time"] < trained.features.now)]
    history = mine.rename(columns={"item_id": "item", "event_type": "event"})[
        ["item", "time", "event"]]
    recs = trained.recommend_history(history, k=5, user="visitor")
    assert len(recs) == 5 and set(recs["user"]) == {"visitor"}
    assert not set(recs["item"]) & set(history["item"]), "seen items are excluded"
    assert recs["score"].is_monotonic_decreasing
    # the same history as a known user gives the same list, without retraining
    assert recs["item"].tolist() == trained.recommend(known, k=5)["item"].tolist()
    assert recs["score"].to_numpy() == pytest.approx(
        trained.recommend(known, k=5)["score"].to_numpy(), rel=1e-5)


def test_unknown_items_in_a_history_are_ignored_and_bad_input_is_explained(finished) -> None:
    _, trained = finished
    recs = trained.recommend_history(pd.DataFrame({"item": ["never-sold", "i0001"]}), k=3)
    assert len(recs) == 3
    with pytest.raises(DataError, match="'item' column"):
        trained.recommend_history(pd.DataFrame({"sku": ["x"]}))
    with pytest.raises(DataError, match="has no history"):
        trained.recommend("nobody")


def test_only_finished_runs_recommend(store, registry) -> None:
    run_id = store.start_run("x", "vae", "", {}, None)
    store.finish_run(run_id, "failed", error="boom")
    with pytest.raises(StoreError, match="is failed"):
        TrainedRun(run_id, store, registry)
    with pytest.raises(StoreError, match="not in the run store"):
        TrainedRun(999, store, registry)


def test_relative_source_paths_resolve_from_the_pipeline_file(shop, tmp_path, store,
                                                              registry) -> None:
    """The run folder is elsewhere: re-reading the source (latent paths, replay) must
    still find ``events.csv.gz`` next to the pipeline file, as the run did."""
    import shutil

    from penchant.latent import source_events
    from pipelines import quick_pipeline

    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(shop / "events.csv.gz", folder / "events.csv.gz")
    path = folder / "p.toml"
    path.write_text(quick_pipeline('plugin = "csv"\npath = "events.csv.gz"\ncolumns = '
                                   '{ user = "user_id", item = "item_id", time = "timestamp" }'))
    run = Runner(load_pipeline(path, registry), registry, store, tmp_path / "elsewhere").run()
    trained = TrainedRun(run.run.id, store, registry)
    events = source_events(trained)
    assert len(events) > 0 and (events["time"] < trained.features.now).all()
