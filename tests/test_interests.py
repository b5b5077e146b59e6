"""Interest distributions: metrics against hand-computed values, baselines on a hand-made
log, which users are evaluated, and what a run with ``interests = true`` records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_pipeline
from penchant import interests as I
from penchant.data import Dataset, Events
from penchant.errors import DataError
from penchant.pipeline import load_pipeline
from penchant.plugins import Registry
from penchant.runner import Runner

CUTOFF = pd.Timestamp("2024-03-01", tz="UTC")
ITEMS = pd.DataFrame({"category": ["shoes", "shoes", "books", "garden", None]},
                     index=pd.Index(["s1", "s2", "b1", "g1", "x1"], dtype="string"))


def day(n: float) -> str:
    """``n`` days after the cutoff (negative: before), as ISO text."""
    return (CUTOFF + pd.Timedelta(days=n)).isoformat()


def events(rows: list[tuple[str, str, float]]) -> Events:
    return Events.from_frame(pd.DataFrame(rows, columns=["user", "item", "time"])
                             .assign(time=lambda f: f["time"].map(day)))


@pytest.fixture
def categories() -> I.Categories:
    return I.Categories.from_items(ITEMS)


# -- metrics -----------------------------------------------------------------------


def test_js_divergence_matches_hand_computed_values() -> None:
    assert I.js_divergence([1, 0], [0, 1])[0] == pytest.approx(1.0)
    assert I.js_divergence([0.2, 0.8], [0.2, 0.8])[0] == pytest.approx(0.0)
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4)
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    kl_q = math.log2(1 / 0.75)
    assert I.js_divergence([0.5, 0.5], [1, 0])[0] == pytest.approx(0.5 * (kl_p + kl_q))
    # counts are normalised, and an all-zero forecast counts as uniform
    assert I.js_divergence([2, 2], [3, 0])[0] == pytest.approx(0.5 * (kl_p + kl_q))
    assert I.js_divergence([0, 0], [1, 0])[0] == pytest.approx(0.5 * (kl_p + kl_q))
    rows = I.js_divergence(np.array([[1, 0], [0.5, 0.5]]), np.array([[0, 1], [0.5, 0.5]]))
    assert rows == pytest.approx([1.0, 0.0])


def test_top3_overlap_matches_hand_computed_values() -> None:
    forecast = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
    # top-3 forecast {0, 1, 2}; the user touched {0, 3}: one of min(3, 2)
    assert I.top3_overlap(forecast, [5, 0, 0, 1, 0])[0] == pytest.approx(0.5)
    # four categories tied in the window: any three of them are the user's top three
    assert I.top3_overlap(forecast, [2, 2, 2, 2, 0])[0] == pytest.approx(1.0)
    # a clear top three {3, 4, 0} once the tie is only below the third
    assert I.top3_overlap(forecast, [3, 1, 1, 5, 4])[0] == pytest.approx(1 / 3)
    # categories with no forecast mass are never in F
    assert I.top3_overlap([1.0, 0, 0, 0], [0, 1, 1, 1])[0] == 0.0
    assert np.isnan(I.top3_overlap(forecast, [0, 0, 0, 0, 0])[0])
    assert I.score_forecast(np.array([[1.0, 0]]), np.array([[1.0, 0]])) == {
        "js": 0.0, "top3": 1.0, "users": 1.0}


# -- baselines and evaluated users -------------------------------------------------


def test_persistence_and_recency_weighted_persistence_on_a_hand_made_log(categories) -> None:
    log = events([("a", "s1", -40), ("a", "s2", -20), ("a", "b1", -10),
                  ("b", "g1", -5), ("b", "x1", -1)])  # x1 has no category
    users = pd.Index(["a", "b"], dtype="string")
    names = list(categories.names)  # books, garden, shoes
    assert names == ["books", "garden", "shoes"]
    assert I.persistence(log, users, categories) == pytest.approx(
        np.array([[1 / 3, 0, 2 / 3], [0, 1, 0]]))
    # half-life 10 days: ages 40, 20, 10 days weigh 1/16, 1/4, 1/2
    recent = I.recency_persistence(log, users, categories, CUTOFF, "10d")
    total = 1 / 16 + 1 / 4 + 1 / 2
    assert recent[0] == pytest.approx([0.5 / total, 0, (1 / 16 + 1 / 4) / total])
    assert recent[1] == pytest.approx([0, 1, 0])


def test_evaluated_users_need_categorised_history_and_window_events(categories) -> None:
    train = events([("a", "s1", -3), ("b", "b1", -3), ("c", "x1", -3), ("d", "g1", -3)])
    test = events([("a", "b1", 1), ("a", "s2", 2),      # a: evaluated at 7d and 30d
                   ("b", "g1", 20),                     # b: only inside 30d
                   ("c", "s1", 1),                      # c: history uncategorised
                   ("e", "s1", 1),                      # e: no training history
                   ("d", "x1", 1)])                     # d: window uncategorised
    users = pd.Index(["a", "b", "c", "d"], dtype="string")
    report = I.evaluate_interests(train, test, CUTOFF, users, categories, ["7d", "30d"],
                                  "30d")
    assert list(users[report.evaluated["7d"]]) == ["a"]
    assert list(users[report.evaluated["30d"]]) == ["a", "b"]
    persistence = report.metrics[I.PERSISTENCE]
    assert persistence["7d"]["users"] == 1 and persistence["30d"]["users"] == 2
    # a: history all shoes, window half books half shoes
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    assert persistence["7d"]["js"] == pytest.approx(0.5 * (kl_p + math.log2(1 / 0.75)))
    assert persistence["7d"]["top3"] == pytest.approx(0.5)
    # b: books before, garden after: disjoint
    assert persistence["30d"]["js"] == pytest.approx((persistence["7d"]["js"] + 1) / 2)


def test_missing_category_column_or_items_table_is_a_clear_data_error() -> None:
    with pytest.raises(DataError) as info:
        I.Categories.from_items(ITEMS.rename(columns={"category": "kind"}), "category")
    message = str(info.value)
    assert "'category'" in message and "items side table" in message and "'kind'" in message
    with pytest.raises(DataError, match="no items side table"):
        I.Categories.from_dataset(Dataset(events([("a", "s1", -1)])), "category")


def test_windows_and_horizon_weights() -> None:
    times = pd.Series(pd.to_datetime([day(-1), day(-29), day(-31), day(-95), day(0)],
                                     utc=True))
    assert list(I.window_index(times, CUTOFF, "30d", 3)) == [2, 2, 1, -1, -1]
    edges = I.window_edges(CUTOFF, "30d", 3)
    assert edges[-1] == CUTOFF and edges[0] == CUTOFF - pd.Timedelta(days=90)
    assert I.horizon_weights("90d", "30d") == pytest.approx([1, 1, 1])
    assert I.horizon_weights("7d", "30d") == pytest.approx([7 / 30])
    assert I.horizon_weights("45d", "30d") == pytest.approx([1, 0.5])


def test_observed_trajectory_is_long_and_sums_to_one_per_window(categories) -> None:
    log = events([("a", "s1", -40), ("a", "b1", -35), ("a", "g1", -5)])
    frame = I.observed_trajectory(log, pd.Index(["a"], dtype="string"), categories, CUTOFF,
                                  "30d", 2)
    assert list(frame.columns) == list(I.TRAJECTORY_COLUMNS)
    assert set(frame["kind"]) == {"observed"}
    assert frame.groupby("window")["value"].sum().to_dict() == pytest.approx(
        {-2: 1.0, -1: 1.0})
    assert set(frame.loc[frame["window"] == -2, "name"]) == {"shoes", "books"}


# -- a run ---------------------------------------------------------------------------


def test_a_run_with_interests_scores_baselines_even_for_a_ranking_model(
        shop: Path, tmp_path: Path, store) -> None:
    registry = Registry()
    path = write_pipeline(shop, tmp_path, epochs=1, extra="interests = true\n")
    result = Runner(load_pipeline(path, registry), registry, store, tmp_path / "out").run()
    scored = json.loads((tmp_path / "out" / "metrics.json").read_text())["interests"]
    assert set(scored) == {I.PERSISTENCE, I.RECENCY}  # vae does not forecast interests
    for by_h in scored.values():
        assert set(by_h) == {"7d", "30d"}
        assert 0 <= by_h["30d"]["js"] <= 1 and by_h["30d"]["users"] > 0
    stored = store.metrics(result.run.id)
    assert stored[I.PERSISTENCE]["30d"]["js"] == pytest.approx(scored[I.PERSISTENCE]["30d"]["js"])
    assert "ndcg@10" in stored["vae"]["30d"], "ranking metrics stay beside interest metrics"
    trajectories = pd.read_csv(tmp_path / "out" / "trajectories.csv")
    assert list(trajectories.columns) == list(I.TRAJECTORY_COLUMNS)
    assert set(trajectories["kind"]) == {"observed", "forecast"}
    assert "trajectories" in store.artifacts(result.run.id)


def test_a_run_names_a_missing_category_column(shop: Path, tmp_path: Path, store) -> None:
    registry = Registry()
    path = write_pipeline(shop, tmp_path, epochs=1,
                          extra='interests = true\ncategory = "genre"\n')
    with pytest.raises(DataError) as info:
        Runner(load_pipeline(path, registry), registry, store, tmp_path / "out").run()
    message = str(info.value)
    assert "'genre'" in message and "items side table" in message
    assert "[evaluation] key 'category'" in message and "'brand'" in message
    assert store.runs()[0].status == "failed"
