"""The feedback loop headless: train, replay what users did, retrain with it, compare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from penchant import Context, feedback
from penchant.cli import main
from penchant.data import Dataset, Events, Features
from penchant.errors import DataError, PipelineError
from penchant.feedback_report import feedback_report
from penchant.pipeline import load_pipeline
from penchant.plugins import default_registry
from penchant.replay import replay
from penchant.runner import Runner
from penchant.split import temporal_split

LOOP_PIPELINE = """
[pipeline]
name = "feedback-loop"

[source]
plugin = "csv"
path = "{shop}/events.csv.gz"
columns = {{ user = "user_id", item = "item_id", time = "timestamp", event = "event_type" }}
items = {{ path = "{shop}/items.csv", id = "item_id" }}

[[features]]
plugin = "interactions"
weights = {{ view = 1.0, cart = 2.0, purchase = 3.0 }}

[model]
plugin = "popularity"

[evaluation]
cutoff = {cutoff}
horizons = ["7d", "30d"]
k = [5]
recommend_k = 5
baselines = []
validation = 0.0
{extra}
"""

REPLAYED = {"view": "click", "cart": "add-to-cart", "purchase": "purchase"}


def run_pipeline(shop: Path, folder: Path, store, cutoff: str = "0.7", extra: str = ""):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.toml"
    path.write_text(LOOP_PIPELINE.format(shop=shop, cutoff=cutoff, extra=extra))
    registry = default_registry()
    return Runner(load_pipeline(path, registry), registry, store, folder / "out").run()


def stored_count(store, run_id: int | None = None) -> int:
    return len(feedback.read(store, None if run_id is None else [run_id]))


def test_the_whole_loop_adds_up(shop, tmp_path, store, capsys) -> None:
    before = run_pipeline(shop, tmp_path / "before", store)
    run_a = before.run.id
    cutoff = pd.Timestamp(store.run(run_a).summary["stages"]["split"]["cutoff"])

    first = replay(store, run_a, "30d")
    again = replay(store, run_a, "30d")
    stored = feedback.read(store, [run_a])
    assert first.recorded.stored == len(stored) == sum(first.counts.values())
    assert again.recorded.stored == 0 and again.recorded.skipped == len(stored)
    assert not stored.duplicated(["run_id", "user", "item", "kind", "time"]).any()

    # Impressions: every recommendation shown.
    shown = pd.read_csv(before.run.out_dir / "recommendations.csv", dtype=str)
    assert first.counts["impression"] == len(shown) == (stored["kind"] == "impression").sum()

    # Clicks, add-to-carts and purchases: what the shown users did with the shown items
    # within 30 days of the cutoff, counted straight from the shop's file.
    events = pd.read_csv(shop / "events.csv.gz", dtype={"user_id": str, "item_id": str})
    events["time"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    window = events[(events["time"] >= cutoff) & (events["time"] < cutoff + pd.Timedelta(days=30))]
    acted = window.assign(kind=window["event_type"].map(REPLAYED)).merge(
        shown, left_on=["user_id", "item_id"], right_on=["user", "item"])
    expected = acted.drop_duplicates(["user", "item", "kind"])["kind"].value_counts()
    actions = stored[stored["kind"] != "impression"]
    assert len(actions) > 0, "the shop should give the replay something to count"
    for kind in ("click", "add-to-cart", "purchase"):
        assert first.counts[kind] == (actions["kind"] == kind).sum() == expected.get(kind, 0)
    assert (actions["time"] >= cutoff).all()
    assert (actions["time"] < cutoff + pd.Timedelta(days=30)).all()

    # Retrain 15 days into the replayed window: feedback before the new cutoff trains,
    # feedback after it stays out of training and out of the test period.
    later = (cutoff + pd.Timedelta(days=15)).strftime("%Y-%m-%d")
    merge = "[feedback]\nmerge = true\n"
    after = run_pipeline(shop, tmp_path / "after", store, f'"{later}"', merge)
    plain = run_pipeline(shop, tmp_path / "plain", store, f'"{later}"')
    summary = store.run(after.run.id).summary["stages"]
    new_cutoff = pd.Timestamp(summary["split"]["cutoff"])
    assert summary["feedback"]["merged"] == len(actions)
    assert summary["feedback"]["runs"] == [run_a]
    assert summary["split"]["feedback_train"] == (actions["time"] < new_cutoff).sum() > 0
    assert summary["split"]["feedback_after_cutoff"] == (actions["time"] >= new_cutoff).sum() > 0
    plain_split = store.run(plain.run.id).summary["stages"]["split"]
    assert summary["split"]["test_events"] == plain_split["test_events"]
    assert summary["split"]["train_events"] == (plain_split["train_events"]
                                                + summary["split"]["feedback_train"])
    assert "feedback" not in store.run(plain.run.id).summary["stages"]

    # A quantile cutoff is the shop's, not moved by feedback: with the first run's cutoff
    # every replayed event is after it, and none trains.
    same = run_pipeline(shop, tmp_path / "same", store, "0.7", merge)
    split = store.run(same.run.id).summary["stages"]["split"]
    assert pd.Timestamp(split["cutoff"]) == cutoff
    assert split["feedback_train"] == 0
    assert split["feedback_after_cutoff"] == len(actions)

    capsys.readouterr()
    assert main(["--store", store.url, "runs", "compare", str(plain.run.id),
                 str(after.run.id)]) == 0
    out = capsys.readouterr().out
    assert f"run {after.run.id} popularity" in out and "change" in out
    assert f"{len(actions)} feedback event(s) merged" in out
    assert "30d" in out and "ndcg@5" in out
    # The retrained run against the first over the same test users, with an interval.
    paired = out[out.index(f"ndcg@5 of run {after.run.id} popularity ÷ run "
                           f"{plain.run.id} popularity, with its 95 % interval"):]
    assert "30d" in paired and "×" in paired


def test_report_rates_by_run_position_category_and_day(shop, tmp_path, store) -> None:
    run_id = run_pipeline(shop, tmp_path, store).run.id
    replay(store, run_id, "30d")
    stored = feedback.read(store)
    kinds = stored["kind"].value_counts()

    by_run = feedback_report(store, by="run").table
    row = by_run.iloc[0]
    assert (row["run"], row["model"]) == (run_id, "popularity")
    assert row["impressions"] == kinds["impression"]
    assert row["clicks"] == kinds.get("click", 0)
    assert row["ctr"] == pytest.approx(kinds.get("click", 0) / kinds["impression"])
    assert row["conversion"] == pytest.approx(kinds.get("purchase", 0) / kinds["impression"])

    by_position = feedback_report(store, [run_id], by="position").table
    assert list(by_position["position"]) == [1, 2, 3, 4, 5]
    assert by_position["impressions"].sum() == kinds["impression"]
    assert by_position["clicks"].sum() == kinds.get("click", 0)

    category = feedback_report(store, by="category")
    assert category.table["impressions"].sum() == kinds["impression"]
    assert not category.notes and "(unknown)" not in set(category.table["category"])

    by_day = feedback_report(store, by="day").table
    assert by_day["impressions"].sum() == kinds["impression"]
    assert by_day["purchases"].sum() == kinds.get("purchase", 0)
    with pytest.raises(Exception, match="choose one of"):
        feedback_report(store, by="hour")


def tiny_dataset() -> Dataset:
    frame = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"],
                          "time": [1_700_000_000, 1_700_000_100, 1_700_000_200],
                          "event": ["view", "view", "view"]})
    return Dataset(Events.from_frame(frame))


def stored_like(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """What :func:`penchant.feedback.read` returns, for rows of (user, item, kind)."""
    frame = pd.DataFrame(rows, columns=["user", "item", "kind"])
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    frame["time"] = pd.Timestamp(1_700_000_300, unit="s", tz="UTC")
    return frame


def test_merged_feedback_weighs_by_kind_and_dismissals_only_hide() -> None:
    from penchant_plugins.features.interactions import Interactions

    fb = stored_like([("u1", "c", "click"), ("u2", "b", "thumbs-up"), ("u2", "c", "dismiss"),
                      ("u1", "d", "impression")])
    merged = feedback.merge(tiny_dataset(), fb, {"thumbs-up": 5.0})
    assert list(feedback.is_feedback(merged.events)) == [False] * 3 + [True] * 3
    assert feedback.kind_counts(merged.events) == {"click": 1, "dismiss": 1, "thumbs-up": 1}
    assert "d" not in set(merged.events.frame["item"]), "impressions are never merged"

    features = Features.start(merged, pd.Timestamp(1_700_001_000, unit="s", tz="UTC"))
    matrix = Interactions({}).extract(features, Context()).matrix.toarray()
    users, items = list(features.users), list(features.items)
    cell = lambda u, i: matrix[users.index(u), items.index(i)]  # noqa: E731
    assert cell("u1", "c") == 1.0          # click: the default weight
    assert cell("u2", "b") == 5.0          # thumbs-up: the pipeline's weight
    assert cell("u2", "c") == 0.0          # dismiss: no interest…
    history = features.history.toarray()
    assert history[users.index("u2"), items.index("c")] == 1.0   # …but never shown again

    own = Interactions({"weights": {"click": 7.0}}).extract(
        Features.start(merged, features.now), Context()).matrix.toarray()
    assert own[users.index("u1"), items.index("c")] == 7.0, "the extractor's table wins"


def test_merge_refuses_sources_with_negative_rows() -> None:
    dataset = tiny_dataset()
    negative = Events(dataset.events.frame.assign(row=[-1, 2, 3]))
    with pytest.raises(DataError, match="below 0"):
        feedback.merge(dataset.with_events(negative), stored_like([("u1", "a", "click")]))


def test_feedback_stays_out_of_the_test_period() -> None:
    merged = feedback.merge(tiny_dataset(), stored_like([("u1", "z", "purchase")]))
    own = ~feedback.is_feedback(merged.events)
    split = temporal_split(merged.events, 0.5, own)
    assert "z" not in set(split.test.frame["item"].astype(str))
    assert split.cutoff == temporal_split(tiny_dataset().events, 0.5).cutoff


def test_the_feedback_table_is_checked_with_the_pipeline(shop, tmp_path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(LOOP_PIPELINE.format(shop=shop, cutoff="0.7", extra="""
[feedback]
merge = true
runs = [0]
weights = { clik = 1.0 }
"""))
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path, default_registry())
    message = str(caught.value)
    assert "[feedback]: key 'weights': unknown key(s) clik" in message
    assert "[feedback]: key 'runs': 0 is below the minimum" in message


def test_a_batch_mixing_new_stored_and_repeated_events_stores_each_once(store) -> None:
    """New events go in without a lookup; a batch with any stored key falls back to
    skipping those keys, and a key repeated inside the batch counts once."""
    run_id = store.start_run("p", "popularity", "", {}, None)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")

    def rows(users: list[int]) -> pd.DataFrame:
        raw = pd.DataFrame({"user": [f"u{u}" for u in users], "item": "i1",
                            "time": [t0 + pd.Timedelta(minutes=u) for u in users],
                            "kind": "click"})
        return feedback.check(raw, "test", run_id=run_id)

    first = feedback.record(store, rows(list(range(10))), "first", batch=100)
    assert (first.stored, first.skipped) == (10, 0)
    mixed = feedback.record(store, rows([5, 6, 10, 11, 11]), "second", batch=100)
    assert (mixed.stored, mixed.skipped) == (2, 3)
    stored = feedback.read(store, [run_id])
    assert sorted(stored["user"]) == sorted(f"u{u}" for u in range(12))
    assert stored.loc[stored["user"] == "u5", "origin"].tolist() == ["first"]
